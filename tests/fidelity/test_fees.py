"""The fee is taken in the currency the venue takes it in, in every mode: a Binance spot
buy pays its fee in the base it receives, so free balances match live's."""

from __future__ import annotations

import pytest

from planarpy import Trade, backtest, call
from planarpy.modes.sim import SimConfig

from fidelitykit import CANDLES, SYM, Cross, wait_for


class BuySix(Cross):
    """Buys 6 XRP at its first tick, and nothing else."""

    def tick(self, ts: int) -> None:
        if not self.decisions:
            self.decisions.append(call(self, "market_order", self.assets[0], 6.0, side="buy"))


def test_the_sim_takes_a_buys_fee_from_the_base_received():
    """After buying 6 XRP on Binance spot you hold 5.994, and the cash paid is the cost."""
    r = backtest(BuySix, data={SYM: CANDLES}, settings={}, config=SimConfig(slippage=0.0))
    s = r.strategy
    (trade,) = s.trades
    assert (trade.fee, trade.fee_currency) == (pytest.approx(0.006), "XRP")
    assert s.assets[0].balance == pytest.approx(5.994, abs=1e-12)
    assert s.cash == pytest.approx(1.0 - trade.cost, abs=1e-15)


def test_a_quote_fee_setting_charges_cash_as_backtesting_py_does():
    r = backtest(BuySix, data={SYM: CANDLES}, settings={},
                 config=SimConfig(slippage=0.0, fee_side="quote"))
    (trade,) = r.strategy.trades
    assert trade.fee_currency == "ETH" and r.strategy.assets[0].balance == 6.0
    assert r.strategy.cash == pytest.approx(1.0 - trade.cost * 1.001, abs=1e-15)


def test_paper_and_live_hold_what_the_sim_holds_after_the_same_buy(lx, start):
    """The same buy in paper and in live (the exchange's own accounting): 5.994 XRP, free,
    and the cash moved by the cost alone."""
    run = start(lx, BuySix)
    s = run.strategy
    wait_for(lambda: s.decisions)
    (trade,) = s.decisions
    assert isinstance(trade, Trade) and trade.fee_currency == "XRP"
    wait_for(lambda: run.state()["assets"][SYM]["balance"] > 0)
    state = run.state()
    assert state["assets"][SYM]["balance"] == pytest.approx(5.994, abs=1e-12)
    assert state["cash"] == pytest.approx(1.0 - trade.cost, abs=1e-12)
    if start.mode == "live":
        assert wait_for(lambda: run.reconcile() == [])
