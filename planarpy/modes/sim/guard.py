"""The loss breakers of a backtest, watched at every candle close for almost nothing.

The daily-loss and drawdown breakers compare the equity at each close with the day's
start and the peak (`core.risk`). Measuring the equity at every candle would cost more
than the rest of an idle loop, so the guard uses that between two fills the equity is
k + q * close in the one asset held: it keeps the band of closes inside which no breaker
can trip and no new peak is made (`core.risk.price_band`; with nothing held, the equity
itself is compared: `core.risk.flat_inside`), set anew after each fill and reset.
Outside the band and at each new UTC day the guard measures the equity exactly
(`check`); with several assets held it measures at every close. The decisions are those
of measuring every close: the band only skips closes where the answer is known (a
property test pins this). Without a drawdown rule nothing needs the peak, so the band
has no top and the peak the state records is only that of the closes measured.

Even comparing each close with the band costs a busy loop a tenth of its time, so the
loop compares none inside a stretch of candles whose closes all lie inside the band: it
runs the stretch as the plain loop runs, over `run` (the stretch's candles: an array
iterator stops once its array is emptied), and compares the close after it.
`clear_until` finds where a stretch ends: it passes over the blocks of BLOCK candles
whose closes all lie inside the band (each block's lowest and highest close are kept
when the run starts), and keeps the lowest and highest close of the stretch's blocks
(`reach`). A fill that narrows the band so that it no longer holds `reach` empties
`run`, which ends the stretch after that candle.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Sequence

import numpy as np

from ...actions.engine import Engine
from ...actions.pipeline import watch_equity
from ...core.risk import (DAY_MS, RiskState, asset_terms, day_of, equity_bounds,
                          flat_inside, linear_equity, price_band)

INF = math.inf
BLOCK = 64  # closes per block of `clear_until`


class EquityGuard:
    """Watches one backtest's equity for the loss breakers (see the module docstring).

    `watch` is [closes of the asset held, lowest close, highest close] as the loop reads
    it; `refresh()` sets the band anew after a fill, `dirty()` empties it so that the
    next close is measured; both end the loop's stretch (empty `run`) when the band
    narrows so that some close of it may lie outside.
    """

    __slots__ = ("e", "closes", "watch", "before", "times", "bounds", "only", "spot", "run",
                 "reach", "extremes", "blocks")

    def __init__(self, e: Engine, close_times: Sequence[int]) -> None:
        self.e = e
        self.times = close_times
        self.closes = {ai.symbol: memoryview(np.ascontiguousarray(ai.ohlcv.close, np.float64))
                       for ai in e.assets}
        self.watch: list[Any] = [next(iter(self.closes.values())), INF, -INF]
        self.run = array("q")  # the candles of the loop's stretch
        self.reach = (INF, -INF)  # the lowest and highest close of the stretch's blocks
        # each asset's (lowest, highest) close of each block of BLOCK candles
        self.extremes = {sym: _extremes(np.asarray(c)) for sym, c in self.closes.items()}
        self.blocks = next(iter(self.extremes.values()))  # those of the closes watched
        self.before: float | None = e.state.cash  # the first day starts with the run
        self.bounds = (INF, -INF)  # equity_bounds, kept from one measurement to the next
        self.only = e.assets[0] if len(e.assets) == 1 else None
        self.spot = self.only is not None and not self.only.market.is_derivative

    def dirty(self) -> None:
        """Measure the next close whatever it is."""
        self.watch[1], self.watch[2] = INF, -INF
        del self.run[:]

    def clear_until(self, i: int, stop: int) -> int:
        """The first candle from `i` on (`stop` at most) whose close may leave the band:
        the closes of `i`'s block are looked at one by one if they do not all lie inside
        it, else the next blocks whose closes all do are passed over. `reach` is set to
        the lowest and highest close of the blocks looked at."""
        w = self.watch
        lo, hi = w[1], w[2]
        low, high = self.blocks
        k = i // BLOCK
        least, most = low[k], high[k]
        if not (lo <= least and most <= hi):
            self.reach = (least, most)
            closes = w[0]
            end = min(k * BLOCK + BLOCK, stop)
            while i < end and lo <= closes[i] <= hi:
                i += 1
            return i
        end = (stop - 1) // BLOCK  # the block of the last candle before `stop`
        k += 1
        while k <= end and lo <= low[k] and high[k] <= hi:
            if low[k] < least:
                least = low[k]
            if high[k] > most:
                most = high[k]
            k += 1
        self.reach = (least, most)
        j = k * BLOCK
        return j if j < stop else stop

    def new_day(self, i: int) -> None:
        """Before candle `i`, the first of a UTC day: the day starts at the equity of the
        last close of the day before (after its tick)."""
        self.before = self.equity_at(i - 1)
        self.dirty()

    def check(self, i: int) -> None:
        """Measure the equity at close `i`, trip a breaker if due, then set the band."""
        watch_equity(self.e, self.equity_at(i), self.times[i], self.before)
        self.before = None
        self.rebase()

    def equity_at(self, i: int) -> float:
        """The equity at close `i`: linear_equity's k + q * close."""
        k, q = linear_equity(self.e.state)
        return k + sum(v * self.closes[sym][i] for sym, v in q.items())

    def rebase(self) -> None:
        """The peak or the day's start moved (a measurement, a reset): new bounds, new band."""
        self.bounds = equity_bounds(self.e.state.risk)
        self.refresh()

    def refresh(self) -> None:
        """Set the band for the state now: after a fill, a measurement or a reset. The
        loop's stretch goes on if the band still holds the closes of its blocks."""
        w = self.watch
        if self.before is not None:  # a new day's start is still to be measured
            lo, hi = INF, -INF
        elif self.spot:  # one spot asset (most strategies): its asset_terms are (0, balance)
            v = self.only.balance
            lo, hi = price_band(self.bounds, self.e.state.cash, v) if v else \
                flat_band(self.e.state.risk, self.e.state.cash)
        elif self.only is not None:  # one asset: no need to look for it
            fixed, v = asset_terms(self.only)
            lo, hi = price_band(self.bounds, self.e.state.cash + fixed, v) if v else \
                flat_band(self.e.state.risk, self.e.state.cash + fixed)
        else:
            k, q = linear_equity(self.e.state)
            if len(q) > 1:
                lo, hi = INF, -INF  # several prices move it: measure every close
            else:
                if q:
                    sym, v = next(iter(q.items()))
                    if w[0] is not self.closes[sym]:  # the closes passed over were another's
                        w[0] = self.closes[sym]
                        self.blocks = self.extremes[sym]
                        del self.run[:]
                else:
                    v = 0.0
                lo, hi = price_band(self.bounds, k, v) if v else flat_band(self.e.state.risk, k)
        if not (lo <= w[1] and w[2] <= hi):  # narrowed: end the stretch unless it is inside
            least, most = self.reach
            if not (lo <= least and most <= hi):
                del self.run[:]
        w[1], w[2] = lo, hi


def flat_band(risk: RiskState, k: float) -> tuple[float, float]:
    """`price_band` of an equity no price moves (nothing held): it is k at every close, so
    k itself is compared, as a measurement compares it (`flat_inside`)."""
    return (-INF, INF) if flat_inside(risk, k) else (INF, -INF)


def _extremes(closes: np.ndarray) -> tuple[list[float], list[float]]:
    """The lowest and the highest close of each block of BLOCK candles (the last may be
    shorter)."""
    starts = np.arange(0, len(closes), BLOCK)
    return np.minimum.reduceat(closes, starts).tolist(), np.maximum.reduceat(closes, starts).tolist()


def day_starts(times: Sequence[int], start: int, stop: int) -> list[int]:
    """Candles in [start, stop) whose close `times[i]` is the first of its UTC day (`start`
    itself never is): with candles every step (a range), found day by day from its start
    and step; with gaps skipped (a list), by comparing each close's day with the last's."""
    if stop - start < 2:
        return []
    if not isinstance(times, range):
        days = (np.asarray(times[start:stop], dtype=np.int64) - 1) // DAY_MS  # day_of
        return (np.flatnonzero(np.diff(days)) + 1 + start).tolist()
    t0, step = times.start, times.step
    out: list[int] = []
    for day in range(day_of(times[start]) + 1, day_of(times[stop - 1]) + 1):
        i = -((t0 - day * DAY_MS - 1) // step)  # the first close after the day began
        if not out or out[-1] != i:  # (with candles longer than a day, days are skipped)
            out.append(i)
    return out
