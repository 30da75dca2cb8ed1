"""Reading a trace: `trace_tail`, `iter_events`, `follow`, `trace_info`.

Every call reads the committed state afresh (an open Zarr handle does not see later
writes), so a reader in another process can tail a trace while it is written, and only
ever sees committed events. Damaged rows (a missing or truncated chunk, offsets that do
not add up, a payload that is not JSON) are skipped with a `TraceDamageWarning`, or raise
TraceError with `errors="raise"`; every intact event is still read.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import attrs
import numpy as np

from ..core.events import KINDS
from .payload import decode_payload
from .store import (COLUMNS, INDEX_CHUNK, MISSING_KIND, TraceDamageWarning, TraceError,
                    check_format, load_root, open_column, read_attrs, segment_names)
from .writer import EventTrace

Errors = Literal["warn", "raise", "skip"]
Position = tuple[str, int]  # (segment name, row): where a scan stopped
STREAM_ROWS = 65536
MAX_SPAN = 16 << 20  # heap bytes read at once


@attrs.define(slots=True)
class _Report:
    """Where damage goes: a warning, an exception or nowhere."""

    errors: Errors
    path: Path
    problems: list[str] = attrs.Factory(list)

    def __attrs_post_init__(self) -> None:
        if self.errors not in ("warn", "raise", "skip"):
            raise ValueError(f"errors must be 'warn', 'raise' or 'skip', not {self.errors!r}")

    def add(self, message: str) -> None:
        message = f"trace {self.path}: {message}"
        if self.errors == "raise":
            raise TraceError(message)
        self.problems.append(message)
        if self.errors == "warn":
            warnings.warn(message, TraceDamageWarning, stacklevel=4)


@attrs.frozen
class _Filter:
    kinds: frozenset[str] | None = None
    since: int | None = None
    until: int | None = None
    symbol: str | None = None
    run: int | None = None

    def may_match(self, a: dict[str, Any]) -> bool:
        """Whether a segment can hold matching events, judged from its attributes."""
        if self.since is not None and isinstance(a.get("ts_max"), int) and a["ts_max"] < self.since:
            return False
        if self.until is not None and isinstance(a.get("ts_min"), int) and a["ts_min"] >= self.until:
            return False
        if self.run is not None and isinstance(a.get("run_first"), int):
            if not a["run_first"] <= self.run <= a.get("run_last", self.run):
                return False
        return self.symbol is None or self.symbol in (a.get("symbols") or ())

    def mask(self, seg: _Segment, b: _Block) -> np.ndarray:
        m = b.valid.copy()
        if self.kinds is not None:
            codes = [c for c, name in enumerate(seg.kind_names) if name in self.kinds]
            m &= np.isin(b.kind, np.array(codes, np.uint8))
        if self.since is not None:
            m &= b.ts >= self.since
        if self.until is not None:
            m &= b.ts < self.until
        if self.symbol is not None:
            m &= b.sym == seg.symbols.index(self.symbol)
        if self.run is not None:
            m &= b.run == self.run
        return m


@attrs.define(slots=True)
class _Block:
    """Index columns of rows [start, start + len): `starts`/`ends` delimit each payload."""

    start: int
    ts: np.ndarray
    kind: np.ndarray
    sym: np.ndarray
    run: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    valid: np.ndarray


def _read(array: Any, start: int, stop: int, fill: int, what: str, report: _Report) -> np.ndarray:
    """array[start:stop]; chunks that cannot be decoded read as `fill` and are reported."""
    try:
        return np.asarray(array[start:stop])
    except Exception:
        pass
    out = np.full(stop - start, fill, dtype=array.dtype)
    chunk = array.chunks[0]
    for c0 in range(start - start % chunk, stop, chunk):
        a, b = max(start, c0), min(stop, c0 + chunk)
        try:
            out[a - start:b - start] = array[a:b]
        except Exception as e:
            report.add(f"{what} chunk {c0 // chunk} is unreadable ({type(e).__name__}: {e})")
    return out


@attrs.define(slots=True, eq=False)
class _Segment:
    """A read-only view of one segment's committed rows."""

    path: Path
    rows: int
    heap: int
    attributes: dict[str, Any]
    kind_names: list[str]
    symbols: list[str | None]
    columns: dict[str, Any]
    report: _Report

    @classmethod
    def open(cls, path: Path, report: _Report) -> _Segment | None:
        """The segment at `path`, or None (reported) when it cannot be read at all."""
        try:
            a = read_attrs(path)
        except TraceError as e:
            report.add(f"segment {path.name} is unreadable and skipped: {e}")
            return None
        check_format(a, path)  # a newer format is an error, not damage
        try:
            columns = {name: open_column(path, name) for name in (*COLUMNS, "heap")}
        except Exception as e:
            report.add(f"segment {path.name} is unreadable and skipped "
                       f"({type(e).__name__}: {e})")
            return None
        rows, heap = a.get("rows") or 0, a.get("heap") or 0
        if not isinstance(rows, int) or not isinstance(heap, int) or rows < 0 or heap < 0:
            report.add(f"segment {path.name} has a malformed committed count and is skipped")
            return None
        capacity = min(c.shape[0] for n, c in columns.items() if n != "heap")
        if rows > capacity or heap > columns["heap"].shape[0]:
            report.add(f"segment {path.name} claims {rows} events / {heap} payload bytes but "
                       f"holds room for only {capacity} / {columns['heap'].shape[0]}; "
                       "reading what is there")
            rows, heap = min(rows, capacity), min(heap, columns["heap"].shape[0])
        table = [str(k) for k in (a.get("kinds") or KINDS)]
        names = table[:MISSING_KIND] + [f"unknown:{c}" for c in range(len(table), 256)]
        return cls(path, rows, heap, a, names, list(a.get("symbols") or [None]), columns, report)

    @property
    def name(self) -> str:
        return self.path.name

    def block(self, start: int, stop: int) -> _Block:
        """Index columns of rows [start, stop), with damaged rows marked invalid."""
        cols = {}
        for name, (_, fill) in COLUMNS.items():
            lo = max(start - 1, 0) if name == "off" else start
            cols[name] = _read(self.columns[name], lo, stop, fill, f"{self.name}/{name}", self.report)
        off = cols["off"]
        ends = off[1:] if start > 0 else off
        starts = np.empty_like(ends)
        starts[:1] = off[:1] if start > 0 else 0
        starts[1:] = ends[:-1]
        ts, kind, sym, run = cols["ts"], cols["kind"], cols["sym"], cols["run"]
        valid = ((ts != COLUMNS["ts"][1]) & (kind != MISSING_KIND) & (sym < len(self.symbols))
                 & (run != COLUMNS["run"][1]) & (starts >= 0) & (ends > starts) & (ends <= self.heap))
        bad = valid.size - int(np.count_nonzero(valid))
        if bad:
            rows = np.flatnonzero(~valid) + start
            self.report.add(f"segment {self.name}: {bad} damaged events skipped (rows {rows[0]}"
                            f"..{rows[-1]}: missing chunks or inconsistent offsets)")
        return _Block(start, ts, kind, sym, run, starts, ends, valid)

    def events(self, b: _Block, rows: np.ndarray, strategy: str, exchange: str) -> Iterator[dict]:
        """Decoded events of block rows `rows` (relative to the block), in order.

        A generator: a streaming reader holds only the current event, which keeps Python's
        garbage collector from re-scanning a block's worth of dicts (it halved the rate).
        """
        if rows.size == 0:
            return
        starts, ends = b.starts[rows].tolist(), b.ends[rows].tolist()
        kinds, symbols = self.kind_names, self.symbols
        ts_l, kind_l, sym_l, run_l = (b.ts[rows].tolist(), b.kind[rows].tolist(),
                                      b.sym[rows].tolist(), b.run[rows].tolist())
        bad: list[int] = []
        i, n = 0, len(starts)
        while i < n:
            j = _span_end(starts, ends, i)
            lo, hi = starts[i], ends[j - 1]
            heap = _read(self.columns["heap"], lo, hi, 0, f"{self.name}/heap", self.report).data
            for r in range(i, j):
                try:
                    payload = decode_payload(heap[starts[r] - lo:ends[r] - lo])
                except ValueError:
                    bad.append(int(rows[r]) + b.start)
                    continue
                yield {"ts": ts_l[r], "kind": kinds[kind_l[r]], "exchange": exchange,
                       "symbol": symbols[sym_l[r]], "strategy": strategy, "run": run_l[r],
                       "payload": payload}
            i = j
        if bad:
            self.report.add(f"segment {self.name}: {len(bad)} events with unreadable payloads "
                            f"skipped (rows {bad[0]}..{bad[-1]})")


def _span_end(starts: list[int], ends: list[int], i: int) -> int:
    """End (exclusive) of the run of rows from i whose payloads are read in one heap slice."""
    n, lo = len(starts), starts[i]
    j = i + 1
    while j < n and starts[j] - ends[j - 1] <= INDEX_CHUNK and ends[j] - lo <= MAX_SPAN:
        j += 1
    return j


def to_ns(value: Any) -> int:
    """Epoch ns from an int (ns), a datetime (naive = UTC), an ISO string or numpy datetime64."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise TraceError(f"cannot read {value!r} as a time; use ISO 8601, e.g. "
                             "2024-05-01T12:00:00Z") from None
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, dt.datetime):
        if hasattr(value, "value") and value.tzinfo is not None:  # pandas Timestamp
            return int(value.value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    raise TraceError(f"cannot read {value!r} as a time")


def _kind_set(kinds: str | Iterable[str] | None) -> frozenset[str] | None:
    if kinds is None:
        return None
    kinds = frozenset([kinds] if isinstance(kinds, str) else kinds)
    for k in kinds:
        if k not in KINDS and not (k.startswith("unknown:") and k[8:].isdigit()):
            raise TraceError(f"unknown event kind {k!r}; known kinds: {', '.join(KINDS)}")
    return kinds


def _resolve(trace: str | Path | EventTrace) -> tuple[Path, dict[str, Any]]:
    if isinstance(trace, EventTrace):
        trace = trace.path
    return load_root(trace)


def last_run(path: Path) -> int:
    """The newest run id committed in the trace at `path` (0 if none started)."""
    for name in reversed(segment_names(path)):
        try:
            run = read_attrs(path / name).get("run_last")
        except TraceError:
            continue
        if isinstance(run, int):
            return run
    return 0


def _filter(path: Path, kinds: Any, since: Any, until: Any, symbol: str | None,
            run: int | Literal["last"] | None) -> _Filter:
    if run == "last":
        run = last_run(path)
    elif run is not None and not isinstance(run, (int, np.integer)):
        raise TraceError(f"run must be an int, 'last' or None, not {run!r}")
    return _Filter(_kind_set(kinds), None if since is None else to_ns(since),
                   None if until is None else to_ns(until), symbol,
                   None if run is None else int(run))


def _segments(path: Path, report: _Report, names: list[str] | None = None) -> Iterator[_Segment]:
    for name in names if names is not None else segment_names(path):
        seg = _Segment.open(path / name, report)
        if seg is not None:
            yield seg


def _tail(path: Path, root: dict, n: int, flt: _Filter, report: _Report,
          end: Position | None = None) -> list[dict]:
    strategy, exchange = str(root.get("strategy")), str(root.get("exchange"))
    names = segment_names(path)
    if end is not None:
        names = [s for s in names if s <= end[0]]
    found: list[dict] = []
    for seg in _segments(path, report, names[::-1]):
        if len(found) >= n:
            break
        if not flt.may_match(seg.attributes):
            continue
        stop = min(seg.rows, end[1]) if end is not None and seg.name == end[0] else seg.rows
        size = max(INDEX_CHUNK, n)
        while stop > 0 and len(found) < n:
            start = max(0, (stop - size) // INDEX_CHUNK * INDEX_CHUNK)
            b = seg.block(start, stop)
            candidates = np.flatnonzero(flt.mask(seg, b))
            while candidates.size and len(found) < n:
                need = n - len(found)
                found[:0] = list(seg.events(b, candidates[-need:], strategy, exchange))
                candidates = candidates[:-need]
            stop, size = start, size * 2
    return found


def _as_frame(events: list[dict]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise TraceError("as_frame=True needs pandas: pip install pandas") from None
    frame = pd.DataFrame(events, columns=["ts", "kind", "exchange", "symbol", "strategy",
                                          "run", "payload"])
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
    return frame


def trace_tail(trace: str | Path | EventTrace, n: int = 10, kinds: str | Iterable[str] | None = None,
               since: Any = None, until: Any = None, symbol: str | None = None,
               as_frame: bool = False, *, run: int | Literal["last"] | None = None,
               errors: Errors = "warn") -> Any:
    """The newest `n` committed events matching the filters, oldest first.

    Each event is a dict {ts, kind, exchange, symbol, strategy, run, payload} (ts in ns);
    with as_frame=True a pandas DataFrame (ts as UTC datetimes). Filters: `kinds` (a name
    or names), since <= ts < until (ns, datetime or ISO string), `symbol`, `run` (an id
    or "last"). Damaged rows are skipped with a warning ("raise": TraceError instead).
    """
    path, root = _resolve(trace)
    flt = _filter(path, kinds, since, until, symbol, run)
    events = _tail(path, root, max(0, int(n)), flt, _Report(errors, path))
    return _as_frame(events) if as_frame else events


def _scan(path: Path, root: dict, flt: _Filter, report: _Report, after: Position | None,
          position: list[Position]) -> Iterator[dict]:
    """Events after `after` in order; `position[0]` is kept at the end of what was read."""
    strategy, exchange = str(root.get("strategy")), str(root.get("exchange"))
    names = segment_names(path)
    if after is not None:
        names = [s for s in names if s >= after[0]]
    for seg in _segments(path, report, names):
        first = after[1] if after is not None and seg.name == after[0] else 0
        if first >= seg.rows or not flt.may_match(seg.attributes):
            position[0] = (seg.name, max(first, seg.rows))
            continue
        for start in range(first, seg.rows, STREAM_ROWS):
            stop = min(seg.rows, start + STREAM_ROWS)
            b = seg.block(start, stop)
            position[0] = (seg.name, stop)
            yield from seg.events(b, np.flatnonzero(flt.mask(seg, b)), strategy, exchange)


def iter_events(trace: str | Path | EventTrace, run: int | Literal["last"] | None = None,
                kinds: str | Iterable[str] | None = None, since: Any = None, until: Any = None,
                symbol: str | None = None, *, errors: Errors = "warn") -> Iterator[dict]:
    """Every committed event matching the filters, oldest first, streamed block by block.

    The events are those committed when each segment is reached. For replay, pass
    run="last" (the newest run) or a run id. Filters as in `trace_tail`.
    """
    path, root = _resolve(trace)
    flt = _filter(path, kinds, since, until, symbol, run)
    return _scan(path, root, flt, _Report(errors, path), None, [("", 0)])


def _end_position(path: Path) -> Position:
    names = segment_names(path)
    if not names:
        return ("", 0)
    try:
        return names[-1], int(read_attrs(path / names[-1]).get("rows") or 0)
    except TraceError:
        return names[-1], 0


def follow(trace: str | Path | EventTrace, n: int = 10, kinds: str | Iterable[str] | None = None,
           symbol: str | None = None, *, run: int | Literal["last"] | None = None,
           interval: float = 0.5, errors: Errors = "warn") -> Iterator[dict]:
    """The last `n` matching events, then each new one as it is committed (like tail -f).

    Never ends by itself: stop iterating (or interrupt) to end it.
    """
    path, root = _resolve(trace)
    flt = _filter(path, kinds, None, None, symbol, run)
    report = _Report(errors, path)
    position = [_end_position(path)]
    yield from _tail(path, root, max(0, int(n)), flt, report, end=position[0])
    while True:
        before = position[0]
        yield from _scan(path, root, flt, report, before, position)
        if position[0] == before:
            time.sleep(interval)


def trace_info(trace: str | Path | EventTrace, check: bool = False) -> dict[str, Any]:
    """A summary of a trace: segments, event counts, runs, symbols, time span.

    With check=True every event is read and the damaged ones are counted ("problems").
    """
    path, root = _resolve(trace)
    report = _Report("skip", path)
    segments = []
    for seg in _segments(path, report):
        a = seg.attributes
        day = a.get("day")
        segments.append({
            "name": seg.name, "rows": seg.rows, "heap_bytes": seg.heap,
            "day": str(dt.date(1970, 1, 1) + dt.timedelta(days=day)) if isinstance(day, int) else None,
            "ts_min": a.get("ts_min"), "ts_max": a.get("ts_max"),
            "run_first": a.get("run_first"), "run_last": a.get("run_last"),
            "symbols": [s for s in seg.symbols if s is not None]})
    info: dict[str, Any] = {
        "path": str(path), "format": root.get("format"), "strategy": root.get("strategy"),
        "exchange": root.get("exchange"), "events": sum(s["rows"] for s in segments),
        "segments": segments, "last_run": last_run(path),
        "symbols": sorted({s for seg in segments for s in seg["symbols"]}),
        "ts_min": min((s["ts_min"] for s in segments if s["ts_min"] is not None), default=None),
        "ts_max": max((s["ts_max"] for s in segments if s["ts_max"] is not None), default=None),
    }
    if check:
        info["readable_events"] = sum(1 for _ in _scan(path, root, _Filter(), report, None, [("", 0)]))
    info["problems"] = report.problems
    return info

