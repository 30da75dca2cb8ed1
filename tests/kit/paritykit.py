"""One long-only SMA cross written for planarpy and for backtesting.py, sized alike.

Both trade on the same candles with the same assumptions: market orders fill at the
next candle's open, no slippage or spread, no volume cap, one commission rate on both
sides, and a buy puts all the cash in, in whole units, as backtesting.py's `buy()` does.
Used by tests/parity and bench/compare.py.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from planarpy import OHLCV, Market, Strategy, backtest, call
from planarpy.modes.sim import SimConfig, SimResult

FAST, SLOW = 10, 30
FULL = 1 - sys.float_info.epsilon  # backtesting.py's default buy() size: all the equity
DAY = 86_400_000


def sma(values: np.ndarray, n: int) -> np.ndarray:
    """backtesting.test.SMA (a pandas rolling mean): the same floats on both sides."""
    import pandas as pd
    return pd.Series(values).rolling(n).mean().to_numpy()


def crosses(close: np.ndarray, fast: int = FAST, slow: int = SLOW) -> np.ndarray:
    """+1 where the fast average crosses above the slow one, -1 below, as lib.crossover tests it."""
    f, s = sma(close, fast), sma(close, slow)
    out = np.zeros(len(close), dtype=np.int64)
    out[1:][(f[:-1] < s[:-1]) & (f[1:] > s[1:])] = 1
    out[1:][(f[:-1] > s[:-1]) & (f[1:] < s[1:])] = -1
    return out


def all_in_size(cash: float, price: float, commission: float) -> int:
    """Whole units backtesting.py's `buy()` takes when it fills at `price`.

    As _Broker._process_orders computes it, float for float.
    """
    per_unit = price + FULL * price * commission / FULL
    return int(cash * 1.0 * FULL // per_unit)


class PlanarSmaCross(Strategy):
    """Buy all in when the fast SMA crosses above the slow one; sell all when it crosses below.

    backtesting.py sizes an order when it fills, from the fill price; a planarpy order
    has its amount when it is sent. So this strategy reads the next candle's open to
    size its buy: a parity device, a look-ahead no real strategy may take.
    """

    timeframe = "1m"
    warmup = SLOW
    commission = 0.0
    fast, slow = FAST, SLOW

    def indicators(self, ai: Any) -> dict[str, np.ndarray]:
        return {"cross": crosses(ai.ohlcv.close, self.fast, self.slow)}

    def start(self) -> None:
        self.ai = self.assets[0]
        self.cross = self.ai.ind["cross"]
        self.open = self.ai.ohlcv.open.tolist()

    def tick(self, ts: int) -> None:
        cross = self.cross[self.i]
        if not cross:
            return
        ai = self.ai
        if cross > 0 and ai.balance == 0:
            size = all_in_size(self.cash, self.open[self.i + 1], self.commission)
            if size:
                call(self, "market_order", ai, float(size), side="buy")
        elif cross < 0 and ai.balance > 0:
            call(self, "market_order", ai, ai.balance, side="sell")


def run_planar(data: OHLCV, market: Market, cash: float, commission: float,
               timeframe: str, fast: int = FAST, slow: int = SLOW,
               gaps: str = "fill", check_lookahead: bool = True) -> SimResult:
    """The planarpy side: PlanarSmaCross on `data`, no slippage or volume cap; `gaps` is
    the gap policy (SimConfig.gaps), `check_lookahead` SimConfig's (backtesting.py makes
    no such check: bench/compare.py times both)."""
    cls = type("PlanarSmaCross", (PlanarSmaCross,), {
        "exchange": "parity", "quote": market.quote, "universe": (market.symbol,),
        "initial_cash": cash, "timeframe": timeframe, "commission": commission,
        "fast": fast, "slow": slow, "warmup": slow})
    s = cls({market.symbol: market})
    # backtesting.py takes its commission from cash: the fee in the quote currency
    config = SimConfig(slippage=0.0, volume_cap=False, maker=commission, taker=commission,
                       fee_side="quote", gaps=gaps, check_lookahead=check_lookahead)
    return backtest(s, data={market.symbol: data}, config=config, settings={})


def bt_strategy(fast: int = FAST, slow: int = SLOW) -> type:
    """The backtesting.py side, written as its documentation writes an SMA cross."""
    from backtesting import Strategy as BtStrategy
    from backtesting.lib import crossover

    class BtSmaCross(BtStrategy):
        n1, n2 = fast, slow

        def init(self) -> None:
            self.f = self.I(sma, self.data.Close, self.n1)
            self.s = self.I(sma, self.data.Close, self.n2)

        def next(self) -> None:
            if crossover(self.f, self.s):
                if not self.position:
                    self.buy()
            elif crossover(self.s, self.f):
                if self.position:
                    self.position.close()

    return BtSmaCross


def run_bt(frame: Any, cash: float, commission: float, fast: int = FAST, slow: int = SLOW) -> Any:
    """Run BtSmaCross on `frame` (Open, High, Low, Close, Volume); returns its stats Series."""
    import warnings

    from backtesting import Backtest
    bt = Backtest(frame, bt_strategy(fast, slow), cash=cash, commission=commission,
                  trade_on_close=False, exclusive_orders=False, finalize_trades=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "trades remain open at the end": intended
        return bt.run()


def to_frame(data: OHLCV) -> Any:
    """planarpy candles as the DataFrame backtesting.py takes."""
    import pandas as pd
    index = pd.to_datetime(data.timestamp, unit="ms")
    return pd.DataFrame({"Open": data.open, "High": data.high, "Low": data.low,
                         "Close": data.close, "Volume": data.volume}, index=index)


def from_frame(frame: Any, t0: int = 0, step: int = DAY) -> OHLCV:
    """backtesting.py's rows as planarpy candles, one `step` apart from `t0`.

    planarpy steps over a regular timeline and fills gaps with flat candles; GOOG's
    daily rows skip weekends and holidays, so they are put on a gap-free grid instead.
    """
    ts = t0 + step * np.arange(len(frame), dtype=np.int64)
    return OHLCV(ts, *(frame[c].to_numpy(dtype=np.float64) for c in
                       ("Open", "High", "Low", "Close", "Volume")))


def stock(symbol: str, commission: float) -> Market:
    """A share market: whole shares, cent ticks, no minimum cost."""
    base, quote = symbol.split("/")
    return Market(symbol=symbol, id=base, base=base, quote=quote, settle=None, kind="spot",
                  amount_step=1.0, price_step=0.01, min_amount=1.0, min_cost=0.0,
                  maker=commission, taker=commission)
