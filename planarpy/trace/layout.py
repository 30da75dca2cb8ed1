"""The on-disk layout of an EventTrace: names, format versions, checked metadata, creation.

A trace is a Zarr v3 hierarchy, one per strategy and exchange
(``traces/<strategy>/<exchange>/`` by default)::

    zarr.json     root group; attributes: format "planarpy.trace/2", strategy, exchange,
                  created_ns, crc
    s000000/      a segment: a group whose attributes hold its committed state
      index int64 (rows, 6): seq, ts, kind, sym, run, off   chunks of 16384 rows
      heap  uint8 concatenated msgspec-JSON payloads        chunks of 1 MiB

    seq   the event's sequence number: 0, 1, 2... across the whole trace
    ts    event time, ns since the epoch
    kind  code into attributes["kinds"] (codes are only ever appended, core/events.py)
    sym   id into attributes["symbols"]; 0 = none
    run   run id: 1 + the strategy_started events before, 0 before any
    off   end offset of the row's payload in heap (its start: the row before's end)

Every chunk is zstd-compressed and sealed with a CRC-32C (planarpy.integrity); a missing
chunk reads as the fill value, int64 min, which no real row holds.

Segment attributes: format, index, day (UTC day number of its events), seq_first (seq of
row 0), rows (the committed count), heap (committed heap bytes), kinds, symbols,
run_first, run_last, ts_min, ts_max, and crc, a seal over the others. A segment holds at
most one UTC day and `segment_rows` events; consecutive segments continue the sequence,
so a missing segment shows as a gap.

Format 1 ("planarpy.trace/1", written before sequence numbers and checksums) kept one
array per column (ts, kind, sym, run, off) and no seals. Readers read it as it is;
writers refuse it, and `planarpy trace upgrade` converts it (trace/upgrade.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import attrs
import numpy as np

from ..core.errors import PlanarError
from ..core.events import KINDS
from ..integrity import format_version, read_group_meta, seal, seal_ok, write_json

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; one writer per trace is up to the user
    fcntl = None  # type: ignore[assignment]

FORMAT_NAME = "planarpy.trace"
VERSION = 2
FORMAT = f"{FORMAT_NAME}/{VERSION}"
INDEX_FIELDS = ("seq", "ts", "kind", "sym", "run", "off")
SEQ, TS, KIND, SYM, RUN, OFF = range(len(INDEX_FIELDS))
FILL = int(np.iinfo(np.int64).min)
INDEX_CHUNK = 16384
HEAP_CHUNK = 1 << 20
SEGMENT_ROWS = 1 << 21
DAY_NS = 86_400 * 10**9
MISSING_KIND = 255
# Format 1 columns and the fill values that mark rows whose chunk is missing.
V1_COLUMNS: dict[str, tuple[str, int]] = {
    "ts": ("int64", FILL),
    "kind": ("uint8", MISSING_KIND),
    "sym": ("uint32", int(np.iinfo(np.uint32).max)),
    "run": ("uint32", int(np.iinfo(np.uint32).max)),
    "off": ("int64", -1),
}
_SEGMENT_RE = re.compile(r"s\d{6,}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_COMMITTED = ("index", "day", "rows", "heap", "seq_first")
_COMMITTED_V1 = ("rows", "heap")


class TraceError(PlanarError):
    """A trace cannot be opened or read: not a trace, another format, damaged, busy."""


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


def segment_index(name: str) -> int:
    return int(name[1:])


def segment_names(path: Path) -> list[str]:
    """The segments of a trace, oldest first."""
    try:
        names = os.listdir(path)
    except OSError as e:
        raise TraceError(f"cannot list trace {path}: {e.strerror}") from None
    return sorted((n for n in names if _SEGMENT_RE.fullmatch(n)), key=segment_index)


def is_empty_dir(path: Path) -> bool:
    """A directory with nothing in it: a stray name, not a (damaged) segment."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def read_attrs(node: Path) -> dict[str, Any]:
    """The attributes of a Zarr v3 group, read fresh from its zarr.json."""
    try:
        meta = read_group_meta(node)
    except FileNotFoundError:
        raise TraceError(f"{node} is not an EventTrace: no zarr.json there") from None
    except OSError as e:
        raise TraceError(f"{node / 'zarr.json'} is unreadable: {e.strerror or e}") from None
    except ValueError as e:
        raise TraceError(f"{e}; {node} is not a readable EventTrace") from None
    attributes = meta.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def trace_version(attributes: dict[str, Any]) -> int | None:
    """The trace format version named in `attributes`, None if they name none."""
    return format_version(attributes.get("format"), FORMAT_NAME)


def check_format(attributes: dict[str, Any], where: Path) -> int:
    """The format version in `attributes`; TraceError if absent or newer than this reader."""
    version = trace_version(attributes)
    if version is None:
        raise TraceError(f"{where} is not an EventTrace (format attribute "
                         f"{attributes.get('format')!r}, expected {FORMAT!r})")
    if version > VERSION:
        raise TraceError(f"{where} was written in trace format version {version}, newer than "
                         f"this planarpy reads (version {VERSION}): upgrade planarpy")
    return version


def load_root(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The trace directory and its root attributes, checked; TraceError if it is no trace."""
    path = Path(path)
    if not path.is_dir():
        if interrupted_upgrade(path) is not None:
            raise TraceError(f"{path} is not there: an upgrade of it was interrupted; run "
                             f"`planarpy trace upgrade {path}` (or open it for writing) to finish it")
        raise TraceError(f"{path} is not an EventTrace: no such directory")
    attributes = read_attrs(path)
    check_format(attributes, path)
    return path, attributes


def root_problem(attributes: dict[str, Any], path: Path) -> str | None:
    """Why the root's identity cannot be trusted, or None."""
    if seal_ok(attributes) is False:
        return (f"the root metadata {path / 'zarr.json'} fails its checksum: the recorded "
                "strategy and exchange may be wrong")
    return None


def needs_upgrade(path: Path, version: int) -> TraceError:
    """The error a writer raises for a trace of an older format."""
    return TraceError(f"{path} was written in trace format {FORMAT_NAME}/{version} (no sequence "
                      "numbers, no checksums); readers still read it, but to add to it convert "
                      f"it first with `planarpy trace upgrade {path}`")


def segment_attrs(path: Path, version: int) -> dict[str, Any]:
    """A segment's committed attributes, checked; TraceError saying what is wrong.

    `version` is the trace's format version: every segment has the trace's format.
    """
    a = read_attrs(path)
    if trace_version(a) != version:
        raise TraceError(f"its format attribute is {a.get('format')!r}, not "
                         f"'{FORMAT_NAME}/{version}'")
    if version >= 2 and seal_ok(a) is not True:
        raise TraceError("its metadata fails its checksum (a damaged or edited commit)")
    counts = [a.get(k) for k in _COMMITTED] if version >= 2 else [a.get(k) or 0 for k in _COMMITTED_V1]
    if not all(map(_is_count, counts)):
        raise TraceError("its committed state is malformed")
    kinds_problem = kind_table_problem(a.get("kinds"))
    if kinds_problem:
        raise TraceError(kinds_problem)
    return a


def kind_table_problem(kinds: Any) -> str | None:
    """Why a stored kind table cannot be read with this planarpy's codes, or None.

    Codes are only ever appended, so a table must agree with ours where both have a code.
    """
    if kinds is None:
        return None
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        return "its kind table is malformed"
    for code, (theirs, ours) in enumerate(zip(kinds, KINDS)):
        if theirs != ours:
            return (f"its kind table disagrees with this planarpy's (code {code} is "
                    f"{theirs!r} there, {ours!r} here)")
    return None


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def group_doc(attributes: dict[str, Any]) -> dict[str, Any]:
    """The zarr.json of a Zarr v3 group with these attributes."""
    return {"zarr_format": 3, "node_type": "group", "attributes": attributes}


def create_root(path: Path, strategy: str | None, exchange: str | None) -> None:
    """Start an empty trace at `path` unless another process just did, or an interrupted
    upgrade left its conversion beside it (then that is moved into place).

    Creation is serialised by a lock on the parent directory, and the root's zarr.json
    appears in one rename, so processes racing to create one trace make exactly one, and
    nothing is ever deleted. TraceError if the directory cannot be written, or if a new
    trace is needed and `strategy` or `exchange` is None.
    """
    try:
        _create_root(path, strategy, exchange)
    except OSError as e:
        raise TraceError(f"cannot create trace {path}: {e.strerror or e}") from None


def _create_root(path: Path, strategy: str | None, exchange: str | None) -> None:
    named = strategy is not None and exchange is not None
    not_yet = TraceError(f"{path} is not an EventTrace yet: give strategy and exchange to "
                         "create one")
    if named:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise not_yet
    with _locked(path.parent):
        finish_upgrade(path)
        if (path / "zarr.json").exists():
            return  # another process created it first, or an upgrade did
        if not named:
            raise not_yet
        if path.exists() and any(not p.name.endswith(".partial") for p in path.iterdir()):
            raise TraceError(f"{path} exists and is not an EventTrace; refusing to write there")
        path.mkdir(exist_ok=True)
        for partial in path.glob("*.partial"):  # a killed creator's temporary zarr.json
            partial.unlink()
        write_json(path / "zarr.json", group_doc(seal({
            "format": FORMAT, "strategy": strategy, "exchange": exchange,
            "created_ns": time.time_ns()})))


def upgrade_leftovers(path: Path) -> list[Path]:
    """The temporary directories of upgrades of the trace at `path` (finished or not)."""
    return list(path.parent.glob(f".{path.name}.upgrade-*"))


def interrupted_upgrade(path: Path) -> Path | None:
    """The converted trace of an upgrade killed between its two renames (the original moved
    to its backup, the conversion not yet in its place), or None."""
    if path.exists() or not list(path.parent.glob(f"{path.name}.v*-backup*")):
        return None
    done = [p for p in upgrade_leftovers(path) if _is_current(p)]
    return done[0] if len(done) == 1 else None


def finish_upgrade(path: Path) -> None:
    """Move the conversion of an interrupted upgrade into place (call under `parent_lock`)."""
    done = interrupted_upgrade(path)
    if done is not None:
        os.rename(done, path)


def _is_current(p: Path) -> bool:
    try:
        return check_format(read_attrs(p), p) == VERSION
    except TraceError:
        return False


def parent_lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """The lock that serialises creating, and moving into place, the trace at `path`."""
    return _locked(path.parent)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive flock on `directory`, waiting for it: creation takes milliseconds."""
    if fcntl is None:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
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
