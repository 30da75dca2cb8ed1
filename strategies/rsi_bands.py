"""Mean reversion on spot ETH/BTC: buy when the price closes below the lower Bollinger band
with the RSI oversold, sell when it is back at the middle band or the RSI is overbought.

Shows TA-Lib's recursive RSI beside window indicators, and a `lookback` that covers
both: the bands depend on their last `bands` candles, while the RSI depends on every
candle before it but forgets where it started after 60 of its periods, bit for bit, so
paper and live read the values a backtest read.
"""

from planarpy import Param, Strategy, call
from planarpy.indicators import bbands, rsi


class RsiBands(Strategy):
    exchange = "binance"
    quote = "BTC"
    timeframe = "5m"
    universe = ("ETH/BTC",)
    initial_cash = 1.0
    bands = Param(20, low=5, high=100)        # candles of the Bollinger bands
    width = Param(2.0, low=1.0, high=3.0)     # their width, in standard deviations
    period = Param(14, low=2, high=50)        # candles of the RSI
    oversold = Param(35.0, low=5.0, high=50.0)
    overbought = Param(65.0, low=50.0, high=95.0)
    invest = Param(0.9, low=0.05, high=0.95)  # share of free cash put into each entry

    def warmup_period(self):
        return max(self.bands, self.period + 1)  # both exist from here on

    @property
    def lookback(self):
        return max(self.bands, 60 * self.period)  # what each value depends on

    def indicators(self, ai):
        close = ai.ohlcv.close
        b = bbands(close, self.bands, self.width)
        return {"lower": b.lower, "middle": b.middle, "rsi": rsi(close, self.period)}

    def start(self):
        self.ai = self.assets[0]
        self.lower, self.middle, self.rsi = (self.ai.ind[k] for k in ("lower", "middle", "rsi"))

    def tick(self, ts):
        ai, i = self.ai, self.i
        price = ai.ohlcv.close.item(i)
        holding = ai.free_balance >= ai.market.min_amount
        if not holding and price < self.lower[i] and self.rsi[i] < self.oversold:
            amount = ai.floor_amount(self.free_cash * self.invest / price)
            call(self, "market_order", ai, amount, side="buy")
        elif holding and (price >= self.middle[i] or self.rsi[i] > self.overbought):
            call(self, "market_order", ai, ai.floor_amount(ai.free_balance), side="sell")
