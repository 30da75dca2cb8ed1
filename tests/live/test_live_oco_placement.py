"""Placing an OCO pair and a bracket's exits in live spot, against the local exchange:
which leg goes where (the stop leg is the engine's, whichever leg goes first), and what
is left when a leg cannot be placed (neither leg)."""

from __future__ import annotations

import threading

import pytest

from planarpy import Side, missing
from planarpy.core.orders import OrderType
from planarpy.core.risk import RiskRules

from livekit import Watched, eventually, live, never, raw_client, replayed
from tapekit import STEP, SYM, T0, Events, step_until


def on_exchange(lx):
    """The open orders the exchange holds, by client id."""
    return {o["info"]["clientOrderId"]: o for o in raw_client(lx).fetch_open_orders(SYM)}


def legs(run):
    """(limit, stop) of the one OCO pair open."""
    by_type = {o.type: o for o in run.strategy.assets[0].orders.values()}
    stop = next(o for t, o in by_type.items() if t is not OrderType.LIMIT)
    return by_type[OrderType.LIMIT], stop


@pytest.mark.parametrize("side,args", [
    ("sell", {"price": 0.00155, "stop": 0.00145}),
    # a buy's stop needs more than its limit: the stop leg is placed first
    ("buy", {"price": 0.00145, "stop": 0.00155}),
    # a stop-limit below the limit: the limit leg first
    ("buy", {"price": 0.00145, "stop": 0.00155, "stop_limit": 0.0014}),
])
def test_only_the_limit_leg_of_an_oco_is_on_the_exchange_whichever_leg_goes_first(
        scripted, side, args):
    lx = scripted([0.0015] * 30)
    with live(lx) as run:
        assert run.call("oco_order", SYM, 500.0, side=side, **args) is missing
        limit, stop = legs(run)
        assert stop.route == "emulated" and limit.group == stop.group
        assert list(on_exchange(lx)) == [limit.id]
        assert run.strategy.errors == []


def test_a_buy_oco_stop_fires_cancels_the_limit_on_the_exchange_and_buys_once(scripted):
    lx = scripted([0.0015, 0.00152, 0.00156] + [0.00156] * 30)
    with live(lx) as run:
        assert run.call("oco_order", SYM, 500.0, side="buy", price=0.00145,
                        stop=0.00155) is missing
        limit, stop = legs(run)
        step_until(lx, lambda: [t for t in run.strategy.fills if t.side is Side.BUY])
        eventually(lambda: not run.strategy.assets[0].orders)
        fills = run.strategy.fills
        assert {t.order_id for t in fills} == {stop.id} and sum(t.amount for t in fills) == 500
        assert on_exchange(lx) == {} and limit.status.value == "canceled"


def test_a_sell_brackets_exits_hold_the_stop_in_the_engine(scripted):
    """A market sell entry on spot: its exits are a buy OCO (the stop above, placed
    first); only the take-profit limit rests on the exchange."""
    lx = scripted([0.0015] * 30)
    with live(lx) as run:
        entry = run.call("bracket_order", SYM, 500.0, side="sell", stop_loss=0.0016,
                         take_profit=0.0014)
        assert entry and entry.side is Side.SELL
        ai = run.strategy.assets[0]
        eventually(lambda: len(ai.orders) == 2)
        # a market entry is done at once, whatever trades it took: one pair for it all
        assert never(lambda: len(ai.orders) > 2, 0.3)
        limit, stop = legs(run)
        assert (limit.side, stop.side) == (Side.BUY, Side.BUY) and limit.amount == 500
        assert stop.route == "emulated" and list(on_exchange(lx)) == [limit.id]


@pytest.mark.parametrize("side,args", [
    ("sell", {"price": 0.00155, "stop": 0.00145}),   # the limit (on the exchange) first
    ("buy", {"price": 0.00145, "stop": 0.00155})])   # the stop (the engine's) first
def test_an_oco_whose_second_leg_the_throttle_refuses_leaves_no_leg(scripted, side, args):
    """One order a minute is allowed: the OCO's first leg is it, the second is refused.
    The first leg is cancelled (on the exchange, or in the engine), the call answers
    None, and the strategy is told."""
    lx = scripted([0.0015] * 30)
    with live(lx, Watched, risk=RiskRules(max_orders_per_minute=1)) as run:
        ai = run.strategy.assets[0]
        assert run.call("oco_order", SYM, 500.0, side=side, **args) is None
        assert not ai.orders and ai.committed == 0 and run.strategy.state.committed == 0
        assert on_exchange(lx) == {}
        assert [e.rule for e in run.strategy.risk_events] == ["max_orders_per_minute"]
        first = "limit" if side == "sell" else "stop"
        assert run.strategy.errors[-1].startswith(
            f"oco_order: the {'stop' if first == 'limit' else 'limit'} leg could not be placed; "
            f"the {first} leg ")
        assert run.strategy.errors[-1].endswith(" was cancelled")


def test_a_buy_oco_whose_limit_the_exchange_refuses_cancels_its_held_stop(scripted):
    """The buy OCO's stop leg is held by the engine first; the exchange refuses the limit
    leg (418): the stop is closed, nothing is left, and the call answers None. The
    refusal counts once toward the error-rate breaker (the pair's report counted too)."""
    lx = scripted([0.0015, 0.0016] + [0.0016] * 30)
    with live(lx) as run:
        lx.faults.update({"http_status": 418, "http_count": 1, "http_path": "/api/v3/order",
                          "retry_after": 0})
        ai = run.strategy.assets[0]
        assert run.call("oco_order", SYM, 500.0, side="buy", price=0.00145,
                        stop=0.00155) is None
        assert not ai.orders and ai.committed == 0 and on_exchange(lx) == {}
        assert run.strategy.errors[-1].startswith("oco_order: the limit leg could not be placed; "
                                                  "the stop leg ")
        # the refusal is one error for the error-rate breaker, the pair's report no second
        assert len(run.session.e.state.risk.errors) == 1
        # through the stop's trigger, until the engine has read a trade at 0.0016 (from
        # T0 + 2 steps; else "no fill" would check nothing). Stepped on: under load the
        # first trades can come before the trades stream is subscribed, and with nothing
        # held the stall guard has nothing to fetch for
        step_until(lx, lambda: run.session.trigger_seen.get(SYM, 0) >= T0 + 2 * STEP)
        assert never(lambda: run.strategy.fills, 0.3)


def test_amending_an_oco_stop_leg_keeps_it_in_the_engine(scripted):
    """The replacement of an OCO's stop leg is a stop leg too: held by the engine, in the
    pair's group; the exchange still holds the limit leg only."""
    lx = scripted([0.0015] * 30)
    with live(lx) as run:
        assert run.call("market_order", SYM, 600.0, side="buy")
        assert run.call("oco_order", SYM, 500.0, price=0.00155, stop=0.00145) is missing
        limit, stop = legs(run)
        assert run.call("amend_stop", SYM, stop.id, 0.00147) is missing
        limit_now, moved = legs(run)
        assert limit_now is limit and moved is not stop and moved.trigger == 0.00147
        assert moved.route == "emulated" and moved.group == limit.group
        assert list(on_exchange(lx)) == [limit.id] and run.strategy.errors == []


def test_a_bracket_entry_resting_partly_filled_gets_exits_for_each_part(scripted):
    """A limit entry of 1000 at 0.00149 on the exchange takes 400 from each trade at that
    price: each part gets its exits (the target on the exchange, the stop in the engine)
    while the entry still rests."""
    lx = scripted([0.0015, 0.00149, 0.0015, 0.00149] + [0.0015] * 30)
    with live(lx) as run:
        ai = run.strategy.assets[0]
        assert run.call("bracket_order", SYM, 1000.0, price=0.00149, stop_loss=0.0014,
                        take_profit=0.0016) is missing
        (entry,) = ai.orders.values()

        def exits():
            return sorted((o.type.value, o.amount, o.route) for o in ai.orders.values()
                          if o is not entry)

        lx.step(2 * STEP)
        eventually(lambda: len(exits()) == 2)
        assert entry.is_open and entry.filled == 400
        (limit, stop) = exits()
        assert 399 <= limit[1] == stop[1] <= 400  # what the fee left of the part
        assert (limit[0], limit[2], stop[0], stop[2]) == ("limit", "", "stop_market", "emulated")
        lx.step(2 * STEP)
        eventually(lambda: len(exits()) == 4)
        assert entry.is_open and entry.filled == 800 and run.strategy.errors == []
        assert len(on_exchange(lx)) == 3  # the entry and the two targets


def test_a_restarted_run_places_exits_only_for_the_parts_that_have_none(scripted, tmp_path):
    """Run 1: the resting entry fills 400 and gets exits for it. Run 2 (resumed from the
    trace) carries the entry and those exits, fills 400 more, and places exits for that
    part only: never more exits than bought. The replay of the trace gives the same
    covered amount."""
    from planarpy.trace import replay_from_trace
    lx = scripted([0.0015, 0.00149, 0.0015, 0.00149] + [0.0015] * 30)
    path = str(tmp_path / "tr")
    with live(lx, trace=path) as run:
        ai = run.strategy.assets[0]
        assert run.call("bracket_order", SYM, 1000.0, price=0.00149, stop_loss=0.0014,
                        take_profit=0.0016) is missing
        lx.step(2 * STEP)
        eventually(lambda: len(ai.orders) == 3)
        first = next(o for o in ai.orders.values() if o.legs)
        covered = first.legs["covered"]
        assert 399 <= covered <= 400
    with live(lx, trace=path) as run:
        ai = run.strategy.assets[0]
        eventually(lambda: len(ai.orders) == 3, 15)
        entry = next(o for o in ai.orders.values() if o.legs)
        assert entry.legs["covered"] == covered
        lx.step(2 * STEP)
        eventually(lambda: entry.filled == 800, 15)
        eventually(lambda: len(ai.orders) == 5)

        def exits(kind):
            return sum(o.amount for o in ai.orders.values() if o.type is kind)

        assert never(lambda: len(ai.orders) > 5, 0.3)
        assert exits(OrderType.LIMIT) - entry.amount == exits(OrderType.STOP_MARKET) \
            == entry.legs["covered"] <= 800
        strategy = run.strategy
        now = entry.legs["covered"]
    report = replay_from_trace(strategy, path)
    assert report.ok, str(report)
    (replayed,) = [o for o in report.state.assets[SYM].orders.values() if o.legs]
    assert replayed.legs["covered"] == now


def test_a_bracket_part_whose_exits_the_exchange_refuses_is_covered_by_the_next(scripted):
    """The exchange refuses both exits of the first part (a 418 for the target, placed
    first, and again for the stop then placed alone): nothing covers that part, so the
    next part's exits cover both."""
    lx = scripted([0.0015, 0.00149] + [0.0015] * 6 + [0.00149] + [0.0015] * 30)
    with live(lx, Watched) as run:
        ai = run.strategy.assets[0]
        assert run.call("bracket_order", SYM, 1000.0, price=0.00149, stop_loss=0.0014,
                        take_profit=0.0016) is missing
        (entry,) = ai.orders.values()
        lx.faults.update({"http_status": 418, "http_count": 2,
                          "http_path": "POST /api/v3/order$", "retry_after": 0})
        lx.step(2 * STEP)
        eventually(lambda: entry.filled == 400 and len(run.strategy.errors) >= 2)
        eventually(lambda: entry.legs.get("covered", 0.0) == 0.0)
        assert len(ai.orders) == 1 and list(on_exchange(lx)) == [entry.id]
        step_until(lx, lambda: len(ai.orders) == 3, 12)
        limit, stop = legs(run)
        assert 400 < limit.amount == stop.amount == entry.legs["covered"] <= 800
        assert sorted(on_exchange(lx)) == sorted([entry.id, limit.id])


def test_an_oco_whose_first_leg_may_still_be_open_is_not_answered_not_placed(scripted):
    """The sell OCO's limit leg is on the exchange, its stop leg is refused (one order a
    minute), and the cancel of the limit fails (503): the limit may be open, so the call
    answers `missing` (unknown), not None (not placed), and the strategy is told."""
    lx = scripted([0.0015] * 30)
    with live(lx, Watched, risk=RiskRules(max_orders_per_minute=1)) as run:
        lx.faults.update({"http_status": 503, "http_count": 10,
                          "http_path": "DELETE /api/v3/order", "retry_after": 0})
        assert run.call("oco_order", SYM, 500.0, price=0.00155, stop=0.00145) is missing
        assert run.strategy.errors[-1].endswith(
            "was to be cancelled, but its cancel was not confirmed: it may be open")


FAST_WINDOW = {"rate_limit": False, "options": {"recvWindow": 1000}}  # a 2 s submit window


def unanswered_limit_leg(lx):
    """The next order POST is answered 503 with nothing done: its outcome is unknown until
    the submit window has passed and the exchange says it does not know it."""
    lx.faults.update({"http_status": 503, "http_path": "POST /api/v3/order", "http_count": 1})


def test_an_oco_whose_unknown_limit_leg_was_never_placed_ends_its_held_stop(scripted, tmp_path):
    """A sell OCO: the limit leg's submit gets no answer (unknown: the stop leg is placed,
    held by the engine). Once the exchange says the limit leg never arrived, the pair
    ends: both legs or neither. The stop is closed, the strategy is told, a fall through
    the stop sells nothing, and the trace replays to that state (the legs' `pair`)."""
    lx = scripted([0.0015] * 3 + [0.00144] * 30)
    path = str(tmp_path / "tr")
    with live(lx, trace=path, settings={"exchanges": {"binance": FAST_WINDOW}}) as run:
        assert run.call("market_order", SYM, 600.0, side="buy")
        unanswered_limit_leg(lx)
        assert run.call("oco_order", SYM, 500.0, price=0.00155, stop=0.00145) is missing
        limit, stop = legs(run)
        assert (limit.pair, stop.pair, stop.route) == ("oco", "oco", "emulated")
        eventually(lambda: limit.status.value == "not_placed", 10)
        eventually(lambda: not stop.is_open)
        assert stop.status.value == "canceled" and not run.strategy.assets[0].orders
        told = eventually(lambda: [e for e in run.strategy.errors if e.startswith("oco_order")])
        assert told == [f"oco_order: the limit leg {limit.id} was never placed; the stop leg "
                        f"{stop.id} is cancelled: both legs or neither"]
        step_until(lx, lambda: run.session.trigger_seen.get(SYM, 0) >= T0 + 4 * STEP)
        assert never(lambda: [t for t in run.strategy.fills if t.side is Side.SELL], 0.3)
        assert on_exchange(lx) == {}
        strategy = run.strategy
    replayed(strategy, path)


def test_a_brackets_unknown_target_never_placed_leaves_its_stop_protecting(scripted):
    """A bracket's limit entry fills; its exits' target (the limit leg, placed first) gets
    no answer and is later found never placed. The exits are what protection there is:
    the stop leg stays, the strategy is told, and a fall through it sells the position."""
    lx = scripted([0.0015, 0.00149] + [0.0015] * 3 + [0.00144] * 30)
    with live(lx, settings={"exchanges": {"binance": FAST_WINDOW}}) as run:
        ai = run.strategy.assets[0]
        assert run.call("bracket_order", SYM, 300.0, price=0.00149, stop_loss=0.00145,
                        take_profit=0.00155) is missing
        unanswered_limit_leg(lx)
        lx.step(2 * STEP)
        limit, stop = eventually(lambda: len(ai.orders) == 2 and legs(run))
        assert (limit.pair, stop.pair, stop.route) == ("exits", "exits", "emulated")
        eventually(lambda: limit.status.value == "not_placed", 10)
        told = eventually(lambda: [e for e in run.strategy.errors
                                   if e.startswith("bracket_order")])
        assert told == [f"bracket_order: its exits: the limit leg {limit.id} was never placed; "
                        f"the stop leg {stop.id} stays, alone"]
        assert stop.is_open
        step_until(lx, lambda: not stop.is_open)
        sold = [t for t in run.strategy.fills if t.side is Side.SELL]
        assert [t.order_id for t in sold] == [stop.id] and sum(t.amount for t in sold) == \
            stop.amount


def test_a_bracket_stop_placed_alone_goes_to_the_exchange(scripted):
    """A bracket's limit entry fills; the exchange refuses its target (the limit leg,
    placed first: a 418). The stop is placed alone, a leg of no pair, so the venue holds
    it natively (Binance spot's STOP_LOSS), not the engine."""
    lx = scripted([0.0015, 0.00149] + [0.0015] * 30)
    with live(lx) as run:
        ai = run.strategy.assets[0]
        assert run.call("bracket_order", SYM, 300.0, price=0.00149, stop_loss=0.00145,
                        take_profit=0.00155) is missing
        lx.faults.update({"http_status": 418, "http_count": 1, "http_path": "POST /api/v3/order",
                          "retry_after": 0})
        lx.step(2 * STEP)
        stop = eventually(lambda: [o for o in ai.orders.values() if o.type is not OrderType.LIMIT])[0]
        assert stop.type is OrderType.STOP_MARKET and stop.pair == "" and stop.route == "native"
        eventually(lambda: list(on_exchange(lx)) == [stop.id])
        told = [e for e in run.strategy.errors if e.startswith("bracket_order")]
        assert told and told[-1].endswith(f"the stop leg {stop.id} stays, alone")


def test_an_oco_whose_first_leg_fills_before_its_cancel_answers_missing(scripted):
    """Two orders a minute: a buy, then the sell OCO's limit leg; its stop leg is refused,
    so the limit leg is cancelled. The exchange executes that cancel late (1.5 s), and a
    trade fills the limit leg meanwhile: the call answers `missing` (a sale happened: None
    would say nothing did), the fill reaches the strategy, and it is told the leg filled
    before it could be cancelled."""
    lx = scripted([0.0015, 0.00152] + [0.0015] * 30)
    trace = Events()
    with live(lx, Watched, trace=trace, risk=RiskRules(max_orders_per_minute=2)) as run:
        ai = run.strategy.assets[0]
        assert run.call("market_order", SYM, 600.0, side="buy")
        lx.faults.update({"delay_ms": 1500, "delay_path": "DELETE /api/v3/order",
                          "delay_count": 1})

        def fill_while_the_cancel_waits():
            eventually(lambda: any(p.get("method") == "cancel_order"
                                   for p in trace.of("request_sent")), 10)
            lx.step(2 * STEP)  # a trade at 0.00152 takes the limit at 0.00151

        stepper = threading.Thread(target=fill_while_the_cancel_waits)
        stepper.start()
        result = run.call("oco_order", SYM, 500.0, price=0.00151, stop=0.00145)
        assert result is missing
        stepper.join()
        (limit,) = {t.order_id for t in run.strategy.fills if t.side is Side.SELL}
        assert sum(t.amount for t in run.strategy.fills if t.order_id == limit) == 500
        assert not ai.orders
        assert run.strategy.errors[-1] == (f"oco_order: the stop leg could not be placed; the "
                                           f"limit leg {limit} filled 500 before it could be "
                                           "cancelled")
