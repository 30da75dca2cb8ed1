"""Reading a trace: `trace_tail`, `iter_events`, `follow`, `trace_info`.

Every call reads the committed state afresh (an open Zarr handle does not see later
writes), so a reader in another process can tail a trace while it is written, and only
ever sees committed events. Damage is skipped with a `TraceDamageWarning` naming it, or
raises TraceError with `errors="raise"`; every intact event is still read, and no
damaged value is ever returned:

- a chunk that fails its checksum, is missing or does not decode: its rows (or the
  events whose payloads lie in it) are skipped;
- a segment whose metadata is unreadable, fails its seal or disagrees with the trace's
  format or kind codes: the segment is skipped (an empty directory is no segment);
- a gap in the sequence numbers between segments (a deleted segment): reported, with the
  names of the missing segments.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import attrs
import numpy as np
import zarr

from ..core.events import KINDS
from ..integrity import read_checked
from . import journal
from .layout import (FILL, INDEX_CHUNK, KIND, MISSING_KIND, OFF, RUN, SEQ, SYM, TS, V1_COLUMNS,
                     TraceDamageWarning, TraceError, check_format, is_empty_dir, load_root,
                     read_attrs, root_problem, segment_attrs, segment_index, segment_name,
                     segment_names)
from .payload import decode_payload
from .writer import EventTrace

Errors = Literal["warn", "raise", "skip"]
Position = tuple[str, int]  # (segment name, row): where a scan stopped
STREAM_ROWS = 65536
MAX_SPAN = 16 << 20  # heap bytes read at once


@attrs.define(slots=True)
class _Report:
    """Where damage goes: a warning, an exception or nowhere (always kept in `problems`)."""

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
        if not self._span_may_match(a.get("ts_min"), a.get("ts_max"), a.get("run_first"),
                                    a.get("run_last")):
            return False
        return self.symbol is None or self.symbol in (a.get("symbols") or ())

    def may_match_between(self, older: dict[str, Any] | None, newer: dict[str, Any] | None) -> bool:
        """Whether events missing between two segments (None: the trace's edge) could match."""
        older, newer = older or {}, newer or {}
        return self._span_may_match(older.get("ts_max"), newer.get("ts_min"),
                                    older.get("run_last", 0), newer.get("run_first"))

    def _span_may_match(self, ts_lo: Any, ts_hi: Any, run_lo: Any, run_hi: Any) -> bool:
        if self.since is not None and isinstance(ts_hi, int) and ts_hi < self.since:
            return False
        if self.until is not None and isinstance(ts_lo, int) and ts_lo >= self.until:
            return False
        if self.run is not None:
            if isinstance(run_lo, int) and self.run < run_lo:
                return False
            if isinstance(run_hi, int) and self.run > run_hi:
                return False
        return True

    def mask(self, seg: _Segment, b: _Block) -> np.ndarray:
        m = b.valid.copy()
        if self.kinds is not None:
            codes = [c for c, name in enumerate(seg.kind_names) if name in self.kinds]
            m &= np.isin(b.kind, np.array(codes, b.kind.dtype))
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
    seq: np.ndarray | None
    ts: np.ndarray
    kind: np.ndarray
    sym: np.ndarray
    run: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    valid: np.ndarray


def _read(array: Any, start: int, stop: int, fill: int, what: str, report: _Report,
          bad: list[tuple[int, int]] | None = None) -> np.ndarray:
    """array[start:stop]; chunks that cannot be read (missing, failing their checksum, not
    decoding) read as `fill`, are reported by name, and their ranges added to `bad`."""
    values, damaged = read_checked(array, start, stop, fill)
    size = array.chunks[0]
    for c, why in damaged:
        report.add(f"{what} chunk {c} is damaged ({why}); its rows are skipped")
        if bad is not None:
            bad.append((c * size, (c + 1) * size))
    return values


@attrs.define(slots=True, eq=False)
class _Segment:
    """A read-only view of one segment's committed rows (format 1 or 2)."""

    path: Path
    version: int
    rows: int
    heap: int
    seq_first: int | None
    attributes: dict[str, Any]
    kind_names: list[str]
    symbols: list[str | None]
    arrays: dict[str, Any]
    report: _Report

    @classmethod
    def open(cls, path: Path, version: int, report: _Report) -> _Segment | None:
        """The segment at `path`, or None (reported, unless an empty directory) when it
        cannot be read at all."""
        try:
            a = segment_attrs(path, version)
            arrays = _open_arrays(path, version)
        except TraceError as e:
            if not is_empty_dir(path):
                report.add(f"segment {path.name} is damaged and skipped: {e}")
            return None
        rows, heap = int(a.get("rows") or 0), int(a.get("heap") or 0)
        capacity = arrays["index" if version >= 2 else "ts"].shape[0]
        capacity = min([capacity] + [c.shape[0] for n, c in arrays.items() if n in V1_COLUMNS])
        if rows > capacity or heap > arrays["heap"].shape[0]:
            report.add(f"segment {path.name} claims {rows} events / {heap} payload bytes but "
                       f"holds room for only {capacity} / {arrays['heap'].shape[0]}; "
                       "reading what is there")
            rows, heap = min(rows, capacity), min(heap, arrays["heap"].shape[0])
        table = [str(k) for k in (a.get("kinds") or KINDS)]
        names = table[:MISSING_KIND] + [f"unknown:{c}" for c in range(len(table), 256)]
        seq_first = a.get("seq_first") if version >= 2 else None
        return cls(path, version, rows, heap, seq_first, a, names,
                   list(a.get("symbols") or [None]), arrays, report)

    @property
    def name(self) -> str:
        return self.path.name

    def block(self, start: int, stop: int) -> _Block:
        """Index columns of rows [start, stop), with damaged rows marked invalid."""
        lo = max(start - 1, 0)  # the row before holds the first payload's start
        if self.version >= 2:
            idx = _read(self.arrays["index"], lo, stop, FILL, f"segment {self.name}: index",
                        self.report)
            cols = {"seq": idx[:, SEQ], "ts": idx[:, TS], "kind": idx[:, KIND],
                    "sym": idx[:, SYM], "run": idx[:, RUN], "off": idx[:, OFF]}
        else:
            cols = {name: _read(self.arrays[name], lo, stop, fill, f"segment {self.name}: {name}",
                                self.report) for name, (_, fill) in V1_COLUMNS.items()}
            cols["seq"] = None
        off = cols["off"]
        ends = off[1:] if start > 0 else off
        starts = np.empty_like(ends)
        starts[:1] = off[:1] if start > 0 else 0
        starts[1:] = ends[:-1]
        cut = slice(1, None) if start > 0 else slice(None)
        ts, kind, sym, run = (cols[n][cut] for n in ("ts", "kind", "sym", "run"))
        valid = (ts != FILL) & (kind >= 0) & (kind < MISSING_KIND) & (sym >= 0) \
            & (sym < len(self.symbols)) & (run >= 0) & (run != V1_COLUMNS["run"][1]) \
            & (starts >= 0) & (ends > starts) & (ends <= self.heap)
        seq = cols["seq"][cut] if cols["seq"] is not None else None
        if seq is not None:
            valid &= seq == self.seq_first + np.arange(start, stop)
        bad = valid.size - int(np.count_nonzero(valid))
        if bad:
            rows = np.flatnonzero(~valid) + start
            self.report.add(f"segment {self.name}: {bad} damaged events skipped (rows {rows[0]}"
                            f"..{rows[-1]}: missing or damaged chunks, or inconsistent rows)")
        return _Block(start, seq, ts, kind, sym, run, starts, ends, valid)

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
        seq_l = b.seq[rows].tolist() if b.seq is not None else [None] * len(starts)
        skipped: list[int] = []
        i, n = 0, len(starts)
        while i < n:
            j = _span_end(starts, ends, i)
            lo, hi = starts[i], ends[j - 1]
            damaged: list[tuple[int, int]] = []
            heap = _read(self.arrays["heap"], lo, hi, 0, f"segment {self.name}: heap",
                         self.report, damaged).data
            for r in range(i, j):
                if damaged and any(a < ends[r] and starts[r] < b_ for a, b_ in damaged):
                    skipped.append(int(rows[r]) + b.start)
                    continue
                try:
                    payload = decode_payload(heap[starts[r] - lo:ends[r] - lo])
                except ValueError:
                    skipped.append(int(rows[r]) + b.start)
                    continue
                yield {"ts": ts_l[r], "kind": kinds[kind_l[r]], "exchange": exchange,
                       "symbol": symbols[sym_l[r]], "strategy": strategy, "run": run_l[r],
                       "seq": seq_l[r], "payload": payload}
            i = j
        if skipped:
            self.report.add(f"segment {self.name}: {len(skipped)} events with unreadable payloads "
                            f"skipped (rows {skipped[0]}..{skipped[-1]})")


def _open_arrays(path: Path, version: int) -> dict[str, Any]:
    """The arrays of a segment, checked for the expected types; TraceError if not."""
    names = ("index", "heap") if version >= 2 else (*V1_COLUMNS, "heap")
    try:
        arrays = {name: zarr.open_array(str(path / name), mode="r", zarr_format=3)
                  for name in names}
    except Exception as e:
        raise TraceError(f"its arrays cannot be opened ({type(e).__name__}: {e})") from None
    expected = {"index": "int64", "heap": "uint8", **{n: d for n, (d, _) in V1_COLUMNS.items()}}
    for name, array in arrays.items():
        if str(array.dtype) != expected[name] or array.ndim != (2 if name == "index" else 1):
            raise TraceError(f"its {name} array has type {array.dtype}, shape {array.shape}")
    return arrays


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


@attrs.frozen
class _Trace:
    """An opened trace: its directory, root attributes and format version."""

    path: Path
    root: dict[str, Any]
    version: int

    @property
    def strategy(self) -> str:
        return str(self.root.get("strategy"))

    @property
    def exchange(self) -> str:
        return str(self.root.get("exchange"))


def _resolve(trace: str | Path | EventTrace, report: _Report | None = None) -> _Trace:
    if isinstance(trace, EventTrace):
        trace = trace.path
    path, root = load_root(trace)
    t = _Trace(path, root, check_format(root, path))
    problem = root_problem(root, path)
    if problem and report is not None:
        report.add(problem)
    return t


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


def _segments(t: _Trace, report: _Report, names: list[str] | None = None,
              flt: _Filter | None = None, gaps: bool = True) -> Iterator[_Segment]:
    """The readable segments among `names` (default all, oldest first; pass them newest
    first to walk backwards), reporting sequence gaps (unless not `gaps`) between
    neighbours where `flt` could match the missing events."""
    everything = segment_names(t.path)
    names = everything if names is None else names
    backwards = len(names) > 1 and segment_index(names[0]) > segment_index(names[-1])
    flt = flt or _Filter()
    prev: _Segment | None = None
    for name in names:
        seg = _Segment.open(t.path / name, t.version, report)
        if seg is None:
            continue
        if gaps and (prev is not None or (not backwards and name == everything[0])):
            _check_gap(t, *((seg, prev) if backwards else (prev, seg)), report, flt)
        prev = seg
        yield seg
    if gaps and backwards and prev is not None and prev.name == everything[0]:
        _check_gap(t, None, prev, report, flt)


def _check_gap(t: _Trace, older: _Segment | None, newer: _Segment | None, report: _Report,
               flt: _Filter) -> None:
    """Report events missing between two neighbouring segments (older None: the start)."""
    if newer is None or not flt.may_match_between(older and older.attributes, newer.attributes):
        return
    first = segment_index(older.name) + 1 if older is not None else 0
    between = [segment_name(i) for i in range(first, segment_index(newer.name))]
    gone = [n for n in between if not (t.path / n).exists() or is_empty_dir(t.path / n)]
    damaged = [n for n in between if n not in gone]
    names = "".join(f" (segment{'s' if len(group) > 1 else ''} {_span(group)} {what})"
                    for group, what in ((gone, "missing"), (damaged, "damaged")) if group)
    if t.version >= 2:
        expected = older.seq_first + older.rows if older is not None else 0
        assert newer.seq_first is not None and expected is not None
        if newer.seq_first > expected:
            where = f"before {newer.name}" if older is None else f"between {older.name} and {newer.name}"
            report.add(f"events {expected}..{newer.seq_first - 1} are missing {where}{names}")
        elif newer.seq_first < expected:
            report.add(f"segments {older.name} and {newer.name} overlap in sequence numbers "
                       f"({newer.seq_first} < {expected})")
    elif gone:
        where = f"before {newer.name}" if older is None else f"between {older.name} and {newer.name}"
        report.add(f"events are missing {where}{names}")


def _span(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"


def _tail(t: _Trace, n: int, flt: _Filter, report: _Report,
          end: Position | None = None) -> list[dict]:
    names = segment_names(t.path)
    if end is not None:
        names = [s for s in names if segment_index(s) <= segment_index(end[0])] if end[0] else []
    found: list[dict] = []
    for seg in _segments(t, report, names[::-1], flt):
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
                found[:0] = list(seg.events(b, candidates[-need:], t.strategy, t.exchange))
                candidates = candidates[:-need]
            stop, size = start, size * 2
    return found


def _as_frame(events: list[dict]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise TraceError("as_frame=True needs pandas: pip install pandas") from None
    frame = pd.DataFrame(events, columns=["ts", "kind", "exchange", "symbol", "strategy",
                                          "run", "seq", "payload"])
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
    return frame


def trace_tail(trace: str | Path | EventTrace, n: int = 10, kinds: str | Iterable[str] | None = None,
               since: Any = None, until: Any = None, symbol: str | None = None,
               as_frame: bool = False, *, run: int | Literal["last"] | None = None,
               errors: Errors = "warn") -> Any:
    """The newest `n` committed events matching the filters, oldest first.

    Each event is a dict {ts, kind, exchange, symbol, strategy, run, seq, payload} (ts in
    ns; seq the event's sequence number, None in format-1 traces); with as_frame=True a
    pandas DataFrame (ts as UTC datetimes). Filters: `kinds` (a name or names),
    since <= ts < until (ns, datetime or ISO string), `symbol`, `run` (an id or "last").
    Damage is skipped with a warning naming it ("raise": TraceError instead).
    """
    report = _Report(errors, Path(str(getattr(trace, "path", trace))))
    t = _resolve(trace, report)
    flt = _filter(t.path, kinds, since, until, symbol, run)
    events = _tail(t, max(0, int(n)), flt, report)
    return _as_frame(events) if as_frame else events


def _scan(t: _Trace, flt: _Filter, report: _Report, after: Position | None,
          position: list[Position]) -> Iterator[dict]:
    """Events after `after` in order; `position[0]` is kept at the end of what was read."""
    names = segment_names(t.path)
    if after is not None and after[0]:
        names = [s for s in names if segment_index(s) >= segment_index(after[0])]
    for seg in _segments(t, report, names, flt, gaps=after is None):
        first = after[1] if after is not None and seg.name == after[0] else 0
        if first >= seg.rows or not flt.may_match(seg.attributes):
            position[0] = (seg.name, max(first, seg.rows))
            continue
        for start in range(first, seg.rows, STREAM_ROWS):
            stop = min(seg.rows, start + STREAM_ROWS)
            b = seg.block(start, stop)
            position[0] = (seg.name, stop)
            yield from seg.events(b, np.flatnonzero(flt.mask(seg, b)), t.strategy, t.exchange)


def iter_events(trace: str | Path | EventTrace, run: int | Literal["last"] | None = None,
                kinds: str | Iterable[str] | None = None, since: Any = None, until: Any = None,
                symbol: str | None = None, *, errors: Errors = "warn") -> Iterator[dict]:
    """Every committed event matching the filters, oldest first, streamed block by block.

    The events are those committed when each segment is reached. For replay, pass
    run="last" (the newest run) or a run id. Filters as in `trace_tail`.
    """
    report = _Report(errors, Path(str(getattr(trace, "path", trace))))
    return scan(trace, report, run=run, kinds=kinds, since=since, until=until, symbol=symbol)


def scan(trace: str | Path | EventTrace, report: _Report, **filters: Any) -> Iterator[dict]:
    """`iter_events` reporting damage to `report` (replay collects it there)."""
    t = _resolve(trace, report)
    flt = _filter(t.path, filters.get("kinds"), filters.get("since"), filters.get("until"),
                  filters.get("symbol"), filters.get("run"))
    return _scan(t, flt, report, None, [("", 0)])


def committed_events(trace: str | Path, first: int, stop: int) -> dict[int, dict]:
    """The readable committed events with first <= seq < stop, by seq (format 2 only)."""
    t = _resolve(trace)
    out: dict[int, dict] = {}
    if t.version < 2:
        return out
    for seg in _segments(t, _Report("skip", t.path), gaps=False):
        assert seg.seq_first is not None
        lo, hi = max(first, seg.seq_first), min(stop, seg.seq_first + seg.rows)
        if lo < hi:
            b = seg.block(lo - seg.seq_first, hi - seg.seq_first)
            for event in seg.events(b, np.flatnonzero(b.valid), t.strategy, t.exchange):
                out[event["seq"]] = event
    return out


def _end_position(path: Path) -> Position:
    names = segment_names(path)
    while names and is_empty_dir(path / names[-1]):
        names.pop()  # a stray empty directory is no segment: writers go on below it
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

    The end it follows from is read when `follow` is called, not when the iteration
    begins: an event committed in between is a new one, never taken for an old one.
    Never ends by itself: stop iterating (or interrupt) to end it.
    """
    report = _Report(errors, Path(str(getattr(trace, "path", trace))))
    t = _resolve(trace, report)
    flt = _filter(t.path, kinds, None, None, symbol, run)
    return _following(t, max(0, int(n)), flt, report, [_end_position(t.path)], interval)


def _following(t: _Trace, n: int, flt: _Filter, report: _Report, position: list[Position],
               interval: float) -> Iterator[dict]:
    yield from _tail(t, n, flt, report, end=position[0])
    while True:
        before = position[0]
        yield from _scan(t, flt, report, before, position)
        if position[0] == before:
            time.sleep(interval)


def trace_info(trace: str | Path | EventTrace, check: bool = False) -> dict[str, Any]:
    """A summary of a trace: segments, event counts, runs, symbols, time span, damage.

    With check=True every event is read, which verifies the checksum of every chunk, and
    the damaged ones are named ("problems"). "notes" say what is not damage but worth
    knowing: a format without checksums, journals waiting to be committed. A journal that
    cannot be read, or whose events differ from the trace's under the same numbers, is a
    problem.
    """
    report = _Report("skip", Path(str(getattr(trace, "path", trace))))
    t = _resolve(trace, report)
    segments = [_segment_info(seg) for seg in _segments(t, report)]
    info: dict[str, Any] = {
        "path": str(t.path), "format": t.root.get("format"), "strategy": t.root.get("strategy"),
        "exchange": t.root.get("exchange"), "events": sum(s["rows"] for s in segments),
        "segments": segments, "last_run": last_run(t.path),
        "symbols": sorted({s for seg in segments for s in seg["symbols"]}),
        "ts_min": min((s["ts_min"] for s in segments if s["ts_min"] is not None), default=None),
        "ts_max": max((s["ts_max"] for s in segments if s["ts_max"] is not None), default=None),
    }
    if check:
        info["readable_events"] = sum(1 for _ in _scan(t, _Filter(), report, None, [("", 0)]))
    conflicts, waiting = journal_problems(t.path, segments)
    info["problems"] = report.problems + conflicts
    info["notes"] = _notes(t) + waiting
    return info


def journal_problems(trace: str | Path, segments: list[dict] | None = None) -> tuple[list[str], list[str]]:
    """(journals that conflict with the trace or cannot be read, journals waiting to be
    committed), each as a sentence; `segments` as in `trace_info` (read if None)."""
    path = Path(str(getattr(trace, "path", trace)))
    if not journal.find(path):
        return [], []
    if segments is None:
        t = _resolve(path)
        segments = [_segment_info(seg) for seg in _segments(t, _Report("skip", t.path), gaps=False)]
    end = max((s["seq_first"] + s["rows"] for s in segments if s["seq_first"] is not None),
              default=0)
    return journal.problems(path, end)


def _segment_info(seg: _Segment) -> dict[str, Any]:
    a = seg.attributes
    day = a.get("day")
    return {"name": seg.name, "rows": seg.rows, "heap_bytes": seg.heap, "seq_first": seg.seq_first,
            "day": str(dt.date(1970, 1, 1) + dt.timedelta(days=day)) if isinstance(day, int) else None,
            "ts_min": a.get("ts_min"), "ts_max": a.get("ts_max"),
            "run_first": a.get("run_first"), "run_last": a.get("run_last"),
            "symbols": [s for s in seg.symbols if s is not None]}


def _notes(t: _Trace) -> list[str]:
    notes = []
    if t.version < 2:
        notes.append(f"format {t.root.get('format')} has no checksums or sequence numbers: damage "
                     f"may go unseen; convert it with `planarpy trace upgrade {t.path}`")
    return notes
