"""Placing an OCO pair in paper mode, by the same rules as the sim and live
(tests/sim/test_oco_placement.py): a limit leg the price now would fill is refused up
front; a second leg that cannot be placed cancels the first."""

from __future__ import annotations

import pytest

from planarpy import missing
from planarpy.core.orders import OrderType
from planarpy.core.risk import RiskRules
from planarpy.modes.paper import start_paper

from livekit import Watched, eventually  # Watched keeps its errors and risk events
from tapekit import STEP, SYM, step_until


@pytest.fixture
def paper(scripted):
    """start(risk, lx): a paper run against `lx` (by default, one replaying 0.0015)."""
    runs = []

    def start(risk=None, lx=None):
        lx = lx or scripted([0.0015] * 30)
        run = start_paper(Watched, exchange_url=lx.url, clock=lx.clock, settings={},
                          stall_after=2.0, cash=5.0, risk=risk, trace=None)
        runs.append(run)
        return run
    yield start
    for run in runs:
        if run.running:
            run.stop()


def test_paper_oco_whose_limit_the_price_now_fills_is_refused(paper):
    run = paper()
    assert run.call("oco_order", SYM, 500.0, side="buy", price=0.0015, stop=0.0016) is None
    assert run.strategy.errors == ["oco_order: the buy limit at 0.0015 would fill at once: "
                                   "the price 0.0015 is at or below it"]
    assert not run.strategy.assets[0].orders and not run.strategy.trades


@pytest.mark.parametrize("side,args,first,second", [
    ("sell", {"price": 0.00155, "stop": 0.00145}, "limit", "stop"),
    ("buy", {"price": 0.00145, "stop": 0.00155}, "stop", "limit")])
def test_paper_oco_whose_second_leg_the_throttle_refuses_leaves_no_leg(paper, side, args,
                                                                       first, second):
    run = paper(RiskRules(max_orders_per_minute=2))
    ai = run.strategy.assets[0]
    assert run.call("market_order", SYM, 600.0, side="buy")  # what the sell OCO sells
    assert run.call("oco_order", SYM, 500.0, side=side, **args) is None
    assert not ai.orders and ai.committed == 0 and run.strategy.state.committed == 0
    assert [e.rule for e in run.strategy.risk_events] == ["max_orders_per_minute"]
    told = run.strategy.errors[-1]
    assert told.startswith(f"oco_order: the {second} leg could not be placed; the {first} leg ")
    assert told.endswith(" was cancelled")


def test_paper_oco_within_the_throttle_places_both_legs(paper):
    run = paper(RiskRules(max_orders_per_minute=3))
    assert run.call("market_order", SYM, 600.0, side="buy")
    assert run.call("oco_order", SYM, 500.0, price=0.00155, stop=0.00145) is missing
    types = sorted(o.type.value for o in run.strategy.assets[0].orders.values())
    assert types == [OrderType.LIMIT.value, OrderType.STOP_MARKET.value]
    assert run.strategy.errors == []


def test_paper_bracket_entry_resting_partly_filled_gets_exits_for_each_part(scripted, paper):
    """A limit entry of 1000 at 0.00149 takes 400 from each trade at that price: each
    part gets its own exits (an OCO pair on what it left to sell, naming the entry)
    while the entry rests."""
    lx = scripted([0.0015, 0.00149, 0.0015, 0.00149] + [0.0015] * 30)
    run = paper(lx=lx)
    ai = run.strategy.assets[0]
    assert run.call("bracket_order", SYM, 1000.0, price=0.00149, stop_loss=0.0014,
                    take_profit=0.0016) is missing
    (entry,) = ai.orders.values()

    def exits():
        return sorted((o.type.value, o.amount) for o in ai.orders.values() if o is not entry)

    lx.step(2 * STEP)
    eventually(lambda: len(exits()) == 2)
    assert entry.is_open and entry.filled == 400
    first = exits()
    assert first == [("limit", first[0][1]), ("stop_market", first[0][1])]
    assert 399 <= first[0][1] <= 400  # what the fee left of the part
    lx.step(2 * STEP)
    eventually(lambda: len(exits()) == 4)
    assert entry.is_open and entry.filled == 800 and run.strategy.errors == []
    # every exit names its entry (Order.entry), as in the sim and live
    assert {o.entry for o in ai.orders.values() if o is not entry} == {entry.id}


def test_paper_bracket_part_too_small_for_an_exit_is_covered_by_the_next(paper, scripted):
    """As in the sim: orders must be worth 0.7 ETH; the first part (400 at 0.00149) is
    too small for an exit (0.56 at the stop), so it waits, and the next part's exits
    cover both parts."""
    lx = scripted([0.0015, 0.00149] + [0.0015] * 6 + [0.00149] + [0.0015] * 30,
                  min_cost=0.7)
    run = paper(None, lx)
    ai = run.strategy.assets[0]
    assert run.call("bracket_order", SYM, 1000.0, price=0.00149, stop_loss=0.0014,
                    take_profit=0.0016) is missing
    (entry,) = ai.orders.values()
    lx.step(2 * STEP)
    eventually(lambda: entry.filled == 400)
    first = entry.filled
    assert entry.legs.get("covered", 0.0) == 0.0 and len(ai.orders) == 1
    step_until(lx, lambda: len(ai.orders) == 3, 12)
    exits = sorted((o.type.value, o.amount) for o in ai.orders.values() if o is not entry)
    assert [t for t, _ in exits] == ["limit", "stop_market"]
    assert first < exits[0][1] == exits[1][1] == entry.legs["covered"] <= entry.filled
    assert run.strategy.errors == []
