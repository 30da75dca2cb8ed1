import attrs
import pytest

from planarpy import Strategy, backtest, call, missing
from planarpy.modes.sim import SimConfig

from simkit import PERP, candles, flat, run

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


def test_a_stop_above_the_liquidation_price_fires_before_the_liquidation():
    """Expected: a 10x long from 100 (liquidation price 900/9.95 = 90.45) with a
    reduce-only sell stop at 95 is closed by the stop at 95 when a candle opens at 100
    and falls to 85: a price falling from 100 passes 95 before it reaches 90.45, so the
    stop certainly fired first. Paper (runtime/triggers.on_prices before the liquidation
    check in paper/orders._on_public_trade) and the exchange (live) both do that.

    Why: `SimEngine._settle_candle` (modes/sim/engine.py) liquidates whatever position a
    candle's low reaches before it looks at any order, so the backtest loses the whole
    margin where the strategy's stop-loss would have lost 5%; it also contradicts the
    stated rule that a candle's fills go in price order (triggers.py)."""
    rows = flat(8)
    rows[3] = (100.0, 100.0, 85.0, 86.0, 1e6)
    script = {
        0: lambda s: call(s, "update_leverage", SYM, 10),
        1: lambda s: call(s, "market_order", SYM, 10.0, side="buy", pos="long"),
        2: lambda s: call(s, "stop_order", SYM, 10.0, 95.0, reduce_only=True),
    }
    r = run(script, rows, market=PERP)
    s = r.strategy
    assert s.results[2] is missing
    prices = [t.price for t in s.trades]
    assert prices == [100.0, 95.0], f"trades at {prices}: liquidated at "\
        f"{900 / 9.95:.2f} instead of stopped at 95"
    assert s.cash == pytest.approx(1000 - 50 - 1000 * 0.0004 - 950 * 0.0004)


def _protected(side: str, stop: float, crash: tuple[float, ...], also=None) -> object:
    """A 10x position of 10 from 100 on `side` with a reduce-only stop at `stop` (and the
    order `also` places), and a candle `crash` after it."""
    rows = flat(8)
    rows[3] = crash
    pos, exit_ = ("long", "sell") if side == "buy" else ("short", "buy")
    script = {
        0: lambda s: call(s, "update_leverage", SYM, 10),
        1: lambda s: call(s, "market_order", SYM, 10.0, side=side, pos=pos),
        2: lambda s: (call(s, "stop_order", SYM, 10.0, stop, side=exit_, pos=pos,
                           reduce_only=True), also and also(s)),
    }
    return run(script, rows, market=PERP)


def test_a_short_is_stopped_before_the_liquidation_its_candle_reaches_above():
    """The short side of the same rule: a 10x short from 100 (liquidation 1100/10.05 =
    109.45) with a buy stop at 105 is stopped at 105 by a candle rising from 100 to 115."""
    r = _protected("sell", 105.0, (100.0, 115.0, 100.0, 114.0, 1e6))
    assert [t.price for t in r.trades] == [100.0, 105.0]
    assert not r.strategy.asset(SYM).open_position()


def test_a_stop_beyond_the_liquidation_price_never_fires_first():
    """A stop at 88, below the liquidation price 90.45: the falling price liquidates the
    position first, which cancels the stop (it never fills)."""
    r = _protected("buy", 88.0, (100.0, 100.0, 85.0, 86.0, 1e6))
    assert [t.price for t in r.trades] == [100.0, pytest.approx(900 / 9.95)]
    assert not r.strategy.asset(SYM).orders
    assert r.strategy.cash == pytest.approx(1000 - 100 - 1000 * 0.0004)


def test_a_stop_gapped_through_with_the_liquidation_price_fills_at_the_open_first():
    """A gap: the candle opens at 88, beyond both the stop (95) and the liquidation price
    (90.45). The stop fires on the first trade and fills at the open, as in paper and on
    the local exchange (a trade fires the orders before the mark price liquidates), so
    the loss (120) exceeds the margin, as a gap through a stop costs on an exchange."""
    r = _protected("buy", 95.0, (88.0, 89.0, 85.0, 86.0, 1e6))
    assert [t.price for t in r.trades] == [100.0, 88.0]
    assert r.strategy.cash == pytest.approx(1000 - 120 - 1000 * 0.0004 - 880 * 0.0004)


def test_a_stop_the_open_gapped_through_above_the_liquidation_fills_at_the_open():
    """The open (93) passes the stop (95) but not the liquidation price (90.45): the stop
    fills at the open before the price falls further."""
    r = _protected("buy", 95.0, (93.0, 93.0, 85.0, 86.0, 1e6))
    assert [t.price for t in r.trades] == [100.0, 93.0]


def test_a_take_profit_on_the_other_side_does_not_fire_before_the_liquidation():
    """A reduce-only sell limit at 105 in a candle from 100 that reaches both 106 and the
    liquidation price: the sim cannot know the rise came first, so it liquidates (and the
    limit is cancelled with the position), conservative as a stop before a target."""
    r = _protected("buy", 80.0, (100.0, 106.0, 85.0, 86.0, 1e6),
                   lambda s: call(s, "limit_order", SYM, 10.0, 105.0, side="sell",
                                             reduce_only=True))
    assert [t.price for t in r.trades] == [100.0, pytest.approx(900 / 9.95)]
    assert not r.strategy.asset(SYM).orders


def test_a_buy_limit_met_on_the_way_down_adds_and_moves_the_liquidation_price():
    """A buy limit at 95 (10 more) lies between the open 100 and the liquidation price
    90.45: it fills on the way down and the doubled position's liquidation price (entry
    97.5, margin 195: (1950 - 195) / 19.9 = 88.19) is below the candle's low 89, so the
    position survives the candle."""
    r = _protected("buy", 80.0, (100.0, 100.0, 89.0, 90.0, 1e6),
                   lambda s: call(s, "limit_order", SYM, 10.0, 95.0, side="buy"))
    assert [t.price for t in r.trades] == [100.0, 95.0]
    pos = r.strategy.asset(SYM).open_position()
    assert pos.amount == pytest.approx(20.0)
    assert pos.liquidation_price == pytest.approx(1755 / 19.9)


def test_each_asset_races_its_own_liquidation():
    """Two 10x longs in one candle falling to 85: the one with a stop at 95 is stopped
    there, the one without is liquidated; isolated margins do not touch each other."""
    other = attrs.evolve(PERP, symbol="OTH/USD:USD", id="OTHUSDP", base="OTH")
    rows = flat(8)
    rows[3] = (100.0, 100.0, 85.0, 86.0, 1e6)

    class Two(Strategy):
        exchange, quote, timeframe, margin = "test", "USD", "1m", "isolated"
        universe = (SYM, other.symbol)
        initial_cash = 2000.0

        def tick(self, ts: int) -> None:
            if self.i == 0:
                for sym in self.universe:
                    call(self, "update_leverage", sym, 10)
            elif self.i == 1:
                for sym in self.universe:
                    call(self, "market_order", sym, 10.0, side="buy")
            elif self.i == 2:
                call(self, "stop_order", SYM, 10.0, 95.0, reduce_only=True)

    s = Two({SYM: PERP, other.symbol: other})
    backtest(s, data={SYM: candles(rows), other.symbol: candles(rows)},
             config=NO_CAP, settings={})
    by = {sym: [t.price for t in s.trades if t.symbol == sym] for sym in s.universe}
    assert by == {SYM: [100.0, 95.0], other.symbol: [100.0, pytest.approx(900 / 9.95)]}


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
