"""Look-ahead inside `tick`, caught by running the backtest again, blind to the future.

A tick may read any candle of `ai.ohlcv`: its arrays hold the whole backtest, and handing
the strategy a shorter view at every tick would slow every backtest down. So the loop is
left alone, and after the run the backtest runs again on the candles before a cut (the
first half of the data, at most TICK_CHECK candles of ticks: 5,000) with each tick seeing
`ai.ohlcv` only up to its own candle (`blind`: a column is cut when the tick reads it, so a
tick that reads nothing, most of them, pays for no slice).
A tick that reads only candles <= `self.i` decides the same in both runs, so their fills
and equity agree before the cut, to the bit (the sim is deterministic). A tick that reads
a later candle (`close.item(self.i + 2)`, even clamped to the data's end, or `close[-1]`)
fails reading past its view or decides otherwise: LookAheadError names the first candle
where the runs part, or the error.

The check costs one more run over at most TICK_CHECK candles (half a short backtest, a
few percent of a million candles) and nothing in the backtest's own loop; the strategy's
callbacks run again during it. The indicator values (`ai.ind`) are checked apart
(`check_causal`, `check_lookback` in run.py); a tick reading `ai.ind[name][self.i + 1]`
is not caught. `SimConfig(check_lookahead=False)` turns every check off.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...core.display import iso
from ...core.errors import DataError, LookAheadError
from ...data.ohlcv import COLUMNS, OHLCV

TICK_CHECK = 5_000  # candles of ticks the second run covers, at most


class _Cut(OHLCV):
    """The candles of `whole` before index `end`, each column cut when it is read (a view;
    `end` moves with every tick). An OHLCV to the tick (isinstance, len, slices, columns)."""

    __slots__ = ("whole", "end")
    __setattr__ = object.__setattr__  # only blind() sets `end`; the columns are read-only

    def __init__(self, whole: OHLCV) -> None:
        self.whole, self.end = whole, 0


def _column(name: str) -> property:
    def read(self: _Cut) -> np.ndarray:
        return getattr(self.whole, name)[:self.end]
    return property(read, doc=f"the {name} column up to the tick's candle")


for _name in COLUMNS:
    setattr(_Cut, _name, _column(_name))
del _name


def blind(s: Any) -> Any:
    """`s` (a strategy instance about to be backtested) with its tick seeing each asset's
    candles up to `self.i` only; between ticks the candles are whole again (matching and
    the results read them)."""
    tick = s.tick
    cuts: list[tuple[Any, OHLCV, _Cut]] = []

    def blind_tick(ts: int) -> None:
        if not cuts:  # the first tick: the engine caches its columns from the whole data
            sim = s.engine.executor.engine
            for ai in s.assets:
                sim.cols(ai)
                sim.views(ai)
                cuts.append((ai, ai.ohlcv, _Cut(ai.ohlcv)))
        end = s.i + 1
        for ai, _, cut in cuts:
            cut.end = end
            ai.ohlcv = cut
        try:
            tick(ts)
        finally:
            for ai, whole, _ in cuts:
                ai.ohlcv = whole

    s.tick = blind_tick
    return s


def cut_time(timeline: np.ndarray, first: int) -> int | None:
    """Where the second run stops (epoch ms, exclusive), or None when too few candles
    would be ticked before it to compare anything."""
    cut = min(len(timeline) // 2, first + TICK_CHECK)
    return int(timeline[cut]) if cut - first >= 2 else None


def check_tick(full: Any, cut: int, rerun: Callable[[int], Any]) -> None:
    """Raise LookAheadError if the backtest `rerun(cut)` on the candles before `cut`
    trades or values the strategy differently from `full` (a SimResult) before it."""
    try:
        part = rerun(cut)
    except (DataError, LookAheadError):
        return  # the shorter data cannot be backtested: nothing to compare
    except Exception as e:
        raise LookAheadError(
            f"tick of {type(full.strategy).__name__} looks ahead: run again with each tick "
            f"seeing the candles up to its own only, it raised {type(e).__name__}: {e} (it "
            f"reads a candle after self.i; `tick` may read candles <= self.i only)") from e
    if len(part.times) == 0 or part.times[0] != full.times[0]:
        return
    found = _parting(full, part)
    if found is not None:
        when, what = found
        raise LookAheadError(
            f"tick of {type(full.strategy).__name__} looks ahead: run again (up to "
            f"{iso(cut)}) with each tick seeing the candles up to its own only, it {what} "
            f"from {iso(when)} on. `tick` may read candles <= self.i only "
            f"(ai.ohlcv.close.item(self.i) is the newest closed one)")


def _parting(full: Any, part: Any) -> tuple[int, str] | None:
    """(time, how) of the first difference between the two runs up to the second's last
    candle (matched, not ticked; before a gap at the cut it ends early)."""
    found = []
    last = int(part.times[-1])
    trades = [t for t in full.trades if t.date <= last]
    for k, (a, b) in enumerate(zip(trades, part.trades)):
        if a != b:
            found.append((min(a.date, b.date), f"filled {b!r} where the whole run filled {a!r}"))
            break
    else:
        if len(trades) != len(part.trades):
            longer = trades if len(trades) > len(part.trades) else part.trades
            t = longer[min(len(trades), len(part.trades))]
            found.append((t.date, f"made {len(part.trades)} fills where the whole run made "
                                  f"{len(trades)} (first unmatched: {t!r})"))
    n = min(len(part.equity), len(full.equity))
    differs = np.flatnonzero(full.equity[:n] != part.equity[:n])
    if len(differs):
        j = int(differs[0])
        found.append((int(part.times[j]), f"ended candle {iso(int(part.times[j]))} with equity "
                                          f"{part.equity[j]!r} where the whole run had "
                                          f"{full.equity[j]!r}"))
    return min(found, key=lambda f: f[0]) if found else None
