"""Every indicator of planarpy.indicators with the lookback its docstring gives, and a
strategy that computes them all and records what each tick reads: shared by the lookback
tests and the fidelity tests (sim against paper and live)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from planarpy import Strategy
from planarpy import indicators as ind

# name -> (the indicator of a market's candles, the lookback its docstring gives)
INDICATORS: dict[str, tuple[Callable[[Any], np.ndarray], int]] = {
    "sma": (lambda o: ind.sma(o.close, 20), 20),
    "rolling_sum": (lambda o: ind.rolling_sum(o.volume, 20), 20),
    "wma": (lambda o: ind.wma(o.close, 20), 20),
    "stddev": (lambda o: ind.stddev(o.close, 20), 20),
    "bbands.upper": (lambda o: ind.bbands(o.close, 20, 2.0).upper, 20),
    "bbands.lower": (lambda o: ind.bbands(o.close, 20, 2.0).lower, 20),
    "rolling_max": (lambda o: ind.rolling_max(o.high, 20), 20),
    "rolling_min": (lambda o: ind.rolling_min(o.low, 20), 20),
    "donchian.middle": (lambda o: ind.donchian(o, 20).middle, 20),
    "stoch.k": (lambda o: ind.stoch(o, 14, 3, 3).k, 14 + 3 - 1),
    "stoch.d": (lambda o: ind.stoch(o, 14, 3, 3).d, 14 + 3 + 3 - 2),
    "vwap": (lambda o: ind.vwap(o, 20), 20),
    "obv.20": (lambda o: ind.obv(o, 20), 21),
    "crossings": (lambda o: ind.crossings(ind.sma(o.close, 5), ind.sma(o.close, 20)), 21),
    "ema": (lambda o: ind.ema(o.close, 10), 30 * 11),
    "rsi": (lambda o: ind.rsi(o.close, 14), 60 * 14),
    "macd.hist": (lambda o: ind.macd(o.close, 12, 26, 9).hist, 30 * 27 + 30 * 10),
    "macd.signal": (lambda o: ind.macd(o.close, 12, 26, 9).signal, 30 * 27 + 30 * 10),
    "atr": (lambda o: ind.atr(o, 14), 60 * 14),
    "adx": (lambda o: ind.adx(o, 14), 60 * 14),
    "dmi.plus": (lambda o: ind.dmi(o, 14).plus, 60 * 14),
    "dmi.minus": (lambda o: ind.dmi(o, 14).minus, 60 * 14),
    "ema.cross": (lambda o: ind.crossings(ind.ema(o.close, 5), ind.ema(o.close, 13)),
                  30 * 14 + 1),
    "rsi.cross": (lambda o: ind.crossings(ind.rsi(o.close, 7), 50.0), 60 * 7 + 1),
}
LOOKBACK = max(lookback for _, lookback in INDICATORS.values())


def too_short(name: str) -> int:
    """A lookback with which `name`'s values differ on the bundled candles: one candle
    short of a window, a quarter of a recursive lookback. A cross of recursive indicators
    barely moves with a quarter (its inputs differ by 1e-9 then): 30 candles, with which
    its inputs differ by 1e-5 and a few crosses move."""
    lookback = INDICATORS[name][1]
    if name.endswith(".cross"):
        return 30
    return lookback - 1 if lookback <= 100 else lookback // 4


class Panel(Strategy):
    """Computes every indicator of INDICATORS on XRP/ETH one-minute candles and records,
    at each tick, the close time, the candle's open time and every value (`seen`)."""

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = ("XRP/ETH",)
    initial_cash = 1.0
    lookback = LOOKBACK
    warmup = LOOKBACK

    def indicators(self, ai: Any) -> dict[str, np.ndarray]:
        return {name: fn(ai.ohlcv) for name, (fn, _) in INDICATORS.items()}

    def reset(self) -> None:
        self.seen: list[tuple] = []

    def tick(self, ts: int) -> None:
        ai, i = self.assets[0], self.i
        self.seen.append((ts, int(ai.ohlcv.timestamp[i]),
                          *(ai.ind[name][i] for name in INDICATORS)))


def one(name: str, lookback: int | None, base: type[Strategy] = Panel) -> type[Strategy]:
    """A strategy of `base`'s market with the one indicator `name` and `lookback`."""
    fn = INDICATORS[name][0]
    return type(f"Only_{name.replace('.', '_')}", (base,), {
        "lookback": lookback, "warmup": 0,
        "indicators": lambda self, ai: {name: fn(ai.ohlcv)},
        "tick": lambda self, ts: None})
