"""close_position has one meaning (actions/pipeline.py), pinned here in a backtest."""

from planarpy import call, missing
from planarpy.modes.sim import SimConfig

from simkit import PERP, SPOT, flat, run

SYM, PSYM = SPOT.symbol, PERP.symbol


def test_spot_close_cancels_every_order_then_sells_what_was_bought():
    """A resting buy would undo the close: it is cancelled too; the holding is sold."""
    script = {1: lambda s: call(s, "market_order", SYM, 2.0),
              2: lambda s: call(s, "limit_order", SYM, 1.0, 90.0, side="buy"),
              3: lambda s: call(s, "limit_order", SYM, 1.0, 110.0, side="sell"),
              4: lambda s: call(s, "close_position", SYM)}
    r = run(script, flat(7))
    s = r.strategy
    assert s.results[2] is missing and s.results[3] is missing and s.results[4] is True
    ai = s.asset(SYM)
    assert ai.orders == {} and ai.balance == 0 and s.committed == 0
    assert [(t.side.value, t.amount) for t in r.trades] == [("buy", 2.0), ("sell", 2.0)]


def test_spot_close_with_nothing_held_is_true_and_still_cancels():
    r = run({1: lambda s: call(s, "limit_order", SYM, 1.0, 90.0, side="buy"),
             2: lambda s: call(s, "close_position")}, flat(5))
    assert r.strategy.results[2] is True and r.strategy.asset(SYM).orders == {}
    assert r.trades == []


def test_spot_close_is_false_when_the_volume_cap_leaves_some():
    """A close that the candle's volume fills only in part says so (False)."""
    rows = flat(3, volume=1e6) + [(100.0, 100.0, 100.0, 100.0, 50.0)] * 3
    script = {1: lambda s: call(s, "market_order", SYM, 5.0),
              3: lambda s: call(s, "close_position", SYM)}
    r = run(script, rows, config=SimConfig(slippage=0.0, volume_cap=True, seed=1))
    s = r.strategy
    assert s.results[3] is False and 0 < s.asset(SYM).balance < 5.0


def test_margin_close_with_another_side_named_does_nothing():
    """close_position(pos='short') on a long position leaves it and its orders alone."""
    script = {1: lambda s: call(s, "market_order", PSYM, 5.0, side="buy"),
              2: lambda s: call(s, "limit_order", PSYM, 1.0, 90.0, side="buy"),
              3: lambda s: call(s, "close_position", PSYM, pos="short"),
              4: lambda s: call(s, "close_position", PSYM, pos="long")}
    r = run(script, flat(7), market=PERP)
    s = r.strategy
    assert s.results[3] is True and s.results[4] is True
    ai = s.asset(PSYM)
    assert ai.open_position() is None and ai.orders == {}
    closing = r.trades[-1]
    assert (closing.side.value, closing.amount) == ("sell", 5.0)


def test_spot_close_leaves_dust_worth_less_than_the_minimum_cost():
    """What a partial sell leaves may be above the minimum amount but worth less than the
    minimum cost (0.05 at 10 is 0.5 USD, the minimum 1 USD): no order could sell it, so it
    is dust, and close_position is True. It sent a sell the market rules refused: False,
    an order error (the error-rate breaker counts it) at every call, and a loop that
    closes until True never ended."""
    script = {0: lambda s: call(s, "market_order", SYM, 1.05),
              1: lambda s: call(s, "market_order", SYM, 1.0, side="sell"),
              2: lambda s: call(s, "close_position", SYM),
              3: lambda s: call(s, "close_position")}
    r = run(script, [(10.0, 10.0, 10.0, 10.0, 1e6)] * 5)
    s = r.strategy
    assert s.results[2] is True and s.results[3] is True and s.errors == []
    assert abs(s.asset(SYM).balance - 0.05) < 1e-9 and len(r.trades) == 2


def test_margin_close_of_a_position_worth_less_than_the_minimum_cost():
    """A long opened at 60 (6 USD, the minimum 5) is worth 4 once the price is 40. A
    reduce-only order is exempt from the minimum cost (Binance USD-M's rule, and the local
    exchange's): close_position closes it. The gate refused it, so the position could
    not be closed at all, by close_position or by a reduce-only sell."""
    rows = [(p, p, p, p, 1e6) for p in (60.0, 60.0, 40.0, 40.0, 40.0, 40.0)]
    script = {0: lambda s: call(s, "market_order", PSYM, 0.1),
              3: lambda s: call(s, "close_position", PSYM)}
    r = run(script, rows, market=PERP)
    s = r.strategy
    assert s.results[3] is True and s.errors == []
    assert s.asset(PSYM).open_position() is None
    assert [(t.side.value, t.amount, t.price) for t in r.trades][-1] == ("sell", 0.1, 40.0)
    opening = run({0: lambda s: call(s, "market_order", PSYM, 0.1)}, rows[2:], market=PERP)
    assert opening.strategy.results[0] is None  # an order that opens still needs 5 USD
    assert opening.strategy.errors == ["order cost 4 USD is below the minimum 5 USD of "
                                       "TST/USD:USD"]
