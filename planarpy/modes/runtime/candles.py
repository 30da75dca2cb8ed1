"""Closed candles in paper and live: which candle counts as closed, the gap-free grid, and
waiting for the next close on the exchange's clock.

A candle [t, t + tf) counts as closed once the exchange's clock (never the local one)
has passed t + tf. The candles a run keeps are on a grid with no holes, as a backtest's
are: a period in which nothing traded (no kline) is a flat candle at the previous close
with zero volume, the same candle `align` puts there in the sim.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ...data.ohlcv import OHLCV, align, concat

POLL = 0.01  # seconds between looks at a stepped clock (one with no rate)


def newest_closed(now: int, tf: int) -> int:
    """Open time of the newest candle closed at exchange time `now` (ms)."""
    return now // tf * tf - tf


def extend(have: OHLCV, rows: Iterable[Sequence[float]], through: int, tf: int) -> OHLCV:
    """`have` followed by the candles up to the one opening at `through`, on its grid.

    `rows` are exchange candles (ccxt rows); those opening after `have` and at or before
    `through` are kept, and each slot with none is a flat candle at the previous close
    with zero volume.
    """
    last = int(have.timestamp[-1])
    if through <= last:
        return have
    times = np.arange(last + tf, through + tf, tf, dtype=np.int64)
    got = {int(r[0]): r for r in rows if last < int(r[0]) <= through}
    out = np.empty((len(times), 5))
    close = float(have.close[-1])
    for k, t in enumerate(times.tolist()):
        r = got.get(t)
        if r is None:
            out[k] = (close, close, close, close, 0.0)
        else:
            out[k] = (float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5] or 0.0))
            close = out[k, 3]
    new = OHLCV(times, *(np.ascontiguousarray(out[:, j]) for j in range(5)))
    return concat(have, new)


def start_series(rows: Mapping[str, Sequence[Sequence[float]]], through: int,
                 timeframe: str, tf: int) -> dict[str, OHLCV] | None:
    """The first candles of each market, aligned on one grid and filled up to `through`;
    None while some market has no candle at all yet."""
    if not rows or any(not r for r in rows.values()):
        return None
    series = {sym: OHLCV.from_rows([(*x[:5], x[5] or 0.0) for x in r if int(x[0]) <= through])
              for sym, r in rows.items()}
    if any(len(o) == 0 for o in series.values()):
        return None
    _, aligned = align(series, timeframe)
    return {sym: extend(o, (), through, tf) for sym, o in aligned.items()}


def wall_seconds(clock: Any, ms: int) -> float | None:
    """Wall seconds it takes `clock` to advance `ms`, from its `speed` (exchange ms per wall
    ms, 1 when it has none); None for a clock that only moves when stepped."""
    speed = getattr(clock, "speed", 1.0)
    if not speed:
        return None
    return max(ms, 0) / speed / 1000


async def sleep_toward(clock: Any, target: int, at_most: float) -> None:
    """Sleep until `clock` reads `target` (ms) or `at_most` seconds have passed."""
    delay = wall_seconds(clock, target - clock.now())
    await asyncio.sleep(max(0.0, min(POLL if delay is None else delay, at_most)))
