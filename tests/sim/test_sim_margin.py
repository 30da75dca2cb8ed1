import pytest

from planarpy import call
from planarpy.modes.sim import SimConfig

from simkit import PERP, flat, run

SYM = PERP.symbol
NO_CAP = SimConfig(slippage=0.0, volume_cap=False)


def test_long_with_leverage_is_liquidated_at_the_liquidation_price():
    """A 10x long from 100 is liquidated when a low reaches (1000-100)/(10*0.995)."""
    rows = flat(8)
    rows[4] = (100.0, 100.0, 90.0, 95.0, 1e6)
    events = []
    script = {
        0: lambda s: call(s, "update_leverage", SYM, 10),
        1: lambda s: call(s, "market_order", SYM, 10.0, side="buy", pos="long"),
    }
    r = run(script, rows, market=PERP, on_position_close=lambda s, ai, p: events.append(p.side))
    s = r.strategy
    open_trade, liq = s.trades
    assert open_trade.price == 100.0 and open_trade.leverage == 10.0
    assert liq.price == pytest.approx(900 / 9.95)
    assert s.cash == pytest.approx(1000 - 100 - 1000 * 0.0004)  # the margin is gone
    assert not s.asset(SYM).open_position() and events == ["long"]
    assert r.final_equity == pytest.approx(s.cash)


def test_short_is_liquidated_on_the_high():
    """A 5x short from 100 is liquidated when a high reaches (1000+200)/(10*1.005)."""
    rows = flat(8)
    rows[3] = (100.0, 125.0, 100.0, 110.0, 1e6)
    script = {0: lambda s: call(s, "update_leverage", SYM, 5),
              1: lambda s: call(s, "market_order", SYM, 10.0, side="sell", pos="short")}
    r = run(script, rows, market=PERP)
    assert r.trades[-1].price == pytest.approx(1200 / 10.05)
    assert r.strategy.cash == pytest.approx(1000 - 200 - 0.4)


def test_short_profit_and_close_position():
    """close_position buys back a short with a reduce-only market order and books the profit."""
    rows = [(100.0 - k, 100.5 - k, 99.5 - k, 100.0 - k, 1e6) for k in range(8)]
    opened = []
    script = {0: lambda s: call(s, "update_leverage", SYM, 2),
              1: lambda s: call(s, "market_order", SYM, 5.0, side="sell", pos="short"),
              4: lambda s: call(s, "close_position", SYM)}
    r = run(script, rows, market=PERP, on_position_open=lambda s, ai, p: opened.append(p.amount))
    s = r.strategy
    assert opened == [5.0] and s.results[4] is True
    sell, buy = s.trades
    assert (sell.price, buy.price) == (98.0, 95.0)  # the opens of candles 2 and 5
    fees = (5 * 98 + 5 * 95) * 0.0004
    assert s.cash == pytest.approx(1000 + 5 * 3 - fees)
    assert not s.asset(SYM).open_position()


def test_leverage_cannot_change_with_an_open_position():
    """update_leverage returns False with a reason while a position is open."""
    script = {1: lambda s: call(s, "market_order", SYM, 1.0, side="buy"),
              2: lambda s: call(s, "update_leverage", SYM, 3)}
    r = run(script, flat(5), market=PERP)
    assert r.strategy.results[2] is False
    assert "while a position is open" in r.strategy.errors[0]


def test_margin_needs_cash_for_margin_only():
    """A 10x long of notional 5000 needs 500 margin plus fee, not 5000."""
    script = {0: lambda s: call(s, "update_leverage", SYM, 10),
              1: lambda s: call(s, "market_order", SYM, 50.0, side="buy")}
    r = run(script, flat(5), market=PERP)
    assert r.trades and r.strategy.cash == pytest.approx(1000 - 500 - 2.0)


def test_spot_has_no_short():
    """A short on a spot market is a programming error."""
    with pytest.raises(ValueError, match="spot market: it has no short positions"):
        run({1: lambda s: call(s, "market_order", "TST/USD", 1.0, side="sell", pos="short")},
            flat(4))
