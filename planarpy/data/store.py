"""A Zarr v3 store of OHLCV candles: one group per exchange / symbol / timeframe.

Layout under the data directory, which is itself a Zarr hierarchy::

    <exchange>/<symbol key>/<timeframe>/          group of one series; attributes below
    <exchange>/<symbol key>/<timeframe>/g<N>/     timestamp (int64 ms), open, high, low,
                                                  close, volume (float64): 1-D arrays
                                                  with spare capacity

Series attributes: ``format`` ("planarpy.ohlcv/2"), ``exchange``, ``symbol``,
``timeframe``, ``generation`` (N), ``rows`` (the committed candle count), ``first`` and
``last`` (open times, epoch ms), and ``crc``, a seal over the others. Every chunk is
compressed with zstd and sealed with a CRC-32C (planarpy.integrity): a flipped bit fails
the read, naming the column and chunk, and is never loaded as a price.

Format 1 ("planarpy.ohlcv/1", before checksums) is read as it is; writing to it is refused
with the command that converts it (`planarpy data upgrade`, `OHLCVStore.upgrade`), except
`save(replace=True)`, which rewrites the series in the current format anyway.

Crash safety (DESIGN.md section 5): candles are written past the committed count first,
then one atomic attribute write commits the new count. Readers trust only rows below it,
and the next writer overwrites anything past it. A rewrite (prepending candles, or
`save(replace=True)`) writes a whole new generation and commits it the same way, so a
kill at any point leaves the series as it was before the call, or as it is after. A
reader whose generation a rewrite replaced (and deleted) under it reads again from the new
one, rather than calling the series corrupted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, TypeVar

import attrs
import numpy as np
import zarr
from zarr.storage import LocalStore

from ..core.errors import DataError
from ..integrity import (check_zarr, compressors, damaged_chunks, format_version, read_checked,
                         read_group_meta, seal, seal_ok)
from .ohlcv import (COLUMNS, OHLCV, Gap, TimeLike, check, check_grid, concat, empty, find_gaps,
                    iso, resample, timeframe_ms, to_ms)
from .series import (SeriesInfo, SeriesKey, WriteReport, default_root, symbol_from_key,
                     symbol_key)

check_zarr()  # an older zarr is a clear error, not a broken store

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one writer per series is up to the user
    fcntl = None  # type: ignore[assignment]

FORMAT_NAME = "planarpy.ohlcv"
VERSION = 2
FORMAT = f"{FORMAT_NAME}/{VERSION}"
CHUNK = 65536  # candles per chunk: 512 KiB per column before compression
_TS_FILL = int(np.iinfo(np.int64).min)  # what a missing timestamp chunk reads back as
_T = TypeVar("_T")


@attrs.define(slots=True)
class _Series:
    """An open series group and its committed state."""

    key: SeriesKey
    path: Path
    group: Any
    generation: int
    rows: int
    first: int | None
    last: int | None
    version: int = VERSION
    opened: dict[str, Any] | None = None  # arrays of `generation`, opened on first use

    def where(self) -> str:
        return f"{self.key} (store {self.path})"

    def arrays(self) -> dict[str, Any]:
        if self.opened is not None:
            return self.opened
        try:
            self.opened = {c: self.group[f"g{self.generation}/{c}"] for c in COLUMNS}
            return self.opened
        except Exception as e:
            raise DataError(f"{self.where()} is corrupted: generation g{self.generation} "
                            f"cannot be opened ({_why(e)})") from None


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


class OHLCVStore:
    """OHLCV series kept under one data directory (default `default_root()`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._zstore: LocalStore | None = None
        self._verified: dict[Path, tuple[int, int, int]] = {}  # chunk files found whole

    def __repr__(self) -> str:
        return f"OHLCVStore({str(self.root)!r})"

    # reading

    def info(self, exchange: str, symbol: str, timeframe: str) -> SeriesInfo | None:
        """Committed row count and range of a series, or None if it is not stored."""
        return self._settled(SeriesKey(exchange, symbol, timeframe), _info)

    def can_load(self, exchange: str, symbol: str, timeframe: str) -> bool:
        """Whether `load` has candles to give: stored, or derivable from a smaller timeframe."""
        key = SeriesKey(exchange, symbol, timeframe)
        info = self.info(exchange, symbol, timeframe)
        if info is not None:
            return info.rows > 0
        return self._derivable(key) is not None

    def series(self) -> list[SeriesInfo | DataError]:
        """Every series under the root, by path; a damaged one appears as its DataError."""
        out: list[SeriesInfo | DataError] = []
        if not self.root.is_dir():
            return out
        for where in sorted(p for p in self.root.glob("*/*/*") if p.is_dir()):
            exchange, skey, tf = where.relative_to(self.root).parts
            try:
                info = self._settled(SeriesKey(exchange, symbol_from_key(skey), tf), _info)
            except DataError as e:
                out.append(e)
                continue
            if info is not None:
                out.append(info)
        return out

    def timeframes(self, exchange: str, symbol: str) -> list[str]:
        """Timeframes stored for a market, shortest first."""
        base = self.root / exchange / symbol_key(symbol)
        valid = []
        for tf in (p.parent.name for p in base.glob("*/zarr.json")):
            with contextlib.suppress(DataError):
                valid.append((timeframe_ms(tf), tf))
        return [tf for _, tf in sorted(valid)]

    def load(self, exchange: str, symbol: str, timeframe: str, start: TimeLike | None = None,
             stop: TimeLike | None = None, *, derive: bool = True) -> OHLCV:
        """Candles whose open time is in [start, stop) (epoch ms, ISO string or datetime).

        If `timeframe` is not stored and `derive` is true, resample the largest stored
        timeframe that divides it (1m to 5m, 1h, 1d...); buckets cut by the edge of the
        stored data are left out. Raise DataError if nothing usable is stored.
        """
        key = SeriesKey(exchange, symbol, timeframe)
        lo = None if start is None else to_ms(start)
        hi = None if stop is None else to_ms(stop)
        stored = self._settled(key, lambda series: self._read(series, lo, hi))
        if stored is not None:
            return stored
        source = self._derivable(key) if derive else None
        if source is None:
            stored = self.timeframes(exchange, symbol)
            hint = f" (stored: {', '.join(stored)})" if stored else ""
            raise DataError(f"no stored candles for {key} in {self.root}{hint}; download them "
                            f"with `planarpy fetch` or import a CSV with `planarpy data import`")
        return self._load_resampled(source, key, lo, hi)

    def gaps(self, exchange: str, symbol: str, timeframe: str, start: TimeLike | None = None,
             stop: TimeLike | None = None) -> list[Gap]:
        """Missing candles inside the stored range of a series."""
        ohlcv = self.load(exchange, symbol, timeframe, start, stop, derive=False)
        return find_gaps(ohlcv.timestamp, timeframe)

    def check(self, exchange: str, symbol: str, timeframe: str) -> list[str]:
        """Every problem of a stored series: each damaged chunk by name, then a committed
        state that does not match the candles. [] when it is whole (or not stored)."""
        key = SeriesKey(exchange, symbol, timeframe)
        try:
            self._settled(key, self._verify)
        except _Damage as e:
            return e.problems
        except DataError as e:
            return [str(e)]
        return []

    def _verify(self, series: _Series) -> None:
        bad = self._damaged(series)
        if bad:
            raise _Damage([f"{series.where()} is corrupted: {problem}" for problem in bad])
        self._read(series, None, None)

    def _settled(self, key: SeriesKey, read: Callable[[_Series], _T]) -> _T | None:
        """`read` of the committed state of a series (None if it is not stored), done again
        when it failed because a writer replaced the generation it was reading."""
        for _ in range(100):
            generation = self._generation(key)
            try:
                series = self._open(key)
                return None if series is None else read(series)
            except DataError:
                if generation is None or self._generation(key) in (generation, None):
                    raise
        raise DataError(f"{key} (store {self.root}) is rewritten faster than it can be read")

    def _generation(self, key: SeriesKey) -> int | None:
        """The committed generation of a series as its metadata says now, None if unknown."""
        try:
            generation = read_group_meta(self.root / key.path).get("attributes", {}).get("generation")
        except (OSError, ValueError, AttributeError):
            return None
        return generation if _is_int(generation) else None

    def upgrade(self, exchange: str, symbol: str, timeframe: str) -> str:
        """Rewrite a series of an older format in the current one (checksums), atomically:
        a new generation, read back before it is committed. What was done, in words."""
        key = SeriesKey(exchange, symbol, timeframe)
        with self._writer(key, rewrite=True) as series:
            if series.version == VERSION:
                return f"{key}: already in format {FORMAT}"
            old = series.version
            if series.rows:
                self._rewrite(series, self._read(series, None, None))
            else:
                self._commit(series, series.generation, 0, 0, 0)
            return f"{key}: {series.rows} candles converted from {FORMAT_NAME}/{old} to {FORMAT}"

    # writing

    def save(self, exchange: str, symbol: str, timeframe: str, ohlcv: OHLCV, *,
             replace: bool = False, source: str | None = None) -> WriteReport:
        """Store candles as a new series; with `replace`, atomically replace a stored one.

        Without `replace`, a series that already holds candles is left alone and
        DataError is raised (use `append` to add to it).
        """
        key = SeriesKey(exchange, symbol, timeframe)
        new = self._checked(key, ohlcv, source, origin=None)
        with self._writer(key, rewrite=replace) as series:
            had = series.rows
            if had and not replace:
                raise DataError(f"{series.where()} already holds {series.rows} candles from "
                                f"{iso(series.first)} to {iso(series.last)}; append to it or "
                                "replace it; nothing was written")
            if had:
                self._rewrite(series, new)
            else:
                self._append_rows(series, new)
            gaps = tuple(find_gaps(new.timestamp, timeframe))
            return WriteReport(key, len(new), 0, gaps, series.rows, series.first, series.last,
                               rewritten=bool(had))

    def append(self, exchange: str, symbol: str, timeframe: str, ohlcv: OHLCV, *,
               on_overlap: Literal["error", "skip"] = "error",
               source: str | None = None) -> WriteReport:
        """Add candles after (or before) the stored ones; create the series if needed.

        Candles must be strictly increasing and on the series' timeframe grid. Candles at
        stored open times are an overlap: with on_overlap='error' (default) nothing is
        written and DataError is raised; with 'skip' identical ones are skipped and
        counted, and any that differ still raise. Candles that would land inside the
        stored range at a time not stored (filling a gap) always raise. Gaps are reported.
        """
        if on_overlap not in ("error", "skip"):
            raise ValueError(f"on_overlap must be 'error' or 'skip', not {on_overlap!r}")
        key = SeriesKey(exchange, symbol, timeframe)
        self._checked(key, ohlcv, source, origin=None)  # before anything is created
        with self._writer(key) as series:
            self._check_whole(series)
            new = self._checked(key, ohlcv, source, origin=series.first)
            if series.rows == 0:
                self._append_rows(series, new)
                gaps = find_gaps(new.timestamp, timeframe)
                return WriteReport(key, len(new), 0, tuple(gaps), series.rows, series.first,
                                   series.last)
            first, last = series.first, series.last
            assert first is not None and last is not None
            ts = new.timestamp
            before = new[: int(np.searchsorted(ts, first, "left"))]
            after = new[int(np.searchsorted(ts, last, "right")):]
            inside = new[len(before): len(new) - len(after)]
            if len(inside):
                self._check_overlap(series, inside, on_overlap, source)
            gaps = []
            if len(after):
                gaps += find_gaps(np.r_[last, after.timestamp], timeframe)
            if len(before):
                gaps += find_gaps(np.r_[before.timestamp, first], timeframe)
                self._rewrite(series, concat(before, self._read(series, None, None), after))
            elif len(after):
                self._append_rows(series, after)
            added = len(before) + len(after)
            return WriteReport(key, added, len(inside), tuple(sorted(gaps, key=lambda g: g.start)),
                               series.rows, series.first, series.last, rewritten=bool(len(before)))

    def remove(self, exchange: str, symbol: str, timeframe: str) -> str:
        """Delete a stored series, damaged or not; what was removed, in words. Atomic: the
        series is renamed away under its lock, then deleted (a kill leaves it whole or
        gone). DataError if it is not stored."""
        key = SeriesKey(exchange, symbol, timeframe)
        path = self.root / key.path
        if not path.is_dir():
            raise DataError(f"no stored candles for {key} in {self.root}")
        for old in path.parent.glob(f".{timeframe}.removed-*"):
            shutil.rmtree(old, ignore_errors=True)  # left by a remove that was killed
        with _locked(path):
            try:
                series = self._open(key)
                what = str(_info(series)) if series is not None else f"{key}: empty"
            except DataError as e:
                what = f"{key} (damaged: {e})"
            gone = path.with_name(f".{timeframe}.removed-{os.getpid()}")
            os.replace(path, gone)
        shutil.rmtree(gone)
        return what

    # internals: opening and validating

    def _store(self) -> LocalStore:
        if self._zstore is None:
            self._zstore = LocalStore(str(self.root))
        return self._zstore

    def _open(self, key: SeriesKey, *, write: bool = False) -> _Series | None:
        """The committed state of a series, None if absent; DataError if damaged."""
        path = self.root / key.path
        where = f"{key} (store {path})"
        if not (path / "zarr.json").is_file():
            # a writer killed creating the series leaves only zarr's temporary file
            if path.is_dir() and any(not p.name.endswith(".partial") for p in path.iterdir()):
                raise DataError(f"{where} is corrupted: its metadata file zarr.json is missing "
                                "but candle files are there")
            return None
        try:
            group = zarr.open_group(self._store(), path=key.path, mode="r+" if write else "r",
                                    use_consolidated=False)
            attributes = dict(group.attrs)
        except Exception as e:
            raise DataError(f"{where} is corrupted: its metadata cannot be read ({_why(e)})") from None
        version = format_version(attributes.get("format"), FORMAT_NAME)
        if version is None:
            raise DataError(f"{where} is not a planarpy OHLCV series "
                            f"(format {attributes.get('format')!r}, expected {FORMAT!r})")
        if version > VERSION:
            raise DataError(f"{where} was written in format {attributes.get('format')}, newer "
                            f"than this planarpy reads ({FORMAT}): upgrade planarpy")
        if version >= 2 and seal_ok(attributes) is not True:
            raise DataError(f"{where} is corrupted: its metadata fails its checksum (a damaged "
                            "or hand-edited commit)")
        rows, gen = attributes.get("rows"), attributes.get("generation")
        first, last = attributes.get("first"), attributes.get("last")
        ok = (_is_int(rows) and rows >= 0 and _is_int(gen) and gen >= 0
              and (rows == 0 or (_is_int(first) and _is_int(last) and first <= last)))
        if not ok:
            raise DataError(f"{where} is corrupted: bad committed state rows={rows!r} "
                            f"generation={gen!r} first={first!r} last={last!r}")
        if attributes.get("symbol") != key.symbol or attributes.get("timeframe") != key.timeframe:
            raise DataError(f"{where} holds {attributes.get('symbol')!r} "
                            f"{attributes.get('timeframe')!r}, not {key.symbol!r} {key.timeframe!r}")
        series = _Series(key, path, group, gen, rows, first if rows else None,
                         last if rows else None, version)
        if rows:
            for name, arr in series.arrays().items():
                if arr.shape[0] < rows:
                    raise DataError(f"{series.where()} is corrupted: {rows} candles committed "
                                    f"but column {name} holds only {arr.shape[0]}")
        return series

    def _read(self, series: _Series, lo: int | None, hi: int | None) -> OHLCV:
        """Committed candles in [lo, hi), checked for damage (missing chunks, disorder)."""
        if series.rows == 0:
            return empty()
        ts = self._column(series, "timestamp", 0, series.rows)
        if ts[0] != series.first or ts[-1] != series.last:
            raise DataError(f"{series.where()} is corrupted: committed range {iso(series.first)} "
                            f"to {iso(series.last)} does not match the stored timestamps "
                            f"({iso(int(ts[0]))} to {iso(int(ts[-1]))})")
        disorder = np.flatnonzero(np.diff(ts) <= 0)
        if len(disorder):
            i = int(disorder[0]) + 1
            raise DataError(f"{series.where()} is corrupted: timestamp at row {i} "
                            f"({int(ts[i])}) does not follow the one before it ({int(ts[i - 1])})")
        a = 0 if lo is None else int(np.searchsorted(ts, lo, "left"))
        b = series.rows if hi is None else int(np.searchsorted(ts, hi, "left"))
        b = max(a, b)
        return OHLCV(ts[a:b].copy(), *(self._column(series, c, a, b) for c in COLUMNS[1:]))

    def _read_rows(self, series: _Series, a: int, b: int) -> OHLCV:
        """Rows [a, b) of every column, checked for missing chunks."""
        return OHLCV(*(self._column(series, c, a, b) for c in COLUMNS))

    def _column(self, series: _Series, name: str, a: int, b: int) -> np.ndarray:
        """Rows [a, b) of one column; DataError if unreadable or holding the fill value."""
        values, bad = read_checked(series.arrays()[name], a, b, 0)
        if bad:
            raise DataError(f"{series.where()} is corrupted: column {name} cannot be read "
                            f"({'; '.join(_chunk_text(c, why) for c, why in bad)})")
        bad = np.flatnonzero(values == _TS_FILL if name == "timestamp" else ~np.isfinite(values))
        if len(bad):
            what = "timestamps" if name == "timestamp" else name
            raise DataError(f"{series.where()} is corrupted: {what} of rows {a + int(bad[0])} to "
                            f"{a + int(bad[-1])} {'are' if what == 'timestamps' else 'is'} missing "
                            "(a chunk was deleted or never written)")
        return values

    def _derivable(self, key: SeriesKey) -> SeriesKey | None:
        want = timeframe_ms(key.timeframe)
        fits = [tf for tf in self.timeframes(key.exchange, key.symbol)
                if timeframe_ms(tf) < want and want % timeframe_ms(tf) == 0]
        return SeriesKey(key.exchange, key.symbol, fits[-1]) if fits else None

    def _load_resampled(self, source: SeriesKey, key: SeriesKey, lo: int | None,
                        hi: int | None) -> OHLCV:
        dst, src = timeframe_ms(key.timeframe), timeframe_ms(source.timeframe)
        lo_bucket = None if lo is None else -(-lo // dst) * dst
        read = self._settled(source, lambda series: (series, self._read(series, lo_bucket, hi)))
        assert read is not None
        series, raw = read
        out = resample(raw, source.timeframe, key.timeframe)
        if len(out) and series.first is not None and series.first > out.timestamp[0]:
            out = out[1:]  # the stored data starts inside this bucket
        if len(out) and series.last is not None and series.last + src < out.timestamp[-1] + dst:
            out = out[:-1]  # the stored data ends inside this bucket
        if hi is not None and len(out) and out.timestamp[-1] + dst > hi:
            out = out[:-1]  # `stop` cuts this bucket
        return out

    # internals: writing

    def _checked(self, key: SeriesKey, ohlcv: OHLCV, source: str | None,
                 origin: int | None) -> OHLCV:
        name = source or str(key)
        if len(ohlcv) == 0:
            raise DataError(f"{name}: no candles to store for {key}")
        check(ohlcv, name)
        return check_grid(ohlcv, key.timeframe, name, origin)

    @contextlib.contextmanager
    def _writer(self, key: SeriesKey, *, rewrite: bool = False) -> Iterator[_Series]:
        """Lock the series, create it if absent, drop leftovers of an interrupted writer.

        A series of an older format is refused unless the caller `rewrite`s all of it; a
        damaged one is refused unless the caller rewrites it from other candles. A write that
        fails (a full or read-only disk) is a DataError: nothing was committed.
        """
        path = self.root / key.path
        self._check_parents(key)
        try:
            path.mkdir(parents=True, exist_ok=True)
            with _locked(path):
                series = self._open(key, write=True)
                if series is None:
                    series = self._create(key)
                _drop_leftovers(series)
                if series.version < VERSION and not rewrite:
                    raise DataError(f"{series.where()} was written in format "
                                    f"{FORMAT_NAME}/{series.version} (no checksums); loading "
                                    "still works, but to add to it convert it first with "
                                    f"`planarpy data upgrade --data-dir {self.root}`; nothing "
                                    "was written")
                yield series
        except OSError as e:
            why = f"[Errno {e.errno}] {e.strerror}" if e.strerror else _why(e)
            raise DataError(f"cannot write {key} in {self.root}: {why}; the stored candles are "
                            "unchanged") from None

    def _check_parents(self, key: SeriesKey) -> None:
        """A clear error if the group metadata above a series is damaged (zarr reads it)."""
        node = self.root
        for part in ("", *key.path.split("/")[:2]):
            node = node / part if part else node
            try:
                read_group_meta(node)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except (OSError, ValueError) as e:
                raise DataError(f"cannot write {key} in {self.root}: {e}. That file only "
                                "marks a group and holds no candles: delete it and zarr writes "
                                "a new one; nothing was written") from None

    def _check_whole(self, series: _Series) -> None:
        """Refuse to add to a series with a damaged chunk anywhere (only its CRCs are read,
        not decompressed), or whose last candle is not where the commit says."""
        if series.rows == 0:
            return
        bad = self._damaged(series)
        if bad:
            raise DataError(f"{series.where()} is corrupted: {'; '.join(bad)}; nothing was "
                            "written. Replace the series (data import --replace) or fetch it "
                            "into a new data directory")
        lo = (series.rows - 1) // CHUNK * CHUNK
        part = self._read_rows(series, lo, series.rows)
        if part.timestamp[-1] != series.last:
            raise DataError(f"{series.where()} is corrupted: the last committed candle opens at "
                            f"{iso(int(part.timestamp[-1]))}, not {iso(series.last)}; "
                            "nothing was written")

    def _damaged(self, series: _Series) -> list[str]:
        """'column C chunk N: why' for each damaged chunk of the committed rows: by their
        CRCs in format 2 (cheap), by decoding them in format 1."""
        if series.rows == 0:
            return []
        if series.version < 2:
            return [f"column {c} {_chunk_text(i, why)}" for c, array in series.arrays().items()
                    for i, why in read_checked(array, 0, series.rows, 0)[1]]
        chunks = range(-(-series.rows // CHUNK))
        gen = series.path / f"g{series.generation}"
        return [f"column {c} {problem}" for c in COLUMNS
                for problem in damaged_chunks(gen / c, chunks, verified=self._verified)]

    def _create(self, key: SeriesKey) -> _Series:
        attributes = seal({"format": FORMAT, "exchange": key.exchange, "symbol": key.symbol,
                           "timeframe": key.timeframe, "generation": 0, "rows": 0,
                           "first": None, "last": None})
        try:
            group = zarr.open_group(self._store(), path=key.path, mode="a",
                                    attributes=attributes, use_consolidated=False)
        except Exception as e:
            raise DataError(f"cannot create {key} in {self.root} ({_why(e)})") from None
        return _Series(key, self.root / key.path, group, 0, 0, None, None)

    def _columns(self, series: _Series, generation: int, capacity: int) -> dict[str, Any]:
        """The arrays of the committed generation, or new empty ones if it has no rows."""
        name = f"g{generation}"
        if generation == series.generation and series.rows:
            return series.arrays()
        out = {}
        for c in COLUMNS:
            ts = c == "timestamp"
            out[c] = series.group.create_array(
                f"{name}/{c}", shape=(capacity,), chunks=(CHUNK,),
                dtype="int64" if ts else "float64",
                fill_value=_TS_FILL if ts else float("nan"),
                compressors=compressors(), overwrite=True)
        if generation == series.generation:
            series.opened = out
        return out

    def _append_rows(self, series: _Series, new: OHLCV) -> None:
        """Write candles past the committed rows, then commit them with one attribute write."""
        n, k = series.rows, len(new)
        arrays = self._columns(series, series.generation, _capacity(n + k))
        cap = min(a.shape[0] for a in arrays.values())
        if cap < n + k:
            cap = max(2 * cap, _capacity(n + k))
            for a in arrays.values():
                if a.shape[0] < cap:
                    a.resize((cap,))
        for c in COLUMNS:
            _write(arrays[c], n, getattr(new, c))
        first = series.first if n else int(new.timestamp[0])
        self._commit(series, series.generation, n + k, first, int(new.timestamp[-1]))

    def _rewrite(self, series: _Series, ohlcv: OHLCV) -> None:
        """Write all candles as a new generation, read them back, commit it (in the current
        format), then drop the old one."""
        old = series.generation
        gen = old + 1
        arrays = self._columns(series, gen, _capacity(len(ohlcv)))
        for c in COLUMNS:
            _write(arrays[c], 0, getattr(ohlcv, c))
        for c in COLUMNS:
            if not np.array_equal(arrays[c][: len(ohlcv)], getattr(ohlcv, c), equal_nan=True):
                raise DataError(f"{series.where()}: column {c} reads back differently from what "
                                "was written; nothing was changed")
        self._commit(series, gen, len(ohlcv), int(ohlcv.timestamp[0]), int(ohlcv.timestamp[-1]))
        shutil.rmtree(series.path / f"g{old}", ignore_errors=True)

    def _commit(self, series: _Series, generation: int, rows: int, first: int, last: int) -> None:
        # one sealed metadata write: a crash leaves either the old or the new state
        attributes = {k: v for k, v in series.group.attrs.items() if k != "crc"}
        attributes.update(format=FORMAT, generation=generation, rows=rows, first=first, last=last)
        series.group.update_attributes(seal(attributes))
        if generation != series.generation:
            series.opened = None  # reopened from the new generation on next use
        series.generation, series.rows, series.first, series.last = generation, rows, first, last
        series.version = VERSION

    def _check_overlap(self, series: _Series, inside: OHLCV, on_overlap: str,
                       source: str | None) -> None:
        name = source or str(series.key)
        a, b = int(inside.timestamp[0]), int(inside.timestamp[-1])
        if on_overlap == "error":
            raise DataError(f"{name}: {len(inside)} candle(s) from {iso(a)} to {iso(b)} overlap "
                            f"the stored {series.key} ({iso(series.first)} to "
                            f"{iso(series.last)}); nothing was written")
        stored = self._read(series, a, b + 1)
        pos = np.searchsorted(stored.timestamp, inside.timestamp)
        pos = np.minimum(pos, len(stored) - 1) if len(stored) else pos
        known = (stored.timestamp[pos] == inside.timestamp) if len(stored) else \
            np.zeros(len(inside), bool)
        if not known.all():
            t = int(inside.timestamp[np.flatnonzero(~known)[0]])
            raise DataError(f"{name}: {int((~known).sum())} candle(s) (first at {iso(t)}) fall "
                            f"inside the stored range of {series.key} where nothing is stored; "
                            "filling gaps is not supported; nothing was written")
        for c in COLUMNS[1:]:
            differ = np.flatnonzero(getattr(stored, c)[pos] != getattr(inside, c))
            if len(differ):
                t = int(inside.timestamp[differ[0]])
                raise DataError(f"{name}: candle at {iso(t)} has {c} "
                                f"{getattr(inside, c)[differ[0]]!r} but the stored {series.key} "
                                f"has {getattr(stored, c)[pos[differ[0]]]!r}; nothing was written")


class _Damage(DataError):
    """Damaged chunks of a series, each named in `problems`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _write(array: Any, start: int, values: np.ndarray) -> None:
    """array[start:start + len(values)] = values, one chunk at a time.

    Zarr writes the chunks of one assignment side by side and, when one fails, leaves the
    others running: one could land after a later write to its chunk and take it back.
    """
    size, stop, pos = array.chunks[0], start + len(values), start
    while pos < stop:
        end = min(stop, pos - pos % size + size)
        array[pos:end] = values[pos - start:end - start]
        pos = end


def _info(series: _Series) -> SeriesInfo:
    return SeriesInfo(series.key, series.path, series.rows, series.first, series.last,
                      f"{FORMAT_NAME}/{series.version}")


def _chunk_text(c: int, why: str) -> str:
    why = "fails its checksum" if why == "checksum mismatch" else why
    return f"chunk {c} (rows {c * CHUNK}..{(c + 1) * CHUNK - 1}) {why}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _capacity(rows: int) -> int:
    return max(CHUNK, -(-rows // CHUNK) * CHUNK)


def _drop_leftovers(series: _Series) -> None:
    """Remove temporary files and generations that an interrupted writer left behind."""
    for p in series.path.rglob("*.partial"):
        p.unlink(missing_ok=True)
    for p in series.path.glob("g*"):
        if p.is_dir() and p.name != f"g{series.generation}" and re.fullmatch(r"g\d+", p.name):
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on the series directory, so two writers never interleave.

    The directory itself is locked (no lock file), so the store stays a clean Zarr hierarchy.
    """
    if fcntl is None:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{directory} is being written by another process; "
                            "try again when it has finished") from None
        yield
    finally:
        os.close(fd)  # releases the lock


__all__ = ["OHLCVStore", "SeriesKey", "SeriesInfo", "WriteReport", "default_root",
           "symbol_key", "symbol_from_key", "FORMAT"]
