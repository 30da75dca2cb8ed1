"""The writer's side of an EventTrace: segments, rotation, and the crash-safe commit.

Commit protocol (DESIGN.md section 5): arrays have spare capacity, grown by doubling; a
flush writes rows past the committed count, then commits them with one atomic replace of
the segment's zarr.json. Readers trust only rows below `rows`; a reopened writer
overwrites whatever lies past it. Zarr's LocalStore writes each file to a temporary and
renames it, and a new segment is built in a temporary directory and renamed into place,
so a kill at any moment loses only the uncommitted tail.

The writer keeps the last, partly filled chunk of each array in memory as it committed
it, and writes whole chunks from that copy: zarr never reads a chunk back to merge a
write (which measured a third of a flush), and what is rewritten is what was committed,
never what the disk now holds. Every event carries a sequence number, and `append`
skips events already committed, so a flush retried after a failure, even one that
failed half-way through a segment rotation, never writes an event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Iterable

import attrs
import numpy as np
import zarr
from zarr.core.sync import sync as zarr_sync

from ..core.events import KINDS
from ..integrity import check_zarr, compressors, seal, write_json
from .layout import (DAY_NS, FILL, FORMAT, HEAP_CHUNK, INDEX_CHUNK, INDEX_FIELDS, OFF, RUN,
                     SEGMENT_ROWS, SEQ, SYM, TS, VERSION, TraceError, WriterLock, check_format,
                     create_root, group_doc, is_empty_dir, load_root, needs_upgrade,
                     root_problem, segment_attrs, segment_index, segment_name, segment_names)

check_zarr()  # an older zarr is a clear error, not a broken store

log = logging.getLogger(__name__)


def clean_leftovers(path: Path) -> int:
    """Delete temporary files a killed writer left behind; the number deleted.

    Only a writer holding the lock may call this: a live writer's temporaries look the same.
    """
    count = 0
    for entry in os.scandir(path):
        if entry.is_dir() and entry.name.startswith(".s") and ".tmp" in entry.name:
            shutil.rmtree(entry.path, ignore_errors=True)
            count += 1
    for partial in path.rglob("*.partial"):
        with contextlib.suppress(OSError):  # a read-only trace keeps them: they are harmless
            partial.unlink(missing_ok=True)
            count += 1
    return count


_warmed: list[Any] = [None]


def warm_io_threads() -> None:
    """Start all of Zarr's worker threads now, once per executor.

    Python 3.12 forbids starting threads while the interpreter exits, and Zarr starts its
    workers lazily, so without this the exit-time flush of a trace could fail.
    """
    if sys.version_info < (3, 12):
        return
    try:
        from zarr.core.sync import _get_executor
        executor = _get_executor()
        workers = int(executor._max_workers)
    except Exception:  # another Zarr layout: nothing to warm
        return
    if _warmed[0] is executor:
        return
    barrier = threading.Barrier(workers, timeout=1.0)
    for future in [executor.submit(barrier.wait) for _ in range(workers)]:
        try:
            future.result()
        except threading.BrokenBarrierError:  # some workers were busy: they exist already
            pass
    _warmed[0] = executor


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@attrs.define(slots=True, eq=False)
class Tail:
    """The last, partly filled chunk of an array, as the writer last committed it."""

    start: int  # index (along axis 0) of the chunk's first element
    data: np.ndarray


def load_tail(array: zarr.Array, committed: int, fill: int) -> Tail:
    """The chunk that holds position `committed`, with everything from there on set to fill."""
    size = array.chunks[0]
    start = committed - committed % size
    data = np.full(array.chunks, fill, dtype=array.dtype)
    if committed > start:
        data[:committed - start] = array[start:committed]
    return Tail(start, data)


def chunk_writes(array: zarr.Array, tail: Tail, start: int, values: np.ndarray,
                 fill: int) -> tuple[list[Any], Tail]:
    """Coroutines writing `values` at [start, start + len) as whole chunks, and the new tail.

    `start` is the committed end, so only the uncommitted part of `tail.data` changes: a
    retry after a failure writes those positions again. The caller adopts the new tail
    once the rows are committed.
    """
    size, stop = array.chunks[0], start + len(values)
    writes, pos = [], start
    while pos < stop:
        c0 = pos - pos % size
        hi = min(stop, c0 + size)
        buf = tail.data if c0 == tail.start else np.full_like(tail.data, fill)
        buf[pos - c0:hi - c0] = values[pos - start:hi - start]
        writes.append(array.async_array.setitem(slice(c0, c0 + size), buf))
        tail, pos = Tail(c0, buf), hi
    if stop == tail.start + size:  # the last chunk is full: the next one starts empty
        tail = Tail(stop, np.full_like(tail.data, fill))
    return writes, tail


@attrs.define(slots=True, eq=False)
class Segment:
    """The writer's view of one segment: open arrays, chunk tails and the committed state."""

    path: Path
    index: zarr.Array
    heap: zarr.Array
    attributes: dict[str, Any]
    rows: int
    heap_end: int
    seq_first: int
    day: int
    symbols: list[str | None]
    sym_ids: dict[str | None, int]
    index_tail: Tail
    heap_tail: Tail

    @classmethod
    def open(cls, path: Path, attributes: dict[str, Any]) -> Segment:
        """Open a checked segment for appending after its committed rows; TraceError if its
        arrays or its last chunks cannot be read back."""
        index, heap = _open_arrays(path)
        rows, heap_end, seq_first = attributes["rows"], attributes["heap"], attributes["seq_first"]
        if rows > index.shape[0] or heap_end > heap.shape[0]:
            raise TraceError("its committed count exceeds the arrays' length")
        try:
            index_tail = load_tail(index, rows, FILL)
            heap_tail = load_tail(heap, heap_end, 0)
        except Exception as e:
            raise TraceError(f"its last chunks are unreadable ({type(e).__name__}: {e})") from None
        done = rows - index_tail.start
        if done and (index_tail.data[done - 1, OFF] != heap_end or index_tail.data[done - 1, SEQ]
                     != seq_first + rows - 1):
            raise TraceError("its last committed row does not match its committed state")
        attributes = dict(attributes, kinds=list(KINDS)) \
            if len(attributes.get("kinds") or ()) < len(KINDS) else dict(attributes)
        symbols = list(attributes.get("symbols") or [None])
        return cls(path, index, heap, attributes, rows, heap_end, seq_first,
                   int(attributes["day"]), symbols, {s: i for i, s in enumerate(symbols)},
                   index_tail, heap_tail)

    @classmethod
    def create(cls, trace: Path, index: int, day: int, seq_first: int) -> Segment:
        """Build a new empty segment in a temporary directory and rename it into place.

        OSError (EEXIST or ENOTEMPTY) if a non-empty directory already has its name.
        """
        tmp = trace / f".{segment_name(index)}.tmp-{uuid.uuid4().hex[:8]}"
        attributes = seal({"format": FORMAT, "index": index, "day": day, "seq_first": seq_first,
                           "rows": 0, "heap": 0, "kinds": list(KINDS), "symbols": [None],
                           "run_first": None, "run_last": None, "ts_min": None, "ts_max": None})
        try:
            tmp.mkdir()
            write_json(tmp / "zarr.json", group_doc(attributes))
            zarr.create_array(str(tmp / "index"), shape=(INDEX_CHUNK, len(INDEX_FIELDS)),
                              chunks=(INDEX_CHUNK, len(INDEX_FIELDS)), dtype="int64",
                              fill_value=FILL, compressors=compressors())
            zarr.create_array(str(tmp / "heap"), shape=(HEAP_CHUNK,), chunks=(HEAP_CHUNK,),
                              dtype="uint8", fill_value=0, compressors=compressors())
            final = trace / segment_name(index)
            os.rename(tmp, final)  # replaces an empty directory, fails on a non-empty one
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.open(final, attributes)

    def symbol_ids(self, symbols: list[str | None]) -> np.ndarray:
        """Ids of `symbols` in this segment's table, adding new ones (committed with the rows)."""
        ids = self.sym_ids
        for s in dict.fromkeys(symbols):  # new symbols in order of appearance
            if s not in ids:
                ids[s] = len(self.symbols)
                self.symbols.append(s)
        return np.fromiter(map(ids.__getitem__, symbols), np.int64, len(symbols))

    def append(self, rows: np.ndarray, payloads: list[bytes], fsync: bool = False) -> None:
        """Write index rows (off filled in here) and payloads past the committed count, then
        commit them in one atomic zarr.json replace. On failure nothing committed changes."""
        k = len(rows)
        if k == 0:
            return
        lengths = np.fromiter(map(len, payloads), np.int64, k)
        rows[:, OFF] = self.heap_end + np.cumsum(lengths)
        heap_end = int(rows[-1, OFF])
        resized = self._reserve(self.rows + k, heap_end)
        w1, index_tail = chunk_writes(self.index, self.index_tail, self.rows, rows, FILL)
        w2, heap_tail = chunk_writes(self.heap, self.heap_tail, self.heap_end,
                                     np.frombuffer(b"".join(payloads), np.uint8), 0)
        # one batch on zarr's loop, not a round trip per chunk: the writes run side by side
        zarr_sync(_together(w1 + w2))
        if fsync:
            self._fsync_data(self.rows, self.rows + k, heap_end, resized)
        commit = self._committed(rows, self.rows + k, heap_end)
        write_json(self.path / "zarr.json", group_doc(commit), fsync=fsync)
        if fsync:
            _fsync(self.path)
        self.attributes, self.rows, self.heap_end = commit, self.rows + k, heap_end
        self.index_tail, self.heap_tail = index_tail, heap_tail

    def _committed(self, rows: np.ndarray, count: int, heap_end: int) -> dict[str, Any]:
        """The sealed attributes that commit `count` rows, the new ones being `rows`."""
        a = self.attributes
        ts, run = rows[:, TS], rows[:, RUN]
        lo = {"run_first": int(run.min()), "ts_min": int(ts.min())}
        hi = {"run_last": int(run.max()), "ts_max": int(ts.max())}
        out = dict(a, rows=count, heap=heap_end, symbols=list(self.symbols), day=self.day,
                   seq_first=self.seq_first)
        out.update({k: v if a.get(k) is None else min(a[k], v) for k, v in lo.items()})
        out.update({k: v if a.get(k) is None else max(a[k], v) for k, v in hi.items()})
        return seal(out)

    def _reserve(self, rows: int, heap: int) -> list[str]:
        """Grow arrays by doubling so `rows` and `heap` fit; the names of resized arrays."""
        resized = []
        for name, array, need in (("index", self.index, rows), ("heap", self.heap, heap)):
            size = array.shape[0]
            if need > size:
                while size < need:
                    size *= 2
                array.resize((size, *array.shape[1:]))
                resized.append(name)
        return resized

    def _fsync_data(self, start: int, stop: int, heap_end: int, resized: list[str]) -> None:
        files = [self.path / "index" / "c" / str(c) / "0"
                 for c in range(start // INDEX_CHUNK, (stop - 1) // INDEX_CHUNK + 1)]
        files += [self.path / "heap" / "c" / str(c)
                  for c in range(self.heap_end // HEAP_CHUNK, (heap_end - 1) // HEAP_CHUNK + 1)]
        files += [self.path / name / "zarr.json" for name in resized]
        for p in _existing(files):
            _fsync(p)
        for d in _existing([self.path / "index" / "c", self.path / "heap" / "c"]):
            _fsync(d)
            for sub in _existing([d / str(c) for c in range(start // INDEX_CHUNK,
                                                             (stop - 1) // INDEX_CHUNK + 1)]):
                if sub.is_dir():
                    _fsync(sub)


def _open_arrays(path: Path) -> tuple[zarr.Array, zarr.Array]:
    """A segment's index and heap, for writing; TraceError if they are not the trace's."""
    try:
        # each flush rewrites whole chunks: zarr's check for an all-fill-value chunk (to skip
        # writing it) would compare every byte, and never finds one here
        index, heap = (zarr.open_array(str(path / name), mode="r+", zarr_format=3).with_config(
            {"write_empty_chunks": True}) for name in ("index", "heap"))
    except Exception as e:
        raise TraceError(f"its arrays cannot be opened ({type(e).__name__}: {e})") from None
    if index.ndim != 2 or index.shape[1] != len(INDEX_FIELDS) or index.dtype != np.int64 \
            or heap.ndim != 1 or heap.dtype != np.uint8:
        raise TraceError("its arrays do not have the trace's shape and types")
    return index, heap


def _existing(paths: Iterable[Path]) -> Iterable[Path]:
    return (p for p in paths if p.exists())


@attrs.define(slots=True, eq=False)
class TraceStore:
    """The writer's side of a trace: segments, rotation by day and size, the lock.

    `next_seq` is the sequence number of the next event to commit: every event below it
    is in the trace.
    """

    path: Path
    strategy: str
    exchange: str
    lock: WriterLock
    segment: Segment | None = None
    next_index: int = 0
    next_seq: int = 0
    segment_rows: int = SEGMENT_ROWS
    daily: bool = True
    fsync: bool = False
    last_run: int = 0

    @classmethod
    def open(cls, path: Path, strategy: str | None, exchange: str | None, *,
             segment_rows: int = SEGMENT_ROWS, daily: bool = True,
             fsync: bool = False) -> TraceStore:
        """Open (creating if new) the trace at `path` for appending; TraceError if busy."""
        if not (path / "zarr.json").exists():
            create_root(path, strategy, exchange)
        _, root = load_root(path)
        version = check_format(root, path)
        if version < VERSION:
            raise needs_upgrade(path, version)
        problem = root_problem(root, path)
        if problem:
            raise TraceError(f"{problem}; not writing to it")
        for what, given in (("strategy", strategy), ("exchange", exchange)):
            if given is not None and root.get(what) != given:
                raise TraceError(f"{path} holds the trace of {what} {root.get(what)!r}, "
                                 f"not {given!r}")
        lock = WriterLock(path)
        lock.acquire()
        warm_io_threads()
        store = cls(path, str(root.get("strategy")), str(root.get("exchange")), lock,
                    segment_rows=max(1, int(segment_rows)), daily=daily, fsync=fsync)
        try:
            clean_leftovers(path)
            store._open_last()
        except BaseException:
            lock.release()
            raise
        return store

    def _open_last(self) -> None:
        """Find where the trace ends: the next segment index and sequence number, and the
        last segment if it can be appended to (a damaged one is left to the readers)."""
        names = segment_names(self.path)
        while names and is_empty_dir(self.path / names[-1]):
            names.pop()  # a stray empty directory is no segment
        self.next_index = segment_index(names[-1]) + 1 if names else 0
        for name in reversed(names):
            seg_path = self.path / name
            try:
                a = segment_attrs(seg_path, VERSION)
            except TraceError as e:
                log.warning("trace %s: segment %s is damaged (%s); new events go to a new "
                            "segment", self.path, name, e)
                continue
            self.next_seq = a["seq_first"] + a["rows"]
            if name == names[-1]:
                self._reopen(seg_path, a)
            break
        self.last_run = self._last_run(names)

    def _last_run(self, names: list[str]) -> int:
        """The newest committed run id (0 before any strategy_started)."""
        for name in reversed(names):
            try:
                run = segment_attrs(self.path / name, VERSION).get("run_last")
            except TraceError:
                continue
            if isinstance(run, int):
                return run
        return 0

    def _reopen(self, path: Path, attributes: dict[str, Any]) -> None:
        try:
            self.segment = Segment.open(path, attributes)
        except TraceError as e:
            log.warning("trace %s: segment %s cannot be appended to (%s); new events go to "
                        "a new segment", self.path, path.name, e)

    def append(self, rows: np.ndarray, symbols: list[str | None], payloads: list[bytes]) -> None:
        """Commit a batch of index rows (seq, ts, kind, -, run, -) with their symbols and
        payloads, rotating at UTC midnight and at `segment_rows`.

        Rows whose seq is below `next_seq` are committed already and skipped, so a batch
        may be retried whole after any failure. A gap in seq starts a new segment.
        """
        seq = rows[:, SEQ]
        i, k = int(np.searchsorted(seq, self.next_seq)), len(rows)
        days = rows[:, TS] // DAY_NS
        gaps = np.flatnonzero(np.diff(seq) != 1) + 1
        while i < k:
            seg = self._segment_for(int(days[i]), int(seq[i]))
            j = min(k, i + self.segment_rows - seg.rows)
            later = gaps[gaps > i]
            if later.size:
                j = min(j, int(later[0]))
            if self.daily:
                newer = np.flatnonzero(days[i:j] > seg.day)
                if newer.size:  # > 0: _segment_for rotated or re-dated for days[i]
                    j = i + int(newer[0])
            part = rows[i:j]
            part[:, SYM] = seg.symbol_ids(symbols[i:j])
            seg.append(part, payloads[i:j], self.fsync)
            self.next_seq = int(seq[j - 1]) + 1
            self.last_run = max(self.last_run, int(part[:, RUN].max()))
            i = j

    def _segment_for(self, day: int, seq: int) -> Segment:
        seg = self.segment
        if seg is not None and not seg.rows:
            seg.day, seg.seq_first = day, seq  # empty: it takes whatever comes first
        elif seg is None or seg.rows >= self.segment_rows or seq != seg.seq_first + seg.rows \
                or (self.daily and day > seg.day):
            seg = self._new_segment(day, seq)
        return seg

    def _new_segment(self, day: int, seq: int) -> Segment:
        for _ in range(100):
            index = self.next_index
            try:
                seg = Segment.create(self.path, index, day, seq)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                self.next_index += 1  # left by a rotation that failed after its rename
                continue
            self.next_index = index + 1
            self.segment = seg
            if self.fsync:
                _fsync(self.path)
            return seg
        raise TraceError(f"{self.path}: cannot find a free segment name after "
                         f"{segment_name(self.next_index - 1)}")

    def close(self) -> None:
        self.lock.release()


async def _together(writes: list[Any]) -> None:
    """Run `writes` side by side and wait for every one, then raise the first failure.

    A plain gather raises at the first failure and leaves the others running: one of them
    could land after the retry had committed more rows to its chunk, and take them back.
    """
    for outcome in await asyncio.gather(*writes, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


