"""SMA cross on spot ETH/BTC: buy when the fast average crosses above the slow one, sell
when it crosses below. `fast`, `slow` and `invest` are parameters: set them with
`-p fast=12`, or search them with `planarpy optimize sma_cross`.

The averages are computed once, vectorised, by `indicators` (each value uses only candles
up to its own), so a tick reads one list entry and usually does nothing.
"""

from planarpy import Param, Strategy, call
from planarpy.indicators import crossings, sma


class SmaCross(Strategy):
    exchange = "binance"
    quote = "BTC"
    timeframe = "5m"
    universe = ("ETH/BTC",)
    initial_cash = 1.0
    fast = Param(10, low=2, high=50)            # candles of the fast average
    slow = Param(30, low=5, high=200)           # candles of the slow average
    invest = Param(0.99, low=0.05, high=1.0)    # share of free cash put into each entry

    def warmup_period(self):
        return self.slow  # no cross before both averages exist

    def indicators(self, ai):
        close = ai.ohlcv.close
        return {"cross": crossings(sma(close, self.fast), sma(close, self.slow))}

    def start(self):
        self.ai = self.assets[0]
        self.cross = self.ai.ind["cross"]

    def tick(self, ts):
        cross = self.cross[self.i]
        if not cross:
            return
        ai = self.ai
        if cross > 0 and ai.free_balance < ai.market.min_amount:
            price = ai.ohlcv.close.item(self.i)
            amount = ai.floor_amount(self.free_cash * self.invest / price)
            call(self, "market_order", ai, amount, side="buy")
        elif cross < 0 and ai.free_balance >= ai.market.min_amount:
            call(self, "market_order", ai, ai.floor_amount(ai.free_balance), side="sell")
