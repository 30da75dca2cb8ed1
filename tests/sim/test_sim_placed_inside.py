"""Orders a strategy places while a candle is matched (from `on_trade`, or another callback
of a fill inside the candle) are taken as placed at that candle's close: the sim cannot
know where inside the candle the fill came, so they never see that candle's prices. The
same whether or not a conditional order is on the asset."""

import pytest

from planarpy import call, missing

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


def test_the_tick_after_the_candle_sees_the_order_executed():
    """The order executes at the candle's close, before the tick on it: that tick sees
    the sell filled at the next open, as it would see a market order it placed itself."""
    seen = {}

    def look(s):
        seen["balance"], seen["orders"] = s.asset(SYM).balance, dict(s.asset(SYM).orders)

    r = run({**script(False), 2: look}, rows(101), on_trade=on_buy(
        lambda s: call(s, "market_order", SYM, 1.0, side="sell")))
    assert fills(r) == [("buy", 97.0, False, 1), ("sell", 101.0, True, 2)]
    assert seen == {"balance": 0.0, "orders": {}}


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
