"""OHLCV candles as numpy columns, loaded from CSV, checked and aligned."""

from __future__ import annotations

import csv
import gzip
import io
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence, Union

import attrs
import numpy as np

from ..core.errors import DataError

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_TF_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds in a ccxt timeframe string such as '1m', '5m', '1h', '1d'."""
    m = re.fullmatch(r"(\d+)([smhdw])", timeframe.strip()) if isinstance(timeframe, str) else None
    if not m or int(m.group(1)) == 0:
        raise DataError(f"timeframe {timeframe!r} is not of the form 1m, 5m, 1h, 1d")
    return int(m.group(1)) * _TF_UNITS[m.group(2)]


@attrs.frozen(slots=True, eq=False)
class OHLCV:
    """Candles of one market: `timestamp` is each candle's open time in epoch ms (UTC)."""

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamp)

    def __getitem__(self, index: slice) -> "OHLCV":
        if not isinstance(index, slice):
            raise TypeError("index OHLCV with a slice; read single values from the columns")
        # the columns by name, not a generator over COLUMNS: the look-ahead check slices
        # at every tick it reruns
        return OHLCV(self.timestamp[index], self.open[index], self.high[index], self.low[index],
                     self.close[index], self.volume[index])

    def between(self, start: int | None = None, stop: int | None = None) -> "OHLCV":
        """Candles whose open time is in [start, stop) (epoch ms; None is unbounded)."""
        lo = 0 if start is None else int(np.searchsorted(self.timestamp, start, "left"))
        hi = len(self) if stop is None else int(np.searchsorted(self.timestamp, stop, "left"))
        return self[lo:hi]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[float]]) -> "OHLCV":
        """From ccxt-style rows [timestamp, open, high, low, close, volume]."""
        a = np.asarray(list(rows), dtype=np.float64).reshape(-1, 6)
        return cls(a[:, 0].astype(np.int64), *(np.ascontiguousarray(a[:, i]) for i in range(1, 6)))

    def to_rows(self) -> list[list[float]]:
        return [[int(t), o, h, l, c, v] for t, o, h, l, c, v in zip(
            self.timestamp.tolist(), self.open.tolist(), self.high.tolist(),
            self.low.tolist(), self.close.tolist(), self.volume.tolist())]


def check(ohlcv: OHLCV, source: str = "data") -> OHLCV:
    """Raise DataError naming `source` if timestamps are unsorted or repeated, or prices bad."""
    ts = ohlcv.timestamp
    if len(ts) > 1:
        d = np.diff(ts)
        bad = np.flatnonzero(d <= 0)
        if len(bad):
            i = int(bad[0]) + 1
            what = "duplicate" if d[bad[0]] == 0 else "out-of-order"
            raise DataError(f"{source}: {what} timestamp {int(ts[i])} at row {i + 1} "
                            f"(after {int(ts[i - 1])}); timestamps must be strictly increasing")
    for name in COLUMNS[1:]:
        col = getattr(ohlcv, name)
        bad = np.flatnonzero(~np.isfinite(col) | (col < 0))
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{source}: bad {name} {col[i]!r} at row {i + 1}")
    bad = np.flatnonzero((ohlcv.high < ohlcv.low) | (ohlcv.high < np.maximum(ohlcv.open, ohlcv.close))
                         | (ohlcv.low > np.minimum(ohlcv.open, ohlcv.close)))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{source}: candle at row {i + 1} (timestamp {int(ts[i])}) has high/low "
                        "that do not contain its open and close")
    return ohlcv


def load_csv(path: str | Path) -> OHLCV:
    """Load candles from a CSV (optionally .gz) with columns timestamp,open,high,low,close,volume.

    Timestamps are epoch milliseconds (seconds are accepted and converted). Extra columns
    are ignored; missing ones, bad numbers and unsorted or duplicate rows raise DataError.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from None
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig", errors="replace")))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; "
                        f"expected {','.join(COLUMNS)}, found {','.join(header) or 'nothing'}")
    idx = [header.index(c) for c in COLUMNS]
    rows = []
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not x.strip() for x in row):
            continue
        try:
            rows.append([float(row[i]) for i in idx])
        except (ValueError, IndexError):
            raise DataError(f"{path}:{lineno}: bad row {','.join(row)!r}") from None
    if not rows:
        raise DataError(f"{path}: no candles")
    a = np.asarray(rows, dtype=np.float64)
    ts = a[:, 0]
    if not np.all(ts == np.floor(ts)):
        raise DataError(f"{path}: timestamps must be whole epoch milliseconds")
    if ts.max() < 1e11:  # epoch seconds
        ts = ts * 1000
    ohlcv = OHLCV(ts.astype(np.int64), *(np.ascontiguousarray(a[:, i]) for i in range(1, 6)))
    return check(ohlcv, str(path))


def align(series: dict[str, OHLCV], timeframe: str,
          gaps: str = "fill") -> tuple[np.ndarray, dict[str, OHLCV]]:
    """Put several markets on one timeline of `timeframe` steps.

    Returns the common open times and, per market, candles on that timeline. With
    `gaps="fill"` the timeline has every step from the first candle to the last; with
    "skip" only the steps where some market has a candle (backtesting.py's rows). A
    market's candles missing from the timeline become flat candles at the previous close
    with zero volume; times before a market's first candle repeat its first open with zero
    volume.
    """
    if gaps not in ("fill", "skip"):
        raise DataError(f"gap policy must be 'fill' or 'skip', not {gaps!r}")
    if not series:
        raise DataError("no market data to align")
    tf = timeframe_ms(timeframe)
    for name, o in series.items():
        if len(o) == 0:
            raise DataError(f"{name}: no candles in the chosen range")
        off = o.timestamp % tf
        if np.any(off != off[0]):
            raise DataError(f"{name}: timestamps are not on a {timeframe} grid")
    start = min(int(o.timestamp[0]) for o in series.values())
    stop = max(int(o.timestamp[-1]) for o in series.values())
    timeline = np.arange(start, stop + tf, tf, dtype=np.int64) if gaps == "fill" else \
        _union(o.timestamp for o in series.values())
    out = {}
    for name, o in series.items():
        if len(o) == len(timeline):  # every slot taken: no search (10 ms a million candles)
            out[name] = o
            continue
        pos = np.searchsorted(timeline, o.timestamp)
        present = np.zeros(len(timeline), dtype=bool)
        present[pos] = True
        # index of the last present candle at or before each slot
        last = np.maximum.accumulate(np.where(present, np.arange(len(timeline)), -1))
        src = np.full(len(timeline), -1, dtype=np.int64)
        src[pos] = np.arange(len(o))
        filled_from = np.where(last >= 0, src[np.maximum(last, 0)], 0)
        close = o.close[filled_from]
        first_open = o.open[0]
        close = np.where(last >= 0, close, first_open)
        def col(values: np.ndarray) -> np.ndarray:
            c = close.copy()
            c[pos] = values
            return c
        vol = np.zeros(len(timeline))
        vol[pos] = o.volume
        out[name] = OHLCV(timeline.copy(), col(o.open), col(o.high), col(o.low), col(o.close), vol)
    return timeline, out


def _union(stamps: Iterable[np.ndarray]) -> np.ndarray:
    """The sorted distinct times of several increasing arrays (np.unique hashes: slower)."""
    ts = np.sort(np.concatenate(list(stamps)).astype(np.int64), kind="stable")
    return ts[np.r_[True, ts[1:] != ts[:-1]]] if len(ts) else ts


def resample(ohlcv: OHLCV, src_timeframe: str, dst_timeframe: str) -> OHLCV:
    """Aggregate candles to a larger timeframe (open first, high max, low min, close last, volume sum).

    Buckets start at multiples of the target timeframe since the epoch; a bucket with no
    source candle is absent from the result.
    """
    src, dst = timeframe_ms(src_timeframe), timeframe_ms(dst_timeframe)
    if dst < src or dst % src:
        raise DataError(f"cannot resample {src_timeframe} to {dst_timeframe}: "
                        "the target must be a whole multiple of the source")
    if len(ohlcv) == 0:
        return ohlcv
    bucket = ohlcv.timestamp // dst * dst
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)]
    return OHLCV(
        bucket[starts].copy(),
        ohlcv.open[starts].copy(),
        np.maximum.reduceat(ohlcv.high, starts),
        np.minimum.reduceat(ohlcv.low, starts),
        ohlcv.close[ends - 1].copy(),
        np.add.reduceat(ohlcv.volume, starts),
    )




@attrs.frozen(slots=True)
class Gap:
    """Missing candles: open times in [start, stop) on the timeframe grid, `missing` of them."""

    start: int
    stop: int
    missing: int


def find_gaps(timestamps: np.ndarray, timeframe: str) -> list[Gap]:
    """Gaps between consecutive open times that are more than one timeframe apart."""
    tf = timeframe_ms(timeframe)
    ts = np.asarray(timestamps, dtype=np.int64)
    if len(ts) < 2:
        return []
    d = np.diff(ts)
    at = np.flatnonzero(d > tf)
    return [Gap(int(ts[i]) + tf, int(ts[i + 1]), int(d[i]) // tf - 1) for i in at]


def check_grid(ohlcv: OHLCV, timeframe: str, source: str, origin: int | None = None) -> OHLCV:
    """Raise DataError naming `source` unless every open time is `origin` plus whole timeframes.

    The grid is anchored on `origin` (default: the first candle), not on the epoch,
    because some exchanges start weeks on Monday.
    """
    if len(ohlcv) == 0:
        return ohlcv
    tf = timeframe_ms(timeframe)
    ts = ohlcv.timestamp
    anchor = int(ts[0]) if origin is None else origin
    bad = np.flatnonzero((ts - anchor) % tf)
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{source}: timestamp {int(ts[i])} at row {i + 1} is not on the "
                        f"{timeframe} grid (candles open at {anchor} plus whole {timeframe} steps)")
    return ohlcv


def check_spacing(ohlcv: OHLCV, timeframe: str, source: str) -> OHLCV:
    """Raise DataError if many candles are never one `timeframe` apart (a mislabelled file)."""
    if len(ohlcv) > 10:
        step = int(np.gcd.reduce(np.diff(ohlcv.timestamp)))
        if step > timeframe_ms(timeframe):
            raise DataError(f"{source}: candles are {step // 1000} s or a multiple apart, "
                            f"never one {timeframe}; is the timeframe right?")
    return ohlcv


def concat(*parts: OHLCV) -> OHLCV:
    """Candles of several OHLCV joined in the order given (no sorting, no checks)."""
    return OHLCV(*(np.concatenate([getattr(p, c) for p in parts]) for c in COLUMNS))


def empty() -> OHLCV:
    """An OHLCV with no candles."""
    return OHLCV(np.empty(0, np.int64), *(np.empty(0) for _ in COLUMNS[1:]))


TimeLike = Union[int, float, str, datetime]


def to_ms(value: TimeLike) -> int:
    """Epoch milliseconds from an int, a datetime (naive means UTC) or an ISO-8601 string.

    Strings of digits are epoch milliseconds; dates such as '2024-01-31' mean midnight UTC.
    """
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        try:
            return to_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise DataError(f"time {value!r} is neither epoch milliseconds nor an ISO date "
                    "such as 2024-01-31 or 2024-01-31T12:00")


def iso(ms: int | None) -> str:
    """An epoch-ms time as a short ISO-8601 UTC string ('-' for None)."""
    if ms is None:
        return "-"
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M" + (":%S" if dt.second else "") + "Z")
