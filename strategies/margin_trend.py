"""Trend following on the XRP/USDT perpetual with isolated margin, long and short.

Long when the fast EMA crosses above the slow one, short when it crosses below; each
entry first closes the opposite position. Leverage 3, 50% of free cash as margin.
"""

from planarpy import Strategy, call
from planarpy.indicators import crossings, ema


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

    @property
    def lookback(self):
        # an EMA depends on every candle before it, but TA-Lib's ema(n) forgets where it
        # started after 30 * (n + 1) candles; the cross at i also reads i - 1
        return 30 * (max(self.fast, self.slow) + 1) + 1

    def indicators(self, ai):
        close = ai.ohlcv.close
        return {"cross": crossings(ema(close, self.fast), ema(close, self.slow))}

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
