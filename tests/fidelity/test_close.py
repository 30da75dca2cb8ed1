"""`close_position` means the same in sim, paper and live, on spot and on isolated margin:
every open order of the asset is cancelled, what the run holds is closed with one market
order, and the call answers True once nothing is left to close."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from planarpy import OHLCV, Strategy, Trade, backtest, call
from planarpy.data.sources import markets_for
from planarpy.localexchange import AccountSpec
from planarpy.localexchange.clock import Clock
from planarpy.localexchange.replay import from_candles
from planarpy.modes.sim import SimConfig

from fidelitykit import MINUTE, T0, run_live, run_paper, step_minutes, wait_for, walk

SPOT, PERP = "XRP/ETH", "XRP/USDT:USDT"

def scaled(o: OHLCV, k: float) -> OHLCV:
    return OHLCV(o.timestamp, *(np.round(c * k, 4) for c in (o.open, o.high, o.low, o.close)),
                 o.volume)


CANDLES = {SPOT: walk(240, T0 - 120 * MINUTE), PERP: scaled(walk(240, T0 - 120 * MINUTE), 333.0)}


class Closer(Strategy):
    """At T0 + 1 min: buys 100 and rests a buy far below the market; at T0 + 2 min:
    closes the position. Keeps the answer, the closing trade and the state after it."""

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SPOT,)
    initial_cash = 1.0

    def reset(self) -> None:
        self.closed: Any = None
        self.trades_seen: list[Trade] = []

    def on_trade(self, ai: Any, trade: Trade) -> None:
        self.trades_seen.append(trade)

    def tick(self, ts: int) -> None:
        ai = self.assets[0]
        if ts == T0 + MINUTE:
            call(self, "market_order", ai, 100.0, side="buy")
            price = ai.round_price(ai.ohlcv.close.item(self.i) * 0.5)
            call(self, "limit_order", ai, 100.0, price, side="buy", waitfor=0.0)
        elif ts == T0 + 2 * MINUTE:
            self.closed = call(self, "close_position", ai)
            self.after = (ai.balance, ai.long.amount, ai.short.amount, len(ai.orders))


class PerpCloser(Closer):
    exchange = "binanceusdm"
    quote = "USDT"
    margin = "isolated"
    universe = (PERP,)
    initial_cash = 1000.0


def sim(cls: type) -> Any:
    sym = cls.universe[0]
    r = backtest(cls, data={sym: CANDLES[sym]}, settings={},
                 config=SimConfig(slippage=0.0, volume_cap=False))
    return r.strategy


@pytest.fixture(params=["sim", "paper", "live"])
def mode(request: Any) -> str:
    return request.param


def run(mode: str, cls: type, factory: Any) -> Any:
    if mode == "sim":
        return sim(cls)
    sym = cls.universe[0]
    spot = {"ETH": "1.0", "XRP": "50"} if sym == SPOT else {}
    lx = factory(markets=[markets_for(cls.exchange, {})[sym]],
                 data={sym: from_candles(CANDLES[sym])}, clock=Clock(start=T0), origin=T0,
                 accounts=[AccountSpec(spot=spot, futures="1000", leverage=1)])
    settings = {"exchanges": {cls.exchange: {"rate_limit": False}}}
    if mode == "live":
        handle = run_live(lx, cls, candles=100, settings=settings)
    else:
        handle = run_paper(lx, cls, candles=100, settings=settings, cash=cls.initial_cash)
    try:
        wait_for(lambda: handle.session.ticks)
        step_minutes(lx, handle, 3)
    finally:
        handle.stop()
    return handle.strategy


@pytest.mark.parametrize("cls", [Closer, PerpCloser], ids=["spot", "isolated"])
def test_close_position_gives_the_same_result_in_every_mode(cls, mode, local_exchange_factory):
    """True; the resting order cancelled; on margin no position is left; on spot the
    base this run's own fill bought (less its fee, to the amount step) is sold, and a
    live account's coins held before the run stay."""
    s = run(mode, cls, local_exchange_factory)
    assert s.closed is True
    bought, sold = s.trades_seen[0], s.trades_seen[-1]
    assert len(s.trades_seen) == 2 and bought.side.value == "buy" and sold.side.value == "sell"
    balance, long, short, orders = s.after
    assert (long, short, orders) == (0.0, 0.0, 0)
    if cls is Closer:
        assert sold.amount == 99.0  # 100 bought, 0.1 paid as the fee, 99 on the amount step
        held = 50.0 if mode == "live" else 0.0
        assert balance == pytest.approx(held + 0.9)
    else:
        assert sold.amount == bought.amount == 100.0
