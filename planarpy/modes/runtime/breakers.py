"""The loss breakers of a paper or live run, watched at every candle close.

A backtest measures the equity at each close, before that candle's tick (`sim/guard.py`);
a paper or live run does the same, so that the same strategy trips the same breaker at
the same decision in every mode. The equity is marked at the candle's close
(`SessionExecutor.mark`); a UTC day starts from the equity after the previous day's last
tick, as in a backtest.
"""

from __future__ import annotations

import math

import numpy as np

from ...actions.engine import Engine
from ...actions.pipeline import watch_equity
from ...core.risk import DAY_MS, day_of, equity


class EquityWatch:
    """Measures one run's equity around each tick (see the module docstring)."""

    __slots__ = ("e", "last")

    def __init__(self, e: Engine) -> None:
        self.e = e
        self.last: tuple[int, float] | None = None  # (close, equity) after the last tick

    def _equity(self) -> float | None:
        e = self.e
        if not e.state.risk.rules.checks_equity:
            return None
        value = equity(e.state, e.executor.mark)
        return value if math.isfinite(value) else None

    def before_tick(self, ts: int) -> None:
        """At the close `ts`, before its tick: measure, and trip a loss breaker if due
        (runs as strategy code: a trip may cancel and close)."""
        value = self._equity()
        if value is None:
            return
        last = self.last
        before = last[1] if last is not None and day_of(last[0]) == day_of(ts) - 1 else None
        watch_equity(self.e, value, ts, before)

    def resume(self, now: int, tf: int) -> None:
        """After a restart on a later UTC day than the measurements carried over: the day
        of `now` starts, as for a run that stayed up, from the equity at its first close
        (00:00, the last of the day before), the holdings marked at that close. Left to
        the first close measured (its equity) when the candles lack that close."""
        e = self.e
        risk = e.state.risk
        today = day_of(now)
        if risk.day is None or risk.day >= today or not risk.rules.daily_rules:
            return
        midnight = today * DAY_MS  # the close that ends the day before
        closes: dict[str, float] = {}
        for ai in e.assets:
            o = ai.ohlcv
            at = -1 if o is None else int(np.searchsorted(o.timestamp, midnight - tf))
            if 0 <= at < len(o) and int(o.timestamp[at]) == midnight - tf:
                closes[ai.symbol] = o.close.item(at)
        try:
            value = equity(e.state, lambda ai: closes[ai.symbol])
        except KeyError:  # a holding whose candles lack that close: not known
            return
        if math.isfinite(value):
            self.last = (midnight, value)

    def after_tick(self, ts: int) -> None:
        """After the tick of the close `ts`: the equity a new day would start from."""
        value = self._equity()
        if value is not None:
            self.last = (ts, value)
