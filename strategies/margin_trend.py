"""Trend following on the XRP/USDT perpetual with isolated margin, long and short.

Long when the fast EMA crosses above the slow one, short when it crosses below; each
entry first closes the opposite position. Leverage 3, 50% of free cash as margin.
"""

import numpy as np

from planarpy import Strategy, call


def ema(values: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average (alpha = 2 / (n + 1)); each value uses the past only."""
    alpha = 2.0 / (n + 1)
    out = np.empty(len(values))
    acc = values[0] if len(values) else 0.0
    for k, x in enumerate(values.tolist()):
        acc = alpha * x + (1 - alpha) * acc
        out[k] = acc
    return out


class MarginTrend(Strategy):
    exchange = "binanceusdm"
    quote = "USDT"
    timeframe = "5m"
    margin = "isolated"
    universe = ("XRP/USDT:USDT",)
    initial_cash = 1000.0
    warmup = 50
    fast = 12
    slow = 48
    leverage = 3.0
    stake = 0.5  # share of free cash used as margin for each entry

    def indicators(self, ai):
        close = ai.ohlcv.close
        above = np.sign(ema(close, self.fast) - ema(close, self.slow))
        cross = np.zeros(len(close))
        cross[1:] = np.where(above[1:] != above[:-1], above[1:], 0.0)
        return {"cross": cross}

    def start(self):
        self.ai = self.assets[0]
        self.cross = self.ai.ind["cross"]
        call(self, "update_leverage", self.ai, self.leverage)

    def tick(self, ts):
        cross = self.cross[self.i]
        if not cross:
            return
        ai = self.ai
        want = "long" if cross > 0 else "short"
        pos = ai.open_position()
        if pos is not None:
            if pos.side.value == want:
                return
            call(self, "close_position", ai)
        price = ai.ohlcv.close.item(self.i)
        amount = ai.floor_amount(self.free_cash * self.stake * self.leverage / price)
        side = "buy" if want == "long" else "sell"
        call(self, "market_order", ai, amount, side=side, pos=want)
