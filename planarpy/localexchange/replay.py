"""Market data replay: real trades or candles from CSV, as a tape of ticks in market time.

A trades CSV (timestamp,id,side,price,amount) replays each trade as one tick. A candles CSV
(timestamp,open,high,low,close,volume) replays each candle as four ticks at 0, 1/4, 1/2 and
3/4 of its period: open, then low and high (high first for a falling candle), then close,
each carrying a quarter of the volume, so candles rebuilt from the ticks equal the source.

The data is moved in time by a whole number of hours so that `origin` (a data timestamp,
by default the middle of the data) falls on the clock's start, or within the hour before it
(an origin even 1 ms after the start lands almost an hour before it): ticks before the start
are history (klines, trades), ticks after it are replayed as the clock advances.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import attrs
import numpy as np

from ..core.errors import DataError
from ..data.ohlcv import OHLCV, load_csv

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@attrs.define(slots=True, eq=False)
class Feed:
    """Ticks of one market in market time; `pos` counts the ticks already replayed."""

    ts: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray
    pos: int = 0

    def __len__(self) -> int:
        return len(self.ts)

    def shifted(self, clock_start: int, origin: int | None = None) -> "Feed":
        """A copy moved by whole hours so that data time `origin` is at `clock_start` or
        within the hour before it, replay position set."""
        if len(self.ts) == 0:
            raise DataError("no ticks to replay")
        t0, t1 = int(self.ts[0]), int(self.ts[-1])
        if origin is None:
            origin = t0 + (t1 - t0) // 2
        shift = (clock_start - int(origin)) // HOUR_MS * HOUR_MS
        ts = self.ts + shift
        pos = int(np.searchsorted(ts, clock_start, "right"))
        return Feed(ts, self.price, self.qty, self.buyer_maker, pos)

    def visible(self, now: int) -> int:
        """Number of ticks at or before `now`."""
        return int(np.searchsorted(self.ts, now, "right"))

    def last_price(self) -> float:
        return float(self.price[max(self.pos - 1, 0)])

    def recent_qty(self, n: int = 20) -> float:
        """Mean tick size over the last `n` replayed ticks (the first ticks if none yet)."""
        lo, hi = max(self.pos - n, 0), max(self.pos, min(n, len(self)))
        return float(self.qty[lo:hi].mean()) if hi > lo else 0.0

    def klines(self, interval: int, now: int, start: int | None = None,
               end: int | None = None, limit: int = 500) -> list[list]:
        """Binance kline rows of `interval` ms built from the ticks visible at `now`."""
        hi = self.visible(now if end is None else min(now, end))
        if hi == 0:
            return []
        if start is None:  # the newest `limit` periods up to the last trade
            start = (int(self.ts[hi - 1]) // interval - limit + 1) * interval
        lo = int(np.searchsorted(self.ts, start // interval * interval, "left"))
        if hi <= lo:
            return []
        ts, p, q, m = self.ts[lo:hi], self.price[lo:hi], self.qty[lo:hi], self.buyer_maker[lo:hi]
        bucket = ts // interval * interval
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(bucket)]
        if len(starts) > limit:  # reduceat runs each segment to the next start: cut the ticks too
            cut = int(starts[limit])
            ts, p, q, m, bucket = ts[:cut], p[:cut], q[:cut], m[:cut], bucket[:cut]
            starts, ends = starts[:limit], ends[:limit]
        pq = p * q
        taker_buy = np.where(m, 0.0, q)
        highs = np.maximum.reduceat(p, starts)
        lows = np.minimum.reduceat(p, starts)
        vols = np.add.reduceat(q, starts)
        quote = np.add.reduceat(pq, starts)
        tb = np.add.reduceat(taker_buy, starts)
        tbq = np.add.reduceat(taker_buy * p, starts)
        rows = []
        for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            t = int(bucket[s])
            rows.append([t, num(p[s]), num(highs[i]), num(lows[i]), num(p[e - 1]), num(vols[i]),
                         t + interval - 1, num(quote[i]), e - s, num(tb[i]), num(tbq[i]), "0"])
        return rows

    def trades(self, now: int, limit: int = 500, from_id: int | None = None,
               start: int | None = None, end: int | None = None) -> list[tuple[int, int, float, float, bool]]:
        """Public trades visible at `now` as (id, ts, price, qty, buyer_maker); id is index + 1."""
        hi = self.visible(now if end is None else min(now, end))
        if from_id is not None:
            lo = max(from_id - 1, 0)
            hi = min(hi, lo + limit)
        elif start is not None:
            lo = int(np.searchsorted(self.ts, start, "left"))
            hi = min(hi, lo + limit)
        else:
            lo = max(hi - limit, 0)
        return [(i + 1, int(self.ts[i]), float(self.price[i]), float(self.qty[i]),
                 bool(self.buyer_maker[i])) for i in range(lo, hi)]

    def stats(self, now: int, window: int = DAY_MS) -> dict[str, float | int]:
        """Rolling statistics of the ticks in (now - window, now]."""
        hi = self.visible(now)
        lo = int(np.searchsorted(self.ts, now - window, "right"))
        last = float(self.price[hi - 1]) if hi else float(self.price[0])
        if hi <= lo:
            return {"open": last, "high": last, "low": last, "last": last, "volume": 0.0,
                    "quote": 0.0, "count": 0, "first": -1, "last_id": -1, "last_qty": 0.0,
                    "open_time": now - window, "prev": last}
        p, q = self.price[lo:hi], self.qty[lo:hi]
        return {"open": float(p[0]), "high": float(p.max()), "low": float(p.min()), "last": last,
                "volume": float(q.sum()), "quote": float((p * q).sum()), "count": hi - lo,
                "first": lo + 1, "last_id": hi, "last_qty": float(q[-1]),
                "open_time": int(self.ts[lo]), "prev": float(self.price[lo - 1]) if lo else float(p[0])}


def num(x: float) -> str:
    """A float as Binance prints numbers: fixed point, no exponent."""
    s = f"{float(x):.8f}"
    return s


def from_candles(ohlcv: OHLCV) -> Feed:
    """Four ticks per candle (see the module docstring); candles without volume are skipped."""
    keep = ohlcv.volume > 0
    t, o, h, l, c, v = (a[keep] for a in (ohlcv.timestamp, ohlcv.open, ohlcv.high,
                                          ohlcv.low, ohlcv.close, ohlcv.volume))
    if len(t) == 0:
        raise DataError("no candles with volume to replay")
    tf = int(np.diff(ohlcv.timestamp).min()) if len(ohlcv) > 1 else 60_000
    rising = c >= o
    second = np.where(rising, l, h)
    third = np.where(rising, h, l)
    ts = (t[:, None] + np.array([0, tf // 4, tf // 2, 3 * tf // 4])[None, :]).ravel()
    price = np.stack([o, second, third, c], axis=1).ravel()
    qty = np.repeat(v / 4.0, 4)
    prev = np.r_[price[0], price[:-1]]
    return Feed(ts.astype(np.int64), price, qty, price < prev)


def from_trades_csv(path: str | Path) -> Feed:
    """Ticks from a trades CSV with columns timestamp, side, price, amount (optionally .gz)."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = [h.strip().lower() for h in next(reader, [])]
    try:
        it, iside, ip, iq = (header.index(c) for c in ("timestamp", "side", "price", "amount"))
    except ValueError:
        raise DataError(f"{path}: a trades CSV needs columns timestamp,side,price,amount") from None
    rows = [(int(float(r[it])), r[iside].strip().lower() == "sell", float(r[ip]), float(r[iq]))
            for r in reader if r]
    if not rows:
        raise DataError(f"{path}: no trades")
    rows.sort(key=lambda r: r[0])
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return Feed(ts, np.array([r[2] for r in rows]), np.array([r[3] for r in rows]),
                np.array([r[1] for r in rows], dtype=bool))


def load_feed(path: str | Path) -> Feed:
    """A feed from a trades or a candles CSV, told apart by its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        header = f.readline().lower()
    if "side" in header and "amount" in header:
        return from_trades_csv(path)
    return from_candles(load_csv(path))
