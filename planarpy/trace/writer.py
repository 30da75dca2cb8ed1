"""EventTrace: record events into an in-memory buffer; a worker thread commits them.

`record` is the hot path: it encodes the payload (a snapshot, so later mutation of the
dict cannot change what is stored) and appends a tuple under a lock, about 1-2 us. A
daemon thread flushes every `flush_interval` seconds or `flush_events` events, whichever
comes first, never on the asyncio event loop. `close()`, the context exit and interpreter
exit flush the rest.
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
from .payload import encode_payload, redaction_patterns, scrub_batch
from .store import SEGMENT_ROWS, TraceError, TraceStore, trace_path

log = logging.getLogger(__name__)

STARTED = KIND_CODES["strategy_started"]
Event = tuple[int, int, "str | None", int, bytes]  # ts, kind code, symbol, run, payload
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
if hasattr(os, "register_at_fork"):  # a forked child must not flush its parent's events
    os.register_at_fork(after_in_child=_open_traces.clear)


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


@attrs.define(slots=True, eq=False)
class EventTrace:
    """The event log of one strategy on one exchange. Open with `EventTrace.open`."""

    store: TraceStore
    flush_interval: float = 0.1
    flush_events: int = 1000
    _now: Callable[[], int] = time.time_ns
    _redact: tuple[bytes, ...] = ()
    _run: int = 0
    _buffer: list[Event] = attrs.Factory(list)
    _lock: threading.Lock = attrs.Factory(threading.Lock)
    _io_lock: threading.Lock = attrs.Factory(threading.Lock)
    _wake: threading.Event = attrs.Factory(threading.Event)
    _thread: threading.Thread | None = None
    _closed: bool = False
    _error: BaseException | None = None
    flushes: int = 0

    @classmethod
    def open(cls, path: str | Path | None = None, *, strategy: str | None = None,
             exchange: str | None = None, root: str | Path | None = None, clock: Any = None,
             fsync: bool = False, flush_interval: float = 0.1, flush_events: int = 1000,
             redact: Iterable[str] = (), segment_rows: int = SEGMENT_ROWS,
             daily: bool = True) -> EventTrace:
        """Open the trace at `path` (default <root>/<strategy>/<exchange>) for appending.

        A new trace needs `strategy` and `exchange`; an existing one must match them if
        given. `redact` lists secret values (API key, secret) to mask wherever they appear.
        TraceError if another writer holds the trace.
        """
        if path is None:
            if strategy is None or exchange is None:
                raise TraceError("give a trace path, or strategy and exchange")
            path = trace_path(strategy, exchange, root)
        store = TraceStore.open(Path(path), strategy, exchange, segment_rows=segment_rows,
                                daily=daily, fsync=fsync)
        trace = cls(store, flush_interval=float(flush_interval),
                    flush_events=max(1, int(flush_events)), now=clock_function(clock),
                    redact=redaction_patterns(redact), run=store.last_run)
        trace._start()
        return trace

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

    def record(self, kind: str, payload: Mapping[str, Any] | None = None,
               symbol: str | None = None, ts: int | None = None) -> None:
        """Buffer one event; `strategy_started` opens a new run. ts in ns, default now."""
        code = KIND_CODES.get(kind)
        if code is None:
            code = kind_code(kind)  # raises ValueError naming the known kinds
        data = encode_payload(payload)
        t = self._now() if ts is None else int(ts)
        if symbol is not None and not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str or None, not {type(symbol).__name__}")
        with self._lock:
            if self._closed:
                raise TraceError(f"trace {self.path} is closed")
            if code == STARTED:
                self._run += 1
            self._buffer.append((t, code, symbol, self._run, data))
            full = len(self._buffer) >= self.flush_events
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Commit every event recorded so far; the number committed. Blocks (use `aflush`
        on an event loop). TraceError if the store cannot be written."""
        count = self._flush_pending()
        if self._error is not None:
            error, self._error = self._error, None
            raise TraceError(f"cannot write trace {self.path}: {error}") from error
        return count

    async def aflush(self) -> int:
        """`flush` in a worker thread, for code running on an event loop."""
        return await anyio.to_thread.run_sync(self.flush)

    def close(self) -> None:
        """Flush the rest, stop the flush thread and release the trace. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _open_traces.discard(self)
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            self.flush()
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
            self._wake.wait(self.flush_interval)
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
            except Exception as e:  # keep the events; the next flush retries them
                log.error("trace %s: flush of %d events failed: %s", self.path, len(batch), e)
                self._error = e
                with self._lock:
                    self._buffer[:0] = batch
                return 0
            self.flushes += 1
            self._error = None
            return len(batch)

    def _write(self, batch: list[Event]) -> None:
        ts, codes, symbols, runs, payloads = zip(*batch)
        self.store.append(np.array(ts, np.int64), np.array(codes, np.uint8), list(symbols),
                          np.array(runs, np.uint32), scrub_batch(list(payloads), self._redact))
