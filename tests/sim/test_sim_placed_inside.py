"""Orders a strategy places while a candle is matched (from `on_trade`, or another callback
of a fill inside the candle) are taken as placed at that candle's close: the sim cannot
know where inside the candle the fill came, so they never see that candle's prices. They
rest through the tick on that candle (which may cancel them) and first execute against
the next candle, as orders that tick placed would. The same whether or not a conditional
order is on the asset."""

import pytest

from planarpy import RiskRules, TradingState, call, missing

from simkit import run

SYM = "TST/USD"


def rows(next_open: float):
    """Candle 2 opens at 100 and dips to 95 (the limit buy at 97 placed at tick 0 fills
    there); candle 3 opens at `next_open`; candle 4 reaches 100."""
    return [(100, 100, 100, 100, 1e6)] * 2 + [
        (100, 100, 95, 96, 1e6), (next_open, next_open, 95, 96, 1e6),
        (96, 100, 96, 99, 1e6), (99, 99, 99, 99, 1e6)]


def script(stop: bool):
    """Buy 1 at 97; with `stop`, a buy stop far above is also on the asset."""
    def place(s):
        call(s, "limit_order", SYM, 1.0, 97.0, side="buy")
        if stop:
            call(s, "stop_order", SYM, 1.0, 200.0, side="buy")
    return {0: place}


def on_buy(action):
    def on_trade(self, ai, trade):
        if trade.side.value == "buy":
            self.placed = action(self)
    return on_trade


def fills(r):
    s = r.strategy
    return [(t.side.value, t.price, t.taker, s.seen.index(next(x for x in s.seen
                                                               if x[1] == t.date)))
            for t in s.trades]


@pytest.mark.parametrize("stop", [False, True], ids=["plain", "with-a-stop"])
def test_a_limit_placed_by_a_fill_never_fills_at_its_candles_past_open(stop):
    """The sell at 99.5 placed when the buy fills inside candle 2 (which opened at 100)
    rests from candle 3: it fills at 99.5 when candle 4 reaches it, not at 100."""
    r = run(script(stop), rows(96), on_trade=on_buy(
        lambda s: call(s, "limit_order", SYM, 1.0, 99.5, side="sell")))
    assert r.strategy.placed is missing
    # (side, price, taker, the tick whose clock the fill has: matched in candle tick + 1)
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 99.5, False, 3)]


@pytest.mark.parametrize("stop", [False, True], ids=["plain", "with-a-stop"])
def test_a_limit_placed_by_a_fill_takes_the_next_open_that_crosses_it(stop):
    """As a limit placed at candle 2's close: candle 3's open 101 crosses it, so it fills
    there (a taker), as at any tick."""
    r = run(script(stop), rows(101), on_trade=on_buy(
        lambda s: call(s, "limit_order", SYM, 1.0, 99.5, side="sell")))
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 101.0, True, 2)]


@pytest.mark.parametrize("stop", [False, True], ids=["plain", "with-a-stop"])
def test_a_market_order_placed_by_a_fill_fills_at_the_next_open(stop):
    r = run(script(stop), rows(98), on_trade=on_buy(
        lambda s: call(s, "market_order", SYM, 1.0, side="sell")))
    s = r.strategy
    assert s.placed is missing  # it executes at the next open, after the call returned
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 98.0, True, 2)]
    left = [o.type.value for o in s.asset(SYM).orders.values()]
    assert left == (["stop_market"] if stop else [])


def test_a_market_order_placed_by_a_fill_with_its_date_fills_at_the_next_open():
    """`date=` the time now (the candle's close before the one matched) is checked when the
    order is placed, not again when it executes a candle later (before: a ValueError that
    ended the backtest)."""
    r = run(script(False), rows(98), on_trade=on_buy(
        lambda s: call(s, "market_order", SYM, 1.0, side="sell",
                       date=s._engine.clock.now())))
    assert r.strategy.placed is missing
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 98.0, True, 2)]


def look(seen):
    """A tick that keeps what it sees of the asset: its balance and open orders."""
    def tick(s):
        ai = s.asset(SYM)
        seen[s.i] = (ai.balance, [o.type.value for o in ai.orders.values() if o.is_open])
    return tick


def test_the_tick_on_the_candle_sees_the_order_open():
    """The tick on candle 2 sees the buy filled and the sell its fill placed still open,
    as it would see an order it placed itself; the sell fills at the next open."""
    seen = {}
    r = run({**script(False), 2: look(seen)}, rows(101), on_trade=on_buy(
        lambda s: call(s, "market_order", SYM, 1.0, side="sell")))
    assert seen == {2: (1.0, ["market"])}
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 101.0, True, 2)]


@pytest.mark.parametrize("kind", ["market", "limit"])
def test_the_tick_on_the_candle_may_cancel_the_order(kind):
    """Cancelled at the tick on candle 2, the order never executes at the next open."""
    def sell(s):
        if kind == "market":
            return call(s, "market_order", SYM, 1.0, side="sell")
        return call(s, "limit_order", SYM, 1.0, 99.5, side="sell")

    r = run({**script(False), 2: lambda s: call(s, "cancel_orders", SYM)}, rows(101),
            on_trade=on_buy(sell))
    s = r.strategy
    assert s.results[2] is True and fills(r) == [("buy", 97.0, False, 1)]
    assert s.asset(SYM).balance == 1.0 and not s.asset(SYM).orders and s.errors == []


def test_a_brackets_take_profit_rests_through_the_tick_on_the_entrys_candle():
    """The entry fills inside candle 2 and releases the take-profit: the tick on candle 2
    sees the holding and the take-profit open; candle 3's open 101 crosses it, so it fills
    there as a taker, as a limit placed at that tick would."""
    seen = {}
    place = {0: lambda s: call(s, "bracket_order", SYM, 1.0, price=97.0, side="buy",
                               take_profit=99.5), 2: look(seen)}
    r = run(place, rows(101))
    assert seen == {2: (1.0, ["limit"])}
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 101.0, True, 2)]


def test_the_loss_breakers_at_the_candles_close_do_not_count_the_next_open():
    """The sell placed inside candle 2 fills at candle 3's open 50: the drawdown it makes is
    measured at candle 3's close, not at candle 2's (whose close 96 loses about 1)."""
    seen = {}

    def state(s):
        seen[s.i] = s.state.risk.trading

    data = [(100, 100, 100, 100, 1e6)] * 2 + [(100, 100, 95, 96, 1e6), (50, 50, 50, 50, 1e6),
                                              (50, 50, 50, 50, 1e6)]
    r = run({**script(False), 2: state, 3: state}, data, risk=RiskRules(max_drawdown=0.03),
            on_trade=on_buy(lambda s: call(s, "market_order", SYM, 1.0, side="sell")))
    s = r.strategy
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 50.0, True, 2)]
    assert seen == {2: TradingState.ACTIVE, 3: TradingState.HALTED}
    (halt,) = [e for e in s.risk_events if e.kind == "state_changed"]
    assert halt.rule == "max_drawdown" and halt.time == s.seen[3][1]


def test_an_order_placed_inside_the_candle_before_the_last_fills_at_the_last_open():
    """The last candle is only matched (no tick), but its open still executes what the
    candle before placed."""
    r = run(script(False), rows(98)[:4], on_trade=on_buy(
        lambda s: call(s, "market_order", SYM, 1.0, side="sell")))
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 98.0, True, 2)]
    assert not r.strategy.asset(SYM).orders


def test_an_order_placed_inside_the_last_candle_stays_open():
    """After the last candle there is no next open: the order stays open, unfilled."""
    data = rows(96)[:3]  # the buy fills inside the last candle
    r = run(script(False), data, on_trade=on_buy(
        lambda s: call(s, "market_order", SYM, 1.0, side="sell")))
    s = r.strategy
    assert fills(r) == [("buy", 97.0, False, 1)]
    assert [o.type.value for o in s.asset(SYM).orders.values()] == ["market"]


def test_an_ioc_placed_by_a_fill_is_decided_at_the_next_open():
    """Immediate-or-cancel means at the next open here too: candle 3 opens at 96, below
    the sell's 99.5, so it is cancelled, says why, and holds nothing."""
    r = run(script(False), rows(96), on_trade=on_buy(
        lambda s: call(s, "limit_order", SYM, 1.0, 99.5, side="sell", tif="IOC")))
    s = r.strategy
    assert s.placed is missing and fills(r) == [("buy", 97.0, False, 1)]
    assert s.errors == ["immediate-or-cancel order at 99.5 cancelled: the price is 96"]
    assert not s.asset(SYM).orders and s.asset(SYM).committed == 0


@pytest.mark.parametrize("stop", [False, True], ids=["plain", "with-a-stop"])
def test_a_trailing_stop_placed_by_a_fill_follows_from_the_next_candle(stop):
    """Armed at the last close (100: stop 95), it does not trail the high 104 of the
    candle whose fill placed it (the high may have come before the fill): candle 3's low
    fires it at 95, not at the open 97 a stop trailed to 98.8 would have gapped to."""
    data = [(100, 100, 100, 100, 1e6)] * 2 + [(100, 104, 95, 96, 1e6), (97, 97, 94, 95, 1e6),
                                              (95, 95, 95, 95, 1e6)]
    r = run(script(stop), data, on_trade=on_buy(
        lambda s: call(s, "trailing_stop_order", SYM, 1.0, percent=0.05)))
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 95.0, True, 2)]
