import random

import attrs
import pytest

from planarpy import OrderStatus, UnknownSymbol, call, missing
from planarpy.modes.sim import SimConfig
from planarpy.modes.sim.fills import volume_fill

from simkit import SPOT, flat, run

SYM = "TST/USD"
NO_CAP = SimConfig(slippage=0.0, volume_cap=False)
CAP = SimConfig(slippage=0.0, volume_cap=True, seed=7)


def ramp():
    """Candles whose next open is 100, 101, 102... with a 1-wide range around it."""
    return [(100.0 + k, 100.5 + k, 99.5 + k, 100.0 + k + 0.5, 1e6) for k in range(8)]


def test_market_buy_fills_at_next_open_as_taker():
    """A market buy at tick i fills at candle i+1's open with the taker fee."""
    r = run({1: lambda s: call(s, "market_order", SYM, 2.0, side="buy")}, ramp())
    (t,) = r.trades
    assert (t.price, t.amount, t.taker) == (102.0, 2.0, True)
    assert t.fee == pytest.approx(204 * 0.002)
    assert r.strategy.results[1] is t


def test_gtc_limit_rests_then_fills_at_its_price_as_maker():
    """A limit buy below the market returns missing, then fills at its price when reached."""
    rows = ramp()
    rows[4] = (104.0, 104.5, 98.0, 104.0, 1e6)  # candle 4 dips to 98
    r = run({1: lambda s: call(s, "limit_order", SYM, 1.0, 99.0, side="buy")}, rows)
    s = r.strategy
    assert s.results[1] is missing
    (t,) = r.trades
    assert (t.price, t.taker) == (99.0, False) and t.fee == pytest.approx(99 * 0.001)
    assert t.date == s.seen[3][1]  # matched in candle 4
    assert s.committed == 0


def test_marketable_limit_fills_at_the_better_open():
    """A limit buy above the next open fills at once at that open (favourable), as taker."""
    r = run({1: lambda s: call(s, "limit_order", SYM, 1.0, 110.0, side="buy")}, ramp())
    (t,) = r.trades
    assert (t.price, t.taker) == (102.0, True)


def test_post_only_refused_when_it_would_take():
    """A post-only order that crosses the next open is refused: None and an error."""
    r = run({1: lambda s: call(s, "limit_order", SYM, 1.0, 110.0, side="buy", tif="PO")}, ramp())
    s = r.strategy
    assert s.results[1] is None and not r.trades
    assert "post-only order at 110 would take liquidity at 102" in s.errors[0]


def test_post_only_rests_when_it_would_make():
    """A post-only order below the market rests like GTC."""
    r = run({1: lambda s: call(s, "limit_order", SYM, 1.0, 90.0, side="buy", tif="PO")}, ramp())
    assert r.strategy.results[1] is missing
    assert len(r.strategy.asset(SYM).orders) == 1


def test_ioc_not_marketable_is_cancelled():
    """An IOC order that the open does not reach returns None and leaves nothing open."""
    r = run({1: lambda s: call(s, "limit_order", SYM, 1.0, 90.0, side="buy", tif="IOC")}, ramp())
    s = r.strategy
    assert s.results[1] is None and not s.asset(SYM).orders and s.committed == 0
    assert "immediate-or-cancel order at 90 cancelled: the price is 102" in s.errors[0]


def test_ioc_keeps_the_partial_fill_and_cancels_the_rest():
    """IOC under the volume cap fills 1% of the last candle's volume and cancels the rest."""
    rows = [(100.0, 101.0, 99.0, 100.0, 90.0)] * 6  # volume 10x the amount: 1% of 90 fills
    r = run({1: lambda s: call(s, "limit_order", SYM, 9.0, 101.0, side="buy", tif="IOC")},
            rows, config=CAP)
    (t,) = r.trades
    assert t.amount == 0.9
    s = r.strategy
    assert s.results[1] is t and not s.asset(SYM).orders and s.committed == 0


def test_fok_all_or_nothing():
    """FOK fills whole when the volume allows, and is killed (None, no change) when not."""
    thin = [(100.0, 101.0, 99.0, 100.0, 90.0)] * 6
    r = run({1: lambda s: call(s, "limit_order", SYM, 9.0, 101.0, side="buy", tif="FOK")},
            thin, config=CAP)
    assert r.strategy.results[1] is None and not r.trades and r.strategy.cash == 1000.0
    assert "fill-or-kill order at 101 killed: 0.9 of 9 available" in r.strategy.errors[0]
    deep = [(100.0, 101.0, 99.0, 100.0, 1e6)] * 6
    r = run({1: lambda s: call(s, "limit_order", SYM, 9.0, 101.0, side="buy", tif="FOK")},
            deep, config=CAP)
    assert r.trades[0].amount == 9.0


def test_limit_partial_fills_over_several_candles():
    """A resting order larger than the volume allows fills 1% of each candle's volume."""
    rows = [(100.0, 100.5, 99.5, 100.0, 50.0)] * 8  # at most 1% of 50 per candle
    r = run({0: lambda s: call(s, "limit_order", SYM, 10.0, 99.5, side="buy")}, rows, config=CAP)
    assert [t.amount for t in r.trades] == [0.5] * 7  # candles 1 to 7
    s = r.strategy
    (order,) = s.asset(SYM).orders.values()
    assert order.filled == pytest.approx(3.5) and s.asset(SYM).balance == pytest.approx(3.5)
    assert s.committed == pytest.approx(6.5 * 99.5 * 1.002)


def test_market_order_in_a_candle_with_no_volume_fails():
    """After a candle with no trades, a market order cannot fill: None with a reason."""
    rows = flat(6)
    rows[1] = (100.0, 100.0, 100.0, 100.0, 0.0)
    r = run({1: lambda s: call(s, "market_order", SYM, 1.0, side="buy")}, rows, config=CAP)
    assert r.strategy.results[1] is None
    assert "no liquidity: the last candle traded 0 TST" in r.strategy.errors[0]


def test_cancel_orders_releases_commitments():
    """cancel_orders closes open orders on a side and frees their cash."""
    script = {
        0: lambda s: (call(s, "limit_order", SYM, 1.0, 90.0, side="buy"),
                      call(s, "limit_order", SYM, 1.0, 91.0, side="buy")),
        1: lambda s: call(s, "cancel_orders", SYM, "buy"),
        2: lambda s: call(s, "cancel_orders", SYM, ids=["sim-99"]),
    }
    r = run(script, flat(6))
    s = r.strategy
    assert s.results[1] is True and s.results[2] is False
    assert s.committed == 0 and not s.asset(SYM).orders
    assert "no open order with id sim-99" in s.errors[0]


@pytest.mark.parametrize("action, message", [
    (lambda s: call(s, "market_order", SYM, 0.005, side="buy"), "below the minimum 0.01"),
    (lambda s: call(s, "market_order", SYM, 1.234, side="buy"), "more decimals than TST/USD allows"),
    (lambda s: call(s, "limit_order", SYM, 1.0, 99.999, side="buy"), "tick 0.01"),
    (lambda s: call(s, "market_order", SYM, 0.01, side="buy"), "order cost 1 USD is below the minimum 1.5 USD"),
    (lambda s: call(s, "market_order", SYM, 20.0, side="buy"), "not enough cash: need 2004"),
    (lambda s: call(s, "market_order", SYM, 1.0, side="sell"), "not enough TST: need 1, free 0"),
])
def test_bad_orders_return_none_with_an_order_error(action, message):
    """Each trading error returns None and reaches on_order_error; nothing changes."""
    r = run({1: action}, flat(6), market=attrs.evolve(SPOT, min_cost=1.5))
    s = r.strategy
    assert s.results[1] is None and not r.trades
    assert message in s.errors[0]
    assert s.cash == 1000.0 and s.committed == 0


def test_unknown_symbol_raises_at_once():
    """An order for a symbol outside the universe is a programming error: it raises."""
    with pytest.raises(UnknownSymbol, match="'XYZ/USD' is not in Scripted's universe"):
        run({1: lambda s: call(s, "market_order", "XYZ/USD", 1.0)}, flat(4))


def test_bad_argument_values_raise():
    """A misspelt side or time in force raises naming the allowed values."""
    with pytest.raises(ValueError, match="side must be 'buy' or 'sell'"):
        run({1: lambda s: call(s, "market_order", SYM, 1.0, side="long")}, flat(4))
    with pytest.raises(ValueError, match="tif must be one of GTC, IOC, FOK, PO"):
        run({1: lambda s: call(s, "limit_order", SYM, 1.0, 99.0, tif="GTD")}, flat(4))


def test_volume_fill_rule():
    """Whole above 100x; probability log10(ratio)-1 between 10x and 100x; else 1% of volume."""
    rng = random.Random(1)
    assert volume_fill(1.0, 100.0, rng) == 1.0
    assert volume_fill(10.0, 50.0, rng) == 0.5
    whole = sum(volume_fill(1.0, 10 ** 1.5, rng) == 1.0 for _ in range(4000))
    assert 1800 < whole < 2200  # p = 0.5
    assert volume_fill(1.0, 0.0, rng) == 0.0


def test_order_status_after_fill():
    """A filled order is closed and no longer among the open orders."""
    r = run({1: lambda s: call(s, "market_order", SYM, 1.0)}, flat(4))
    (t,) = r.trades
    assert not r.strategy.asset(SYM).orders
    assert OrderStatus.CLOSED.value == "closed"


@pytest.mark.parametrize("amount", [0.1 + 0.2, 0.29999999999999993])  # 0.3 within an ulp
@pytest.mark.parametrize("kind", ["market_order", "limit_order"])
def test_a_whole_fill_under_the_volume_cap_is_the_amount_ordered_to_the_bit(kind, amount):
    """An amount a float ulp off the step (as `0.1 + 0.2` is) passes the market rules; a
    fill of all of it is that amount, neither rounded up past it (more than was ordered
    and checked for funds) nor down (a dust rest cancelled as if the cap had bitten)."""
    extra = {"price": 103.0} if kind == "limit_order" else {}
    closed = []

    class Rec:
        def record(self, kind, payload, symbol=None, ts=None):
            if kind == "order_closed":
                closed.append(payload)
    r = run({1: lambda s: call(s, kind, SYM, amount, side="buy", **extra)}, ramp(), config=CAP,
            recorder=Rec())
    (t,) = r.trades
    assert t.amount == amount and closed == []
