"""The on-disk layout of an EventTrace and its crash-safe commit protocol.

A trace is a Zarr v3 hierarchy, one per strategy and exchange
(``traces/<strategy>/<exchange>/`` by default)::

    zarr.json       root group; attributes: format "planarpy.trace/1", strategy, exchange
    s000000/        a segment: a group whose attributes hold its committed state
      ts    int64   event time, ns since the epoch           chunks of 16384, zstd 1
      kind  uint8   code into attributes["kinds"]            (255: missing)
      sym   uint32  id into attributes["symbols"]; 0 = none
      run   uint32  run id: 1 + the strategy_started events before, 0 before any
      off   int64   end offset of the row's payload in heap  (its start: the row before)
      heap  uint8   concatenated msgspec-JSON payloads       chunks of 1 MiB, zstd 1

Segment attributes: format, index, day (UTC day number of its events), rows (the
committed count), heap (committed heap bytes), kinds, symbols, run_first, run_last,
ts_min, ts_max. A segment holds at most one UTC day and `segment_rows` events.

Commit protocol (DESIGN.md section 5): arrays have spare capacity, grown by doubling;
a flush writes rows past the committed count, then commits them with one atomic write
of the segment's attributes. Readers trust only rows below `rows`; a reopened writer
overwrites whatever lies past it. Zarr's LocalStore writes each file to a `*.partial`
temporary and renames it, and a new segment is built in a temporary directory and
renamed into place, so a kill at any moment loses only the uncommitted tail.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

import attrs
import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.sync import sync as zarr_sync

from ..core.errors import PlanarError
from ..core.events import KINDS

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; one writer per trace is up to the user
    fcntl = None  # type: ignore[assignment]

FORMAT_NAME = "planarpy.trace"
VERSION = 1
FORMAT = f"{FORMAT_NAME}/{VERSION}"
INDEX_CHUNK = 16384
HEAP_CHUNK = 1 << 20
SEGMENT_ROWS = 1 << 21
DAY_NS = 86_400 * 10**9
MISSING_KIND = 255
# Fill values mark rows whose chunk is missing: no real event can hold these.
COLUMNS: dict[str, tuple[str, int]] = {
    "ts": ("int64", int(np.iinfo(np.int64).min)),
    "kind": ("uint8", MISSING_KIND),
    "sym": ("uint32", int(np.iinfo(np.uint32).max)),
    "run": ("uint32", int(np.iinfo(np.uint32).max)),
    "off": ("int64", -1),
}
_SEGMENT_RE = re.compile(r"s\d{6}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class TraceError(PlanarError):
    """A trace cannot be opened or read: not a trace, a newer format, damaged, busy."""


class TraceDamageWarning(UserWarning):
    """Some rows of a trace are damaged and were skipped; the others were read."""


def default_root() -> Path:
    """$PLANARPY_TRACES, else traces/ under the current directory."""
    env = os.environ.get("PLANARPY_TRACES")
    return Path(env) if env else Path.cwd() / "traces"


def trace_path(strategy: str, exchange: str, root: str | Path | None = None) -> Path:
    """Where the trace of `strategy` on `exchange` lives: <root>/<strategy>/<exchange>."""
    for what, name in (("strategy", strategy), ("exchange", exchange)):
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise TraceError(f"{what} name {name!r} cannot name a trace directory "
                             "(letters, digits, '_', '.', '+', '-')")
    return Path(root if root is not None else default_root()) / strategy / exchange


def segment_name(index: int) -> str:
    return f"s{index:06d}"


def segment_names(path: Path) -> list[str]:
    """The segments of a trace, oldest first."""
    try:
        names = os.listdir(path)
    except OSError as e:
        raise TraceError(f"cannot list trace {path}: {e.strerror}") from None
    return sorted(n for n in names if _SEGMENT_RE.fullmatch(n))


def read_attrs(node: Path) -> dict[str, Any]:
    """The attributes of a Zarr v3 group, read fresh from its zarr.json."""
    meta_path = node / "zarr.json"
    try:
        meta = json.loads(meta_path.read_bytes())
    except FileNotFoundError:
        raise TraceError(f"{node} is not an EventTrace: no zarr.json there") from None
    except (OSError, ValueError) as e:
        raise TraceError(f"{meta_path} is unreadable: {e}") from None
    if not isinstance(meta, dict) or meta.get("zarr_format") != 3 or meta.get("node_type") != "group":
        raise TraceError(f"{node} is not an EventTrace: not a Zarr v3 group")
    attributes = meta.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def check_format(attributes: dict[str, Any], where: Path) -> int:
    """The format version in `attributes`; TraceError if absent or newer than this reader."""
    fmt = attributes.get("format")
    name, _, version = fmt.partition("/") if isinstance(fmt, str) else ("", "", "")
    if name != FORMAT_NAME or not version.isdigit():
        raise TraceError(f"{where} is not an EventTrace (format attribute {fmt!r}, "
                         f"expected {FORMAT!r})")
    if int(version) > VERSION:
        raise TraceError(f"{where} was written in trace format version {version}, newer than "
                         f"this planarpy reads (version {VERSION}): upgrade planarpy")
    return int(version)


def load_root(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The trace directory and its root attributes, checked; TraceError if it is no trace."""
    path = Path(path)
    if not path.is_dir():
        raise TraceError(f"{path} is not an EventTrace: no such directory")
    attributes = read_attrs(path)
    check_format(attributes, path)
    return path, attributes


def create_root(path: Path, strategy: str, exchange: str) -> None:
    """Start an empty trace at `path` (which must not hold anything else)."""
    if path.exists() and any(not p.name.endswith(".partial") for p in path.iterdir()):
        raise TraceError(f"{path} exists and is not an EventTrace; refusing to write there")
    path.mkdir(parents=True, exist_ok=True)
    for partial in path.glob("*.partial"):  # a killed create_root's zarr.json
        partial.unlink()
    zarr.open_group(str(path), mode="w", attributes={
        "format": FORMAT, "strategy": strategy, "exchange": exchange,
        "created_ns": time.time_ns()})


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


def open_column(segment: Path, name: str) -> zarr.Array:
    """One column of a segment, opened read-only (a fresh handle sees the latest writes)."""
    return zarr.open_array(str(segment / name), mode="r")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@attrs.define(slots=True, eq=False)
class WriterLock:
    """An exclusive flock on the trace directory itself; the kernel drops it if the writer dies.

    Locking the directory adds no file that Zarr would list as a stray hierarchy member.
    """

    path: Path
    fd: int = -1

    def acquire(self) -> None:
        if fcntl is None:
            return
        self.fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = -1
            raise TraceError(f"{self.path} is being written by another process") from None

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@attrs.define(slots=True, eq=False)
class Segment:
    """The writer's view of one segment: open arrays and the committed state."""

    path: Path
    group: zarr.Group
    arrays: dict[str, zarr.Array]
    attributes: dict[str, Any]
    rows: int
    heap: int
    day: int
    symbols: list[str | None]
    sym_ids: dict[str | None, int]

    @classmethod
    def open(cls, path: Path) -> Segment:
        """Open an existing segment for appending after its committed rows."""
        group = zarr.open_group(str(path), mode="r+")
        attributes = dict(group.attrs.asdict())
        check_format(attributes, path)
        kinds = list(attributes.get("kinds") or [])
        if kinds != list(KINDS[:len(kinds)]) and list(KINDS) != kinds[:len(KINDS)]:
            raise TraceError(f"{path}: its kind table disagrees with this planarpy's")
        if len(kinds) < len(KINDS):
            attributes["kinds"] = list(KINDS)
        # each flush rewrites the last, partial chunk of every column: zarr's default check
        # for an all-fill-value chunk (to skip writing it) compared every byte of the 1 MiB
        # heap chunk each time, a quarter of a flush's CPU, and never finds one here
        arrays = {name: group[name].with_config({"write_empty_chunks": True})
                  for name in (*COLUMNS, "heap")}
        rows, heap = int(attributes.get("rows", 0)), int(attributes.get("heap", 0))
        if rows > min(a.shape[0] for n, a in arrays.items() if n != "heap") or heap > arrays["heap"].shape[0]:
            raise TraceError(f"{path}: committed count exceeds the arrays' length")
        symbols = list(attributes.get("symbols") or [None])
        return cls(path, group, arrays, attributes, rows, heap, int(attributes.get("day", 0)),
                   symbols, {s: i for i, s in enumerate(symbols)})

    @classmethod
    def create(cls, trace: Path, index: int, day: int) -> Segment:
        """Build a new empty segment in a temporary directory and rename it into place."""
        tmp = trace / f".{segment_name(index)}.tmp-{uuid.uuid4().hex[:8]}"
        attributes = {"format": FORMAT, "index": index, "day": day, "rows": 0, "heap": 0,
                      "kinds": list(KINDS), "symbols": [None], "run_first": None,
                      "run_last": None, "ts_min": None, "ts_max": None}
        group = zarr.open_group(str(tmp), mode="w", attributes=attributes)
        zstd = ZstdCodec(level=1)
        for name, (dtype, fill) in COLUMNS.items():
            group.create_array(name, shape=(INDEX_CHUNK,), chunks=(INDEX_CHUNK,), dtype=dtype,
                               fill_value=fill, compressors=zstd)
        group.create_array("heap", shape=(HEAP_CHUNK,), chunks=(HEAP_CHUNK,), dtype="uint8",
                           fill_value=0, compressors=zstd)
        final = trace / segment_name(index)
        os.rename(tmp, final)
        return cls.open(final)

    def symbol_ids(self, symbols: list[str | None]) -> np.ndarray:
        """Ids of `symbols` in this segment's table, adding new ones (committed with the rows)."""
        ids = self.sym_ids
        for s in dict.fromkeys(symbols):  # new symbols in order of appearance
            if s not in ids:
                ids[s] = len(self.symbols)
                self.symbols.append(s)
        return np.fromiter(map(ids.__getitem__, symbols), np.uint32, len(symbols))

    def append(self, ts: np.ndarray, kind: np.ndarray, sym: np.ndarray, run: np.ndarray,
               payloads: list[bytes], fsync: bool = False) -> None:
        """Write rows past the committed count, then commit them in one attribute write."""
        k = len(ts)
        if k == 0:
            return
        lengths = np.fromiter(map(len, payloads), np.int64, k)
        off = self.heap + np.cumsum(lengths)
        heap_end = int(off[-1])
        touched = self._reserve(self.rows + k, heap_end)
        start, stop = self.rows, self.rows + k
        columns = {"ts": ts, "kind": kind, "sym": sym, "run": run, "off": off}
        writes = [self.arrays[name].async_array.setitem(slice(start, stop), values)
                  for name, values in columns.items()]
        writes.append(self.arrays["heap"].async_array.setitem(
            slice(self.heap, heap_end), np.frombuffer(b"".join(payloads), np.uint8)))
        # one batch on zarr's loop, not six round trips to it: the writes run side by side
        zarr_sync(_together(writes))
        if fsync:
            self._fsync_data(start, stop, heap_end, touched)
        runs = [int(run.min()), int(run.max())]
        a = self.attributes
        commit = {
            "rows": stop, "heap": heap_end, "symbols": list(self.symbols), "kinds": a["kinds"],
            "day": self.day,
            "run_first": runs[0] if a.get("run_first") is None else min(a["run_first"], runs[0]),
            "run_last": runs[1] if a.get("run_last") is None else max(a["run_last"], runs[1]),
            "ts_min": int(ts.min()) if a.get("ts_min") is None else min(a["ts_min"], int(ts.min())),
            "ts_max": int(ts.max()) if a.get("ts_max") is None else max(a["ts_max"], int(ts.max())),
        }
        self.group.update_attributes(commit)  # the commit: one atomic zarr.json replace
        a.update(commit)
        self.rows, self.heap = stop, heap_end
        if fsync:
            _fsync(self.path / "zarr.json")
            _fsync(self.path)

    def _reserve(self, rows: int, heap: int) -> list[str]:
        """Grow arrays by doubling so `rows` and `heap` fit; the names of resized arrays."""
        touched = []
        for name, array in self.arrays.items():
            need = heap if name == "heap" else rows
            size = array.shape[0]
            if need > size:
                while size < need:
                    size *= 2
                array.resize((size,))
                touched.append(name)
        return touched

    def _fsync_data(self, start: int, stop: int, heap_end: int, touched: list[str]) -> None:
        files = []
        for name in COLUMNS:
            for c in range(start // INDEX_CHUNK, (stop - 1) // INDEX_CHUNK + 1):
                files.append(self.path / name / "c" / str(c))
        for c in range(self.heap // HEAP_CHUNK, (heap_end - 1) // HEAP_CHUNK + 1):
            files.append(self.path / "heap" / "c" / str(c))
        files += [self.path / name / "zarr.json" for name in touched]
        for p in _existing(files):
            _fsync(p)
        for name in (*COLUMNS, "heap"):
            _fsync(self.path / name / "c")


def _existing(paths: Iterable[Path]) -> Iterable[Path]:
    return (p for p in paths if p.exists())


@attrs.define(slots=True, eq=False)
class TraceStore:
    """The writer's side of a trace: segments, rotation by day and size, the lock."""

    path: Path
    strategy: str
    exchange: str
    lock: WriterLock
    segment: Segment | None = None
    next_index: int = 0
    segment_rows: int = SEGMENT_ROWS
    daily: bool = True
    fsync: bool = False

    @classmethod
    def open(cls, path: Path, strategy: str | None, exchange: str | None, *,
             segment_rows: int = SEGMENT_ROWS, daily: bool = True,
             fsync: bool = False) -> TraceStore:
        """Open (creating if new) the trace at `path` for appending; TraceError if busy."""
        if not (path / "zarr.json").exists():
            if strategy is None or exchange is None:
                raise TraceError(f"{path} is not an EventTrace yet: give strategy and exchange "
                                 "to create one")
            create_root(path, strategy, exchange)
        _, root = load_root(path)
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
        names = segment_names(self.path)
        self.next_index = int(names[-1][1:]) + 1 if names else 0
        if names:
            last = self.path / names[-1]
            check_format(read_attrs(last), last)
            try:
                self.segment = Segment.open(last)
            except Exception:  # damaged beyond appending: keep it for readers, start afresh
                self.segment = None

    @property
    def last_run(self) -> int:
        """The newest committed run id (0 before any strategy_started)."""
        for name in reversed(segment_names(self.path)):
            try:
                run = read_attrs(self.path / name).get("run_last")
            except TraceError:
                continue
            if isinstance(run, int):
                return run
        return 0

    def append(self, ts: np.ndarray, kind: np.ndarray, symbols: list[str | None],
               run: np.ndarray, payloads: list[bytes]) -> None:
        """Commit a batch, rotating to new segments at UTC midnight and at `segment_rows`."""
        days = ts // DAY_NS
        i, k = 0, len(ts)
        while i < k:
            seg = self._segment_for(int(days[i]))
            j = min(k, i + self.segment_rows - seg.rows)
            if self.daily:
                later = np.flatnonzero(days[i:j] > seg.day)
                if later.size:  # > 0: _segment_for rotated or re-dated for days[i]
                    j = i + int(later[0])
            sym = seg.symbol_ids(symbols[i:j])
            seg.append(ts[i:j], kind[i:j], sym, run[i:j], payloads[i:j], self.fsync)
            i = j

    def _segment_for(self, day: int) -> Segment:
        seg = self.segment
        if seg is None or seg.rows >= self.segment_rows or (self.daily and seg.rows and day > seg.day):
            seg = self.segment = Segment.create(self.path, self.next_index, day)
            self.next_index += 1
            if self.fsync:
                _fsync(self.path)
        elif not seg.rows:
            seg.day = day
        return seg

    def close(self) -> None:
        self.lock.release()


async def _together(writes: list[Any]) -> None:
    await asyncio.gather(*writes)
