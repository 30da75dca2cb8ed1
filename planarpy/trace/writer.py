"""EventTrace: record events into an in-memory buffer; a worker thread commits them.

`record` is the hot path: it encodes the payload (a snapshot, so later mutation of the
dict cannot change what is stored), gives the event the next sequence number and appends
it under a lock, about 1-2 us. A daemon thread flushes every `flush_interval` seconds or
`flush_events` events, whichever comes first, never on the asyncio event loop; a change
of the trading state is flushed at once (a restart reads it back).
`close()`, the context exit and interpreter exit flush the rest.

When the trace cannot be written (a full disk, a read-only directory), nothing recorded
is dropped. The policy, in order:

1. Keep the events in memory and retry, backing off to once a second; log the failure
   once, then a reminder every `log_every` seconds, then the recovery. `health()` tells
   the status line and the end-of-run summary: events pending, failed flushes, last error.
2. Back-pressure: at `max_pending` events, `record` blocks its caller until the flush
   thread commits, so the engine slows its producers instead of losing events or
   growing without bound. A live engine that records before it applies never lets its
   state run more than `max_pending` events ahead of its record.
3. At close, events that still cannot be committed are spilled to a journal (journal.py):
   beside the trace if that is writable, else under the user's state directory. The next
   `EventTrace.open` of the trace commits them, so nothing is lost once the disk is
   writable again; if the disk still cannot take them, that open keeps them pending
   ahead of the new events (policy 1 and 2 again) instead of failing to start.

Why not spill to a journal while running: the journal would sit on the same full or
read-only disk in the common case, and a second live store is a second thing to keep
consistent; back-pressure keeps memory bounded with one store, and the journal is only
the way out when the process must end.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  its exit hook must be registered before ours
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import anyio.to_thread
import attrs
import numpy as np

from ..core.events import KIND_CODES, kind_code
from . import journal
from .layout import INDEX_FIELDS, KIND, RUN, SEGMENT_ROWS, SEQ, TS, TraceError, trace_path
from .payload import encode_payload, redaction_patterns, scrub_batch
from .store import TraceStore

log = logging.getLogger(__name__)

STARTED = KIND_CODES["strategy_started"]
# committed at once, not at the next flush_interval: a restart reads the trading state
# back from the trace, so a halt lost to a crash in between would trade again
URGENT = KIND_CODES["trading_state_changed"]
Event = tuple[int, int, int, "str | None", int, bytes]  # seq, ts, kind code, symbol, run, payload
MAX_BACKOFF = 1.0
_open_traces: set[EventTrace] = set()


def _close_all() -> None:
    """Flush and close every open trace at interpreter exit."""
    for trace in list(_open_traces):
        try:
            trace.close()
        except Exception as e:
            log.error("trace %s: closing at exit failed: %s", trace.path, e)


# Zarr writes through thread pools, which refuse work once plain atexit handlers run:
# close traces in threading's exit hook, which runs earlier (and before executors stop).
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_close_all)
else:  # pragma: no cover
    atexit.register(_close_all)
def _forget_in_child() -> None:
    """In a forked child: neither flush the parent's events nor keep its writer locks (the
    child's copy of a lock descriptor is closed; that does not unlock the parent's)."""
    for trace in _open_traces:
        trace.store.lock.release()
    _open_traces.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def clock_function(clock: Any) -> Callable[[], int]:
    """A function returning ns from a clock: an object with now_ns(), or a callable."""
    if clock is None:
        return time.time_ns
    now_ns = getattr(clock, "now_ns", None)
    if callable(now_ns):
        return now_ns
    if callable(clock):
        return clock
    raise TypeError(f"clock must have now_ns() or be callable, not {type(clock).__name__}")


@attrs.frozen(slots=True)
class TraceHealth:
    """How the writing of a trace goes: what `EventTrace.health()` returns.

    `ok` is False once any write failed or any event was left uncommitted: a run with a
    trace that is not ok should end with a non-zero exit.
    """

    path: Path
    pending: int
    failed_flushes: int
    last_error: str | None
    failing: bool  # the latest write attempt failed
    journal: Path | None = None  # where the events left at close went
    journaled: int = 0
    lost: int = 0  # neither committed nor journaled

    @property
    def ok(self) -> bool:
        return not (self.failed_flushes or self.journaled or self.lost)

    def __str__(self) -> str:
        """One short phrase, for a status line."""
        if self.lost or self.journaled:
            how = "LOST" if self.lost else "saved to a journal"
            return f"trace NOT WRITTEN: {self.lost or self.journaled} events {how}"
        if self.failing:
            return (f"trace FAILING: {self.pending} events pending, {self.failed_flushes} failed "
                    f"flushes, last error: {_short(self.last_error)}")
        if self.failed_flushes:
            return (f"trace ok again after {self.failed_flushes} failed flushes (last error: "
                    f"{_short(self.last_error)}), {self.pending} pending")
        return f"trace ok, {self.pending} pending"

    def describe(self) -> str:
        """What happened to the trace, in full: for the end of a run."""
        if self.lost:
            return (f"trace {self.path}: {self.lost} events LOST, neither written nor saved "
                    f"to a journal (last error: {self.last_error})")
        if self.journaled:
            return (f"trace {self.path}: {self.journaled} events could not be written "
                    f"({self.last_error}); they are saved in {self.journal}, and the next open "
                    "of the trace commits them")
        return f"trace {self.path}: {self}"


def _short(text: str | None, limit: int = 120) -> str:
    text = text or "-"
    return text if len(text) <= limit else text[:limit - 3] + "..."


@attrs.define(slots=True, eq=False)
class EventTrace:
    """The event log of one strategy on one exchange. Open with `EventTrace.open`."""

    store: TraceStore
    flush_interval: float = 0.1
    flush_events: int = 1000
    max_pending: int = 200_000
    log_every: float = 60.0
    _now: Callable[[], int] = time.time_ns
    _redact: tuple[bytes, ...] = ()
    _run: int = 0
    _seq: int = 0
    _buffer: list[Event] = attrs.Factory(list)
    _lock: threading.Lock = attrs.Factory(threading.Lock)
    _room: threading.Condition = attrs.field(init=False)
    _io_lock: threading.Lock = attrs.Factory(threading.Lock)
    _wake: threading.Event = attrs.Factory(threading.Event)
    _thread: threading.Thread | None = None
    _closed: bool = False
    _error: BaseException | None = None
    _failed: int = 0  # failed flushes since open
    _streak: int = 0  # consecutive failed flushes
    _failing_since: float = 0.0
    _logged_at: float = 0.0
    _last_error: str | None = None
    _journal: Path | None = None
    _waiting: list[journal.Journal] = attrs.Factory(list)  # journals with events pending
    _journaled: int = 0
    _lost: int = 0
    flushes: int = 0

    def __attrs_post_init__(self) -> None:
        self._room = threading.Condition(self._lock)

    def __repr__(self) -> str:
        # not the fields: they hold the secret values to mask and unscrubbed payloads
        return (f"EventTrace('{self.path}', strategy={self.strategy!r}, "
                f"exchange={self.exchange!r}, pending={len(self._buffer)})")

    @classmethod
    def open(cls, path: str | Path | None = None, *, strategy: str | None = None,
             exchange: str | None = None, root: str | Path | None = None, clock: Any = None,
             fsync: bool = False, flush_interval: float = 0.1, flush_events: int = 1000,
             redact: Iterable[str] = (), segment_rows: int = SEGMENT_ROWS,
             daily: bool = True, max_pending: int = 200_000) -> EventTrace:
        """Open the trace at `path` (default <root>/<strategy>/<exchange>) for appending.

        A new trace needs `strategy` and `exchange`; an existing one must match them if
        given. `redact` lists secret values (API key, secret) to mask wherever they appear.
        `max_pending` bounds the events held in memory while the trace cannot be written
        (then `record` waits). Events a previous run left in a journal are committed first.
        TraceError if another writer holds the trace.
        """
        if path is None:
            if strategy is None or exchange is None:
                raise TraceError("give a trace path, or strategy and exchange")
            path = trace_path(strategy, exchange, root)
        if int(max_pending) < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending!r}")
        store = TraceStore.open(Path(path), strategy, exchange, segment_rows=segment_rows,
                                daily=daily, fsync=fsync)
        try:
            waiting, error = journal.commit_journals(store)
        except BaseException:
            store.close()
            raise
        trace = cls(store, flush_interval=float(flush_interval),
                    flush_events=max(1, int(flush_events)), max_pending=int(max_pending),
                    now=clock_function(clock), redact=redaction_patterns(redact),
                    run=store.last_run, seq=store.next_seq)
        if waiting:
            trace._adopt(waiting, error)
        trace._start()
        return trace

    def _adopt(self, waiting: list[journal.Journal], error: OSError | None) -> None:
        """Keep the events of journals the store could not take at open pending, ahead of
        new ones and with their own numbers; each file goes once its events are committed."""
        for j in waiting:
            for k in np.flatnonzero(j.rows[:, SEQ] >= self._seq):
                seq, ts, code, run = (int(v) for v in j.rows[k, [SEQ, TS, KIND, RUN]])
                self._buffer.append((seq, ts, code, j.symbols[k], run, j.payloads[k]))
                self._seq, self._run = seq + 1, max(self._run, run)
            self._waiting.append(j)
        if error is not None:
            self._failure(error)

    def _start(self) -> None:
        name = f"trace-flush:{self.store.strategy}/{self.store.exchange}"
        self._thread = threading.Thread(target=self._flush_loop, name=name, daemon=True)
        self._thread.start()
        _open_traces.add(self)

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def strategy(self) -> str:
        return self.store.strategy

    @property
    def exchange(self) -> str:
        return self.store.exchange

    @property
    def run(self) -> int:
        """The current run id: 1 + the strategy_started events recorded before this one."""
        return self._run

    @property
    def pending(self) -> int:
        """Events recorded but not yet committed."""
        return len(self._buffer)

    @property
    def closed(self) -> bool:
        return self._closed

    def health(self) -> TraceHealth:
        """Events pending, failed flushes and the last error: for status lines and summaries."""
        return TraceHealth(self.path, len(self._buffer), self._failed, self._last_error,
                           self._streak > 0, self._journal, self._journaled, self._lost)

    def record(self, kind: str, payload: Mapping[str, Any] | None = None,
               symbol: str | None = None, ts: int | None = None) -> None:
        """Buffer one event; `strategy_started` opens a new run. ts in ns, default now.

        Blocks while `max_pending` events wait for a trace that cannot be written.
        """
        code = KIND_CODES.get(kind)
        if code is None:
            code = kind_code(kind)  # raises ValueError naming the known kinds
        data = encode_payload(payload)
        t = self._now() if ts is None else int(ts)
        if symbol is not None and not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str or None, not {type(symbol).__name__}")
        with self._lock:
            while len(self._buffer) >= self.max_pending and not self._closed:
                self._wake.set()
                self._room.wait(1.0)  # back-pressure: the flush thread makes room
            if self._closed:
                raise TraceError(f"trace {self.path} is closed")
            if code == STARTED:
                self._run += 1
            self._buffer.append((self._seq, t, code, symbol, self._run, data))
            self._seq += 1
            full = len(self._buffer) >= self.flush_events or code == URGENT
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Commit every event recorded so far; the number committed. Blocks (use `aflush`
        on an event loop). TraceError if the store cannot be written (the events stay)."""
        count = self._flush_pending()
        if self._error is not None:
            error, self._error = self._error, None
            raise TraceError(f"cannot write trace {self.path}: {error}") from error
        return count

    async def aflush(self) -> int:
        """`flush` in a worker thread, for code running on an event loop."""
        return await anyio.to_thread.run_sync(self.flush)

    def close(self) -> None:
        """Flush the rest, stop the flush thread and release the trace. Idempotent.

        Events that cannot be committed go to a journal that the next open commits;
        `health()` says so. Never raises for a write failure.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._room.notify_all()
        _open_traces.discard(self)
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            self._flush_pending()
            self._error = None
            if self._buffer:
                self._spill()
        finally:
            self.store.close()

    async def aclose(self) -> None:
        """`close` in a worker thread, for code running on an event loop."""
        await anyio.to_thread.run_sync(self.close)

    def __enter__(self) -> EventTrace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _flush_loop(self) -> None:
        while not self._closed:
            delay = self.flush_interval
            if self._streak:
                delay = min(MAX_BACKOFF, max(delay, 0.01) * 2 ** min(self._streak, 10))
            self._wake.wait(delay)
            self._wake.clear()
            self._flush_pending()

    def _flush_pending(self) -> int:
        with self._io_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                self._write(batch)
            except Exception as e:  # keep what is not committed; the next flush retries it
                self._keep(batch)
                self._failure(e)
                return 0
            with self._lock:
                self._room.notify_all()
            self._drop_journals(self.store.next_seq)
            self.flushes += 1
            self._error = None
            if self._streak:
                self._recovered()
            return len(batch)

    def _keep(self, batch: list[Event]) -> None:
        """Put back the events of a failed flush that the store has not committed."""
        done = self.store.next_seq
        keep = batch if not batch or batch[0][0] >= done else [e for e in batch if e[0] >= done]
        with self._lock:
            self._buffer[:0] = keep
            self._room.notify_all()

    def _failure(self, e: Exception) -> None:
        self._error = e
        self._failed += 1
        self._streak += 1
        self._last_error = f"[Errno {e.errno}] {e.strerror}" if isinstance(e, OSError) \
            and e.strerror else f"{type(e).__name__}: {e}"
        now = time.monotonic()
        if self._streak == 1:
            self._failing_since = self._logged_at = now
            log.error("trace %s: cannot write (%s); %d events kept in memory, retrying",
                      self.path, self._last_error, len(self._buffer))
        elif now - self._logged_at >= self.log_every:
            self._logged_at = now
            log.error("trace %s: still cannot write after %d failed flushes over %.0f s (%s); "
                      "%d events pending", self.path, self._streak, now - self._failing_since,
                      self._last_error, len(self._buffer))

    def _drop_journals(self, committed: int) -> None:
        """Delete the adopted journals whose events are all below `committed`."""
        while self._waiting and self._waiting[0].last_seq < committed:
            journal.discard(self._waiting.pop(0).path)

    def _recovered(self) -> None:
        log.warning("trace %s: written again after %d failed flushes over %.1f s; nothing lost",
                    self.path, self._streak, time.monotonic() - self._failing_since)
        self._streak = 0

    def _spill(self) -> None:
        """At close: save what could not be committed to a journal (or count it lost)."""
        with self._lock:
            events, self._buffer = self._buffer, []
        try:
            where = journal.spill(self.store, events, self._redact)
        except OSError as e:
            self._unsaved(events, e)
            return
        for old in self._waiting:  # their events are all in the new journal
            if old.path != where:
                journal.discard(old.path)
        self._waiting.clear()
        self._journal, self._journaled = where, len(events)
        log.error("trace %s: %d events could not be written (%s); saved to %s, the next open "
                  "of the trace commits them", self.path, len(events), self._last_error, where)

    def _unsaved(self, events: list[Event], e: OSError) -> None:
        """No journal took `events`: those not still in a journal adopted at open are lost."""
        kept = max((j.last_seq for j in self._waiting), default=-1)
        self._lost = sum(1 for event in events if event[0] > kept)
        if self._waiting:
            self._journal, self._journaled = self._waiting[0].path, len(events) - self._lost
        log.error("trace %s: %d events could not be written (%s) nor saved to a journal (%s): "
                  "%d of them are lost", self.path, len(events), self._last_error, e, self._lost)

    def _write(self, batch: list[Event]) -> None:
        seq, ts, codes, symbols, runs, payloads = zip(*batch)
        rows = np.zeros((len(batch), len(INDEX_FIELDS)), np.int64)
        rows[:, SEQ], rows[:, TS], rows[:, KIND], rows[:, RUN] = seq, ts, codes, runs
        self.store.append(rows, list(symbols), scrub_batch(list(payloads), self._redact))


def run_trace(trace: Any, strategy: str, exchange: str, redact: Iterable[str] = ()) -> Any:
    """The recorder of a paper or live run: "auto" opens traces/STRATEGY/EXCHANGE (under
    $PLANARPY_TRACES, else the current directory), a path opens the trace there, None or
    False records nothing, and anything else (an EventTrace, or anything with
    record/close) is used as it is."""
    if isinstance(trace, str) and trace == "auto":
        return EventTrace.open(strategy=strategy, exchange=exchange, redact=redact)
    if trace is None or trace is False:
        return None
    if isinstance(trace, (str, Path)):
        return EventTrace.open(trace, strategy=strategy, exchange=exchange, redact=redact)
    return trace
