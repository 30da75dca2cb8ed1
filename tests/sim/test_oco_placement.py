"""Placing an OCO pair (and a bracket's exits) in the sim: both legs or neither.

A limit leg the price now would fill is refused up front (as Binance refuses such an
OCO); a leg that cannot be placed after the other was cancels that one (a bracket's
exits keep it); a fill of the first leg before the second is placed cancels the second,
as any fill of a leg does. The same code places them in paper and live
(tests/paper/test_paper_oco_placement.py, tests/live/test_live_oco_placement.py).
"""

import attrs
import pytest

from planarpy import call, missing
from planarpy.core.risk import RiskRules
from planarpy.modes.sim import SimConfig

from simkit import SPOT, run

SYM = "TST/USD"
FLAT = [(100.0, 101.0, 99.0, 100.0, 1e6)] * 6


def buy_then(action):
    """Buy 2 at tick 0 (fills at the open of candle 1, 100), then `action` at tick 1."""
    return {0: lambda s: call(s, "market_order", SYM, 2.0, side="buy"), 1: action}


def open_orders(s):
    return sorted((o.type.value, o.side.value, o.amount) for o in s.asset(SYM).orders.values())


@pytest.mark.parametrize("side,price,stop,where", [("sell", 99.5, 95.0, "above"),
                                                   ("buy", 100.0, 105.0, "below")])
def test_an_oco_whose_limit_the_price_now_fills_is_refused(side, price, stop, where):
    r = run(buy_then(lambda s: call(s, "oco_order", SYM, 1.0, side=side, price=price,
                                    stop=stop)), FLAT)
    s = r.strategy
    assert s.results[1] is None and open_orders(s) == [] and len(s.trades) == 1
    assert s.errors == [f"oco_order: the {side} limit at {price:g} would fill at once: the "
                        f"price 100 is at or {where} it"]


@pytest.mark.parametrize("side,first,second", [("sell", "limit", "stop"),
                                               ("buy", "stop", "limit")])
def test_an_oco_whose_second_leg_the_throttle_refuses_leaves_no_leg(side, first, second):
    """Two orders a minute: a market buy and the first leg; the second leg is refused,
    the first cancelled, the call answers None and the strategy is told why."""
    args = {"price": 104.0, "stop": 95.0} if side == "sell" else {"price": 95.0, "stop": 104.0}
    seen = {}

    def buy_and_oco(s):
        assert call(s, "market_order", SYM, 2.0, side="buy")
        out = call(s, "oco_order", SYM, 1.0, side=side, **args)
        seen["orders"], seen["committed"] = open_orders(s), (s.committed, s.asset(SYM).committed)
        return out

    r = run({1: buy_and_oco}, FLAT, risk=RiskRules(max_orders_per_minute=2))
    s = r.strategy
    assert s.results[1] is None and seen == {"orders": [], "committed": (0.0, 0.0)}
    assert [e.rule for e in s.risk_events] == ["max_orders_per_minute"]
    assert s.errors[-1].startswith(f"oco_order: the {second} leg could not be placed; the "
                                   f"{first} leg ")
    assert s.errors[-1].endswith(" was cancelled")
    assert len(s.trades) == 1  # nothing but the buy


def test_a_leg_refused_is_counted_once_by_the_error_breaker():
    """What became of an OCO pair whose leg was refused is told (on_order_error), but
    it is no second error: a leg denied by a risk rule is no error at all (it counted as
    one toward the error-rate breaker: a throttled strategy could halt itself); a leg
    the exchange refuses is one error, not two (tests/live/test_live_oco_placement.py)."""
    def oco(s):
        assert call(s, "market_order", SYM, 2.0, side="buy")
        return call(s, "oco_order", SYM, 1.0, side="sell", price=104.0, stop=95.0)

    r = run({1: oco}, FLAT, risk=RiskRules(max_orders_per_minute=2, max_errors_per_minute=1))
    s = r.strategy
    assert s.results[1] is None and s.errors[-1].endswith(" was cancelled")
    assert [e.rule for e in s.risk_events] == ["max_orders_per_minute"]
    assert s.state.risk.trading.value == "active" and list(s.state.risk.errors) == []



def test_an_oco_first_leg_partly_filled_on_placing_cancels_the_other_leg():
    """Candle 2 opens at 105, above the sell limit at 104 that the close 100 left resting:
    the limit leg takes what candle 1's volume allows (0.3) at once. That fill cancels the
    stop leg (the first fill of either leg does), so it is never placed; the rest of the
    limit rests and fills at 104 in candle 3."""
    rows = [FLAT[0], (100.0, 101.0, 99.0, 100.0, 30.0), (105.0, 106.0, 104.0, 105.0, 1e6),
            (105.0, 106.0, 80.0, 81.0, 1e6), FLAT[0]]
    seen = {}

    def oco(s):
        out = call(s, "oco_order", SYM, 2.0, price=104.0, stop=95.0)
        seen["orders"] = [(o.type.value, o.filled, o.group == o.id)
                          for o in s.asset(SYM).orders.values()]
        return out

    r = run(buy_then(oco), rows, config=SimConfig(slippage=0.0, volume_cap=True))
    s = r.strategy
    assert s.results[1] is missing and seen["orders"] == [("limit", 0.3, True)]
    assert [(t.side.value, t.price, t.amount) for t in s.trades[1:]] == [
        ("sell", 105.0, 0.3), ("sell", 104.0, 1.7)]  # the crash to 80 found no stop
    assert s.errors == [] and not s.asset(SYM).orders and s.asset(SYM).committed == 0


def test_a_bracket_entry_resting_partly_filled_is_protected_part_by_part():
    """A limit entry of 2 at 96.5 fills 0.15 a candle (1% of volume 15): each part gets
    its own exits (an OCO pair for 0.15) as it fills, before the entry is done; the stop
    fires for each part."""
    thin = (97.0, 98.0, 96.0, 97.0, 15.0)
    rows = [FLAT[0], thin, thin, (97.0, 98.0, 90.0, 91.0, 1e6), FLAT[0]]
    seen = {}

    def look(i):
        def at(s):
            seen[i] = open_orders(s)
        return at

    script = {0: lambda s: call(s, "bracket_order", SYM, 2.0, price=96.5, stop_loss=92.0,
                                take_profit=110.0),
              1: look(1), 2: look(2)}
    r = run(script, rows, config=SimConfig(slippage=0.0, volume_cap=True))
    s = r.strategy
    assert seen[1] == [("limit", "buy", 2.0), ("limit", "sell", 0.15),
                       ("stop_market", "sell", 0.15)]
    assert seen[2] == [("limit", "buy", 2.0), ("limit", "sell", 0.15), ("limit", "sell", 0.15),
                       ("stop_market", "sell", 0.15), ("stop_market", "sell", 0.15)]
    sold = [t for t in s.trades if t.side.value == "sell"]
    assert [(t.price, t.amount) for t in sold] == [(92.0, 0.15), (92.0, 0.15)]
    # the rest (1.7, filled in candle 3, below both parts' stops) has its own pair
    assert open_orders(s) == [("limit", "sell", 1.7), ("stop_market", "sell", 1.7)]
    assert s.errors == []


def test_a_bracket_part_too_small_for_an_exit_is_covered_by_the_next():
    """Orders must be worth 20 USD: a part of 0.15 is too small for an exit (16.5 at the
    target, 13.8 at the stop), so it waits; the next part's exits cover both parts (0.3),
    and the third part, too small again, waits for the next. (An exit refused outright
    is covered by the next part alike: tests/live/test_live_oco_placement.py.)"""
    thin = (97.0, 98.0, 96.0, 97.0, 15.0)
    seen = {}

    def look(i):
        def at(s):
            entry = next(o for o in s.asset(SYM).orders.values() if o.legs)
            seen[i] = (open_orders(s), round(entry.legs.get("covered", 0.0), 9))
        return at

    script = {0: lambda s: call(s, "bracket_order", SYM, 2.0, price=96.5, stop_loss=92.0,
                                take_profit=110.0), 1: look(1), 2: look(2), 3: look(3)}
    r = run(script, [FLAT[0], thin, thin, thin, FLAT[0]], attrs.evolve(SPOT, min_cost=20.0),
            config=SimConfig(slippage=0.0, volume_cap=True))
    assert seen[1] == ([("limit", "buy", 2.0)], 0.0)
    pair = [("limit", "buy", 2.0), ("limit", "sell", 0.3), ("stop_market", "sell", 0.3)]
    assert seen[2] == (pair, 0.3)
    assert seen[3] == (pair, 0.3)
    assert r.strategy.errors == []  # too small to place is no error: it waits


@pytest.mark.parametrize("exits,types", [
    ({"stop_loss": 95.0, "take_profit": 110.0}, ["limit", "stop_market"]),
    ({"stop_loss": 95.0}, ["stop_market"]),
    ({"take_profit": 110.0}, ["limit"])])
def test_a_brackets_exits_name_their_entry_in_the_trace_too(exits, types):
    """Every exit a bracket places names its entry (Order.entry), an OCO pair's legs and
    a lone exit alike, and its order payload carries it; other orders name none, and a
    payload of an older trace (no `entry`) still reads."""
    from planarpy.core.apply import order_from_payload, order_payload
    seen = {}

    def look(s):
        seen["orders"] = list(s.asset(SYM).orders.values())

    r = run({0: lambda s: call(s, "bracket_order", SYM, 2.0, side="buy", **exits),
             2: look}, FLAT)
    (buy,) = r.strategy.trades
    orders = seen["orders"]
    assert sorted(o.type.value for o in orders) == types
    assert {o.entry for o in orders} == {buy.order_id}
    for o in orders:
        payload = order_payload(o)
        assert payload["entry"] == buy.order_id and order_from_payload(payload).entry == o.entry
        older = {k: v for k, v in payload.items() if k != "entry"}
        assert order_from_payload(older).entry == ""
    assert "entry" not in order_payload(attrs.evolve(orders[0], entry=""))


def test_a_done_entrys_exits_refused_are_recorded_as_covering_nothing():
    """A market entry of 0.3 is done at once; its stop-loss at 60 (18 USD) is below the
    market's minimum of 20 and refused. The trace says the exits cover 0.3, then nothing
    again: a restart (resume.finish_exits) must not take the refused exit for one a
    crash lost."""
    from tapekit import Events
    trace = Events()
    r = run({0: lambda s: call(s, "bracket_order", SYM, 0.3, side="buy", stop_loss=60.0)},
            FLAT, attrs.evolve(SPOT, min_cost=20.0), recorder=trace)
    (buy,) = r.strategy.trades
    assert [(p["id"], p["covered"]) for p in trace.of("legs_covered")] == [
        (buy.order_id, 0.3), (buy.order_id, 0.0)]
    assert len(r.strategy.errors) == 1 and not r.strategy.asset(SYM).orders
