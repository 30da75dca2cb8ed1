"""A bracket's exits over a crash, in live spot against the local exchange: the run
records what the exits of a part cover (`legs_covered`) before it places them, so a run
killed between the two leaves a trace that says "covered" while no exit exists. The next
run places the missing exits (resume.finish_exits) and tells the strategy; one killed
after the exits were placed places nothing twice.

The trace a crash leaves is made the way it would be: a first run's trace copied up to
the event the crash follows (what it committed), with the exchange as it would be then
(the exits the first run went on to place are cancelled there: they were never sent)."""

from __future__ import annotations

import pytest

from planarpy.core.orders import OrderType
from planarpy.trace import EventTrace, iter_events, replay_from_trace

from livekit import crashed, eventually, live, never, raw_client, replayed
from tapekit import STEP, SYM

EXITS = {"stop_loss": 0.0014, "take_profit": 0.0016}


def trace_at(path):
    return EventTrace.open(path, strategy="Quiet", exchange="binance")


def covered(e):
    return e["kind"] == "legs_covered"


def exits_of(run):
    """The open exits (orders naming an entry): {type: order}."""
    with run.session.engine.locked():
        return {o.type: o for o in run.strategy.assets[0].orders.values() if o.entry}


def on_exchange(lx):
    return sorted(o["info"]["clientOrderId"] for o in raw_client(lx).fetch_open_orders(SYM))


def first_run(lx, path, entry_args, filled=None):
    """Run 1 on the trace at `path`: a bracket buy entry (`entry_args`) whose exits are
    placed (after `filled` steps a resting entry takes a part); the entry and its exits."""
    with trace_at(path) as trace, live(lx, trace=trace) as run:
        run.call("bracket_order", SYM, **entry_args, **EXITS)
        if filled:
            lx.step(filled * STEP)
        eventually(lambda: len(exits_of(run)) == 2)
        with run.session.engine.locked():
            entry = next(o for o in run.strategy.assets[0].orders.values() if o.legs) \
                if filled else None
        exits = exits_of(run)
    return entry, exits


def bracket(scripted, tmp_path, resting=False, unsent=True):
    """Run 1 of a bracket buy on the trace `full`: a market entry of 500, or (`resting`) a
    limit entry of 1000 at 0.00149 that fills 400 and rests (and 400 more if the exchange
    is stepped 5 more). (the exchange, `full`, the path for the trace a crash leaves, the
    entry (resting) or None, the exits.) `unsent`: the target exit is cancelled on the
    exchange, as a crash before its placing leaves it (never sent; the stop is the
    engine's)."""
    if resting:
        lx = scripted([0.0015, 0.00149] + [0.0015] * 4 + [0.00149] + [0.0015] * 40)
        args, steps = {"amount": 1000.0, "price": 0.00149}, 2
    else:
        lx = scripted([0.0015] * 40)
        args, steps = {"amount": 500.0, "side": "buy"}, None
    full, cut = tmp_path / "full", tmp_path / "cut"
    entry, old = first_run(lx, full, args, filled=steps)
    if unsent:
        raw_client(lx).cancel_order(None, SYM, {"origClientOrderId": old[OrderType.LIMIT].id})
    return lx, full, cut, entry, old


# the exchange refuses the restart's exits (418): the target, then the stop placed alone
REFUSE_EXITS = {"http_status": 418, "http_count": 2, "http_path": "POST /api/v3/order$",
                "retry_after": 0}


def assert_exits(run, entry_id, amount, old):
    """The restarted run holds one new pair of exits for `amount`, at the bracket's
    prices, naming the entry (the target on the exchange, the stop in the engine)."""
    eventually(lambda: len(exits_of(run)) == 2, 10)
    limit, stop = exits_of(run)[OrderType.LIMIT], exits_of(run)[OrderType.STOP_MARKET]
    assert {limit.id, stop.id}.isdisjoint(o.id for o in old.values())
    assert (limit.entry, stop.entry) == (entry_id, entry_id) and limit.group == stop.group
    assert (limit.price, stop.trigger, stop.route) == (0.0016, 0.0014, "emulated")
    assert limit.amount == stop.amount == amount
    return limit


def told(run):
    return [m for w, m in run.strategy.seen_errors if w == f"exits:{SYM}"]


def test_a_market_brackets_exits_lost_in_a_crash_are_placed_by_the_restart(scripted, tmp_path):
    """A market entry is done at once: it is no longer among the open orders when its
    exits are recorded as covering it. Killed right then, the next run finds what they
    cover in the trace, places them for it, and says so; both replays (the new run
    alone, and the whole trace across the crash) give the state the run holds."""
    lx, full, cut, _, old = bracket(scripted, tmp_path)
    crashed(full, cut, covered)
    (mark,) = [e["payload"] for e in iter_events(cut, kinds="legs_covered")]
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        limit = assert_exits(second, mark["id"], mark["covered"], old)
        assert 499 <= mark["covered"] <= 500  # what the fee left of the 500 bought
        assert on_exchange(lx) == [limit.id]
        (message,) = told(second)
        assert f"entry {mark['id']} for {mark['covered']:g} were recorded but never placed" \
            in message and message.endswith(f"placed now for {mark['covered']:g}")
        assert never(lambda: len(exits_of(second)) > 2, 0.3)
        assert second.strategy.errors == []
        strategy = second.strategy
    replayed(strategy, cut)
    whole = replay_from_trace(strategy, cut, run=None)
    assert whole.ok, str(whole)


def test_a_resting_entrys_part_whose_exits_a_crash_lost_gets_them_and_the_next_part_its_own(
        scripted, tmp_path):
    """A limit entry of 1000 fills 400 and rests; killed after its exits for that part
    were recorded, before they were placed. The next run carries the entry, places the
    exits of that part, and when the entry fills 400 more, exits for that part only:
    never more exits than bought."""
    lx, full, cut, entry, old = bracket(scripted, tmp_path, resting=True)
    assert entry.filled == 400 and 399 <= entry.legs["covered"] <= 400
    crashed(full, cut, covered)
    part = entry.legs["covered"]
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        assert_exits(second, entry.id, part, old)
        ai = second.strategy.assets[0]
        (carried,) = [o for o in ai.orders.values() if o.legs]
        assert carried.id == entry.id and carried.legs["covered"] == part
        assert on_exchange(lx) == sorted([entry.id, exits_of(second)[OrderType.LIMIT].id])
        assert len(told(second)) == 1
        lx.step(5 * STEP)
        eventually(lambda: carried.filled == 800, 10)
        eventually(lambda: len(ai.orders) == 5)
        assert never(lambda: len(ai.orders) > 5, 0.3)
        limits = sum(o.amount for o in ai.orders.values() if o.type is OrderType.LIMIT and o.entry)
        stops = sum(o.amount for o in ai.orders.values() if o.type is OrderType.STOP_MARKET)
        assert limits == stops == carried.legs["covered"] <= 800
        strategy = second.strategy
    replayed(strategy, cut)
    whole = replay_from_trace(strategy, cut, run=None)
    assert whole.ok, str(whole)


def test_a_crash_after_the_exits_were_placed_places_nothing_twice(scripted, tmp_path):
    """Killed right after the second exit was created: the next run carries both (the
    target found open on the exchange, the stop held by the engine again) and places
    nothing more, and says nothing of exits."""
    lx, full, cut, _, old = bracket(scripted, tmp_path, unsent=False)
    last = old[OrderType.STOP_MARKET].id  # the sell pair's second leg
    crashed(full, cut, lambda e: e["kind"] == "order_created" and e["payload"]["id"] == last)
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        eventually(lambda: len(exits_of(second)) == 2, 10)
        assert sorted(o.id for o in exits_of(second).values()) == sorted(o.id for o in old.values())
        assert never(lambda: len(exits_of(second)) > 2 or told(second), 0.5)
        assert on_exchange(lx) == [old[OrderType.LIMIT].id]
        strategy = second.strategy
    replayed(strategy, cut)


def test_an_older_trace_whose_exits_name_no_entry_still_restarts(scripted, tmp_path):
    """A trace written before exits named their entry (no `entry`, no `named` in the
    entry's legs): the next run carries its exits as they are and places no others (it
    cannot tell which exits are the entry's), and the trace replays."""
    lx = scripted([0.0015, 0.00149] + [0.0015] * 40)
    full, old_format = tmp_path / "full", tmp_path / "old"
    entry, old = first_run(lx, full, {"amount": 1000.0, "price": 0.00149}, filled=2)

    def older(payload):
        payload = {k: v for k, v in payload.items() if k != "entry"}
        if payload.get("legs"):
            payload["legs"] = {k: v for k, v in payload["legs"].items() if k != "named"}
        return payload

    crashed(full, old_format, change=older)
    with trace_at(old_format) as trace, live(lx, trace=trace) as second:
        ai = second.strategy.assets[0]
        eventually(lambda: len(ai.orders) == 3, 10)
        assert sorted(ai.orders) == sorted([entry.id, *(o.id for o in old.values())])
        assert all(not o.entry for o in ai.orders.values())
        assert never(lambda: len(ai.orders) > 3 or told(second), 0.5)
        strategy = second.strategy
    replayed(strategy, old_format)


def test_a_crash_between_the_two_legs_of_the_exits_is_told(scripted, tmp_path):
    """Killed right after the pair's first leg (the target) was created: the part is
    covered by that pair, so nothing is placed again, but the position has no stop, and
    the run is told so."""
    lx, full, cut, _, old = bracket(scripted, tmp_path, unsent=False)
    limit = old[OrderType.LIMIT]
    crashed(full, cut, lambda e: e["kind"] == "order_created" and e["payload"]["id"] == limit.id)
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        eventually(lambda: told(second), 10)
        (message,) = told(second)
        assert f"only the limit leg {limit.id} of pair {limit.group} is open" in message
        assert list(exits_of(second)) == [OrderType.LIMIT]
        assert never(lambda: len(exits_of(second)) > 1, 0.3)
        strategy = second.strategy
    replayed(strategy, cut)


@pytest.mark.parametrize("cut, told_as", [
    ("covered", "were recorded but never placed"), ("filled", "that no exit covered")],
    ids=["after the cover", "before the cover"])
def test_exits_a_crash_lost_that_the_exchange_refuses_at_restart_are_reported_once(
        scripted, tmp_path, cut, told_as):
    """Killed after the market entry's exits were recorded as covering it (or after its
    last fill, before that), before they were placed; the exchange refuses the restart's
    exits (418: the target, then the stop placed alone). The run is told the part has no
    exits (each refusal an order error), rather than the trace's "covered" staying
    unexplained; as when a run's own exits are refused (release_legs takes the cover
    back), a restart after that places nothing and says nothing of exits."""
    lx, full, cut_path, _, old = bracket(scripted, tmp_path)
    fills = [e["payload"] for e in iter_events(full, kinds="trade_created")]
    last = covered if cut == "covered" else \
        lambda e: filled(e) and e["payload"]["id"] == fills[-1]["id"]
    crashed(full, cut_path, last)
    lx.faults.update(REFUSE_EXITS)
    with trace_at(cut_path) as trace, live(lx, trace=trace) as second:
        eventually(lambda: told(second), 10)
        (message,) = told(second)
        assert told_as in message
        assert message.endswith("they could not be placed now: the position has no exits for it")
        assert len(second.strategy.errors) == 2  # the target's refusal, the stop's
        assert never(lambda: exits_of(second), 0.3) and on_exchange(lx) == []
        strategy = second.strategy
    replayed(strategy, cut_path)
    with trace_at(cut_path) as trace, live(lx, trace=trace) as third:
        assert never(lambda: told(third) or exits_of(third), 1.0)
        assert on_exchange(lx) == []


def test_a_resting_entry_that_filled_more_while_the_run_was_down_gets_exits_for_both(
        scripted, tmp_path):
    """The crash lost the exits of the first part (400), and the entry filled 400 more
    while no run was up. The restart covers each: the part the crash lost (what the
    earlier run recorded) and the part filled meanwhile (its own cover), one pair each."""
    lx, full, cut, entry, old = bracket(scripted, tmp_path, resting=True)
    crashed(full, cut, covered)
    lx.step(5 * STEP)  # the entry takes 400 more on the exchange
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        ai = second.strategy.assets[0]
        eventually(lambda: len(ai.orders) == 5, 10)
        assert never(lambda: len(ai.orders) > 5, 0.3)
        entry_now = ai.orders[entry.id]
        assert entry_now.filled == 800
        limits = [o.amount for o in ai.orders.values() if o.type is OrderType.LIMIT and o.entry]
        stops = [o.amount for o in ai.orders.values() if o.type is OrderType.STOP_MARKET]
        assert sorted(limits) == sorted(stops) and len(stops) == 2
        assert sum(stops) == entry_now.legs["covered"] and 798 <= sum(stops) <= 800
        strategy = second.strategy
    replayed(strategy, cut)


def filled(e):
    return e["kind"] == "trade_created"


def test_a_market_entry_done_before_a_crash_covered_it_gets_its_exits(scripted, tmp_path):
    """Killed right after the market entry's last fill (500 in two), before its exits
    were even recorded as covering it: the trace holds a done bracket entry and no
    cover. The next run places the exits for what the fills bought (less the fee taken
    in XRP, on the amount step), records the cover, and says so; a run after it places
    nothing again."""
    lx, full, cut, _, old = bracket(scripted, tmp_path)
    fills = [e["payload"] for e in iter_events(full, kinds="trade_created")]
    assert sum(f["amount"] for f in fills) == 500 and len(fills) == 2
    crashed(full, cut, lambda e: filled(e) and e["payload"]["id"] == fills[-1]["id"])
    assert not list(iter_events(cut, kinds="legs_covered"))
    entry = fills[0]["order_id"]
    bought = sum(f["amount"] - (f["fee"] if f["fee_currency"] == "XRP" else 0.0) for f in fills)
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        bought = second.strategy.assets[0].floor_amount(bought)  # on the amount step
        limit = assert_exits(second, entry, bought, old)
        assert 499 <= bought < 500 and on_exchange(lx) == [limit.id]
        (message,) = told(second)
        assert f"entry {entry} filled {bought:g} that no exit covered" in message
        assert message.endswith(f"placed now for {bought:g}")
        assert never(lambda: len(exits_of(second)) > 2, 0.3)
        assert second.strategy.errors == []
        strategy = second.strategy
    (mark,) = [e["payload"] for e in iter_events(cut, kinds="legs_covered")]
    assert (mark["id"], mark["covered"]) == (entry, bought)
    replayed(strategy, cut)
    whole = replay_from_trace(strategy, cut, run=None)
    assert whole.ok, str(whole)
    with trace_at(cut) as trace, live(lx, trace=trace) as third:
        assert never(lambda: told(third) or len(exits_of(third)) > 2, 0.5)


def test_a_market_entry_cut_between_its_fills_is_covered_whole_after_the_sync(scripted,
                                                                              tmp_path):
    """Killed between the market entry's two fills (400, then 100): the next run finds
    the second fill as it settles the carried entry, before its sync has read the
    balances. The exits that fill sets off wait for the sync, then cover the whole entry
    (not only the 100 the run had applied itself), as one pair."""
    lx, full, cut, _, old = bracket(scripted, tmp_path)
    crashed(full, cut, filled)
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        entry = next(iter(iter_events(cut, kinds="trade_created")))["payload"]["order_id"]
        eventually(lambda: len(exits_of(second)) == 2, 10)
        amount = exits_of(second)[OrderType.LIMIT].amount
        assert 499 <= amount <= 500
        assert_exits(second, entry, amount, old)
        assert never(lambda: len(exits_of(second)) > 2, 0.3)
        strategy = second.strategy
    (mark,) = [e["payload"] for e in iter_events(cut, kinds="legs_covered")]
    assert (mark["id"], mark["covered"]) == (entry, amount)
    replayed(strategy, cut)


def test_a_resting_entrys_part_filled_before_a_crash_covered_it_gets_exits_at_restart(
        scripted, tmp_path):
    """A limit entry of 1000 fills 400 and rests; killed right after that fill, before
    its cover. The next run carries the entry and covers the part as a fill of its own
    would (an OCO pair for 400), and says so; the next part gets exits for itself only."""
    lx, full, cut, entry, old = bracket(scripted, tmp_path, resting=True)
    crashed(full, cut, filled)
    assert not list(iter_events(cut, kinds="legs_covered"))
    with trace_at(cut) as trace, live(lx, trace=trace) as second:
        ai = second.strategy.assets[0]
        (carried,) = [o for o in ai.orders.values() if o.legs]
        assert carried.id == entry.id and carried.filled == 400
        eventually(lambda: carried.legs.get("covered"), 10)
        part = carried.legs["covered"]
        assert 399 <= part <= 400
        assert_exits(second, entry.id, part, old)
        (message,) = told(second)
        assert f"entry {entry.id} filled {part:g} that no exit covered" in message
        lx.step(5 * STEP)
        eventually(lambda: carried.filled == 800, 10)
        eventually(lambda: len(ai.orders) == 5)
        assert never(lambda: len(ai.orders) > 5, 0.3)
        stops = sum(o.amount for o in ai.orders.values() if o.type is OrderType.STOP_MARKET)
        assert stops == carried.legs["covered"] <= 800
        strategy = second.strategy
    replayed(strategy, cut)
