"""Conditional orders in paper mode: held by the engine, fired by the streamed public trades
of a local exchange replaying a scripted tape, filled from its book."""

from __future__ import annotations

import pytest

from planarpy import Side, Strategy, missing
from planarpy.core.orders import OrderType

from livekit import eventually
from livekit import never
from tapekit import STEP, SYM, T0, Events


class Idle(Strategy):
    """A spot strategy whose tick does nothing: the tests act with run.call()."""

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SYM,)
    initial_cash = 5.0

    def reset(self):
        self.errors = []

    def on_order_error(self, ai, reason, request):
        self.errors.append(reason)


def start(paper_run, lx, trace=None):
    from planarpy.modes.paper import start_paper
    run = start_paper(Idle, exchange_url=lx.url, clock=lx.clock, settings={}, stall_after=2.0,
                      cash=5.0, trace=trace)
    paper_run.append(run)
    return run


@pytest.fixture
def paper_run():
    runs = []
    yield runs
    for run in runs:
        if run.running:
            run.stop()


def step_until(lx, run, done, steps=40):
    for _ in range(steps):
        if done():
            return
        lx.step(STEP)
        try:
            eventually(lambda: run.session.markets[SYM].last_trade_ts >= lx.clock.now() - STEP,
                       timeout=5)
        except AssertionError:
            pass
    eventually(done, timeout=10)


def test_paper_stop_fires_from_public_trades_and_sells_into_the_book(scripted, paper_run):
    lx = scripted([0.00151, 0.00152, 0.00149, 0.00146, 0.00147] + [0.00147] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    bought = run.call("market_order", SYM, 1000.0, side="buy")
    held = run.strategy.assets[0].floor_amount(run.strategy.assets[0].balance)
    assert bought and held > 0
    assert run.call("stop_order", SYM, held, 0.00148) is missing
    (stop,) = [o for o in run.strategy.assets[0].orders.values()]
    assert stop.type is OrderType.STOP_MARKET and stop.route == ""
    step_until(lx, run, lambda: len(run.strategy.trades) >= 2)
    sell = run.strategy.trades[-1]
    assert sell.order_id == stop.id and sell.side is Side.SELL and sell.taker
    assert sell.amount == held
    # the trade at 0.00149 did not reach the stop; the one at 0.00146 fired it, and the
    # sell took the streamed book's bids (whatever they were at that moment)
    (fired,) = trace.of("order_triggered")
    assert fired["id"] == stop.id and fired["price"] == 0.00146
    fill = trace.of("trade_created")[-1]
    assert fill["basis"]["source"] == "book" and fill["basis"]["trigger_trade"][2] == 0.00146
    assert run.state()["assets"][SYM]["orders"] == [] and run.strategy.errors == []


def test_paper_oco_target_fills_from_trades_and_cancels_the_stop(scripted, paper_run):
    lx = scripted([0.00151, 0.00153, 0.00156, 0.00157, 0.00140] + [0.0014] * 30)
    run = start(paper_run, lx)
    run.call("market_order", SYM, 500.0, side="buy")  # two trades of 400 cover the target
    held = run.strategy.assets[0].floor_amount(run.strategy.assets[0].balance)
    assert run.call("oco_order", SYM, held, price=0.00155, stop=0.00145) is missing, run.strategy.errors
    step_until(lx, run, lambda: not run.strategy.assets[0].orders)
    sells = [t for t in run.strategy.trades if t.side is Side.SELL]
    assert sells and all(t.price == 0.00155 and not t.taker for t in sells)
    assert sum(t.amount for t in sells) == pytest.approx(held)
    assert run.strategy.assets[0].committed == 0  # the crash to 0.0014 found no stop


def test_paper_trailing_stop_follows_trades_then_fires(scripted, paper_run):
    lx = scripted([0.00151, 0.00155, 0.00160, 0.00158, 0.00155, 0.00150] + [0.0015] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    run.call("market_order", SYM, 1000.0, side="buy")
    held = run.strategy.assets[0].floor_amount(run.strategy.assets[0].balance)
    assert run.call("trailing_stop_order", SYM, held, percent=0.02) is missing
    step_until(lx, run, lambda: len(run.strategy.trades) >= 2)
    (sell,) = [t for t in run.strategy.trades if t.side is Side.SELL]
    # armed at the close 0.0015 (stop 0.00147), it follows each trade: 0.00151, 0.00155,
    # then the best, 0.0016 (stop 0.001568); 0.00158 does not reach it, 0.00155 does
    moved = [p["trigger"] for p in trace.of("trigger_moved")]
    assert moved == pytest.approx([0.0014798, 0.001519, 0.001568], abs=1e-12)
    (fired,) = trace.of("order_triggered")
    assert fired["price"] == 0.00155 and fired["trigger"] == pytest.approx(0.001568, abs=1e-12)
    (fill,) = [p for p in trace.of("trade_created") if p["side"] == "sell"]
    assert fill["basis"]["trigger_trade"][2] == 0.00155 and fill["basis"]["source"] == "book"
    assert sell.taker and run.strategy.errors == []


def test_paper_triggers_are_checked_and_armed_at_the_last_trade_not_the_last_close(
        scripted, paper_run):
    """A paper trailing stop by an offset of 0.00002 placed while the market trades at
    0.00145 (the last candle closed at 0.0015) stands at 0.00143, and the next trade at
    the same price does not fire it; a sell stop at 0.00147, a price the market has
    already passed, is refused as Binance refuses it, not held to fire on the next trade.
    (Armed from the last close, the trailing stop stood at 0.00148, above the market,
    and sold at once: review 15, finding 4.)"""
    lx = scripted([0.00146, 0.00145] + [0.00145] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    ai = run.strategy.assets[0]
    held = buy(run, 1000.0)
    m = run.session.markets[SYM]
    lx.step(STEP)
    lx.step(STEP)
    eventually(lambda: m.last_trade_ts >= T0 + 2 * STEP)
    assert run.strategy.assets[0].ohlcv.close.item(-1) == 0.0015 and m.last_price == 0.00145
    assert run.call("stop_order", SYM, held, 0.00147) is None
    assert "would trigger immediately" in run.strategy.errors[-1]
    assert run.call("trailing_stop_order", SYM, held, offset=0.00002) is missing
    (stop,) = ai.orders.values()
    assert stop.trigger == pytest.approx(0.00143, abs=1e-12)
    lx.step(STEP)  # 0.00145 again: the market has not moved
    eventually(lambda: m.last_trade_ts >= T0 + 3 * STEP)
    assert not stop.triggered and not trace.of("order_triggered") and not sells(run)


# ---- per type: trigger, fill price, cancellation -------------------------------------------
def buy(run, amount):
    """Buy `amount` at the market; what is held to sell (the fee is taken in the base)."""
    assert run.call("market_order", SYM, amount, side="buy")
    ai = run.strategy.assets[0]
    return ai.floor_amount(ai.balance)


def sells(run):
    return [t for t in run.strategy.trades if t.side is Side.SELL]


def test_paper_stop_gapped_through_fills_at_the_book_after_the_gap_never_above_it(scripted,
                                                                                   paper_run):
    """The trade after 0.0015 is 0.0013, far below the stop at 0.00148: the stop fires at
    that trade and sells into the book as it stands after it, so at or below 0.0013 (the
    market is there now), never at the trigger nor at bids the gap went through."""
    lx = scripted([0.0015, 0.0013] + [0.0013] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    held = buy(run, 300.0)
    assert run.call("stop_order", SYM, held, 0.00148) is missing
    step_until(lx, run, lambda: sells(run))
    (sell,) = sells(run)
    (fired,) = trace.of("order_triggered")
    assert fired["price"] == 0.0013 and sell.taker and sell.amount == held
    assert 0.0013 * 0.99 < sell.price <= 0.0013
    assert run.strategy.assets[0].committed == 0 and run.strategy.errors == []


def test_paper_stop_limit_fires_rests_at_its_limit_then_fills_from_trades(scripted, paper_run):
    """A stop at 0.00148 with a limit at 0.00147: the gap to 0.0014 fires it where the book
    bids below its limit, so it rests as a limit (nothing taken); the trade back at
    0.00148 crosses it and fills it at its limit, as a maker."""
    lx = scripted([0.0015, 0.0014, 0.00142, 0.00148] + [0.00148] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    held = buy(run, 300.0)
    assert run.call("stop_order", SYM, held, 0.00148, limit=0.00147) is missing
    (stop,) = run.strategy.assets[0].orders.values()
    assert stop.type is OrderType.STOP_LIMIT
    step_until(lx, run, lambda: stop.triggered)
    assert stop.is_open and not sells(run)  # resting at 0.00147 under a market at 0.0014
    step_until(lx, run, lambda: sells(run))
    (sell,) = sells(run)
    assert sell.price == 0.00147 and not sell.taker and sell.amount == held
    assert [f["price"] for f in trace.of("order_triggered")] == [0.0014]
    eventually(lambda: not run.strategy.assets[0].orders)


def test_paper_stop_limit_that_fired_and_rests_unfilled_is_cancelled(scripted, paper_run):
    lx = scripted([0.0015, 0.0014] + [0.0014] * 30)
    run = start(paper_run, lx)
    held = buy(run, 300.0)
    assert run.call("stop_order", SYM, held, 0.00148, limit=0.00147) is missing
    (stop,) = run.strategy.assets[0].orders.values()
    step_until(lx, run, lambda: stop.triggered)
    assert run.call("cancel_orders", SYM) is True
    ai = run.strategy.assets[0]
    assert not ai.orders and ai.committed == 0 and not sells(run)
    for _ in range(3):
        lx.step(STEP)
    assert never(lambda: sells(run), 0.5)


@pytest.mark.parametrize("limit", [None, 0.00155])
def test_paper_take_profit_fires_on_the_rise_and_sells(scripted, paper_run, limit):
    """A sell take-profit at 0.00155 fires on the first trade at or above it (0.00156,
    not 0.00154): as a market order into the book's bids, or with a limit at 0.00155 taking
    the bids at or above it."""
    lx = scripted([0.00152, 0.00154, 0.00156] + [0.00156] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    held = buy(run, 300.0)
    assert run.call("take_profit_order", SYM, held, 0.00155, limit=limit) is missing
    (tp,) = run.strategy.assets[0].orders.values()
    assert tp.type is (OrderType.TAKE_PROFIT_MARKET if limit is None
                       else OrderType.TAKE_PROFIT_LIMIT)
    step_until(lx, run, lambda: sells(run))
    (fired,) = trace.of("order_triggered")
    assert fired["price"] == 0.00156
    assert all(t.taker and 0.00155 <= t.price <= 0.00156 for t in sells(run))
    eventually(lambda: sum(t.amount for t in sells(run)) == held)


def test_paper_trailing_stop_with_activation_waits_then_follows_the_rally_and_fires(scripted,
                                                                                    paper_run):
    """Activation at 0.00155: 0.00153 leaves it unarmed (no stop); 0.00156 arms it at 2%
    below (0.0015288), the rally to 0.0016 moves it to 0.001568; 0.00157 is above it, the
    fall to 0.00156 fires it."""
    lx = scripted([0.00153, 0.00156, 0.0016, 0.00157, 0.00156] + [0.00156] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    held = buy(run, 300.0)
    assert run.call("trailing_stop_order", SYM, held, percent=0.02, activation=0.00155) is missing
    (stop,) = run.strategy.assets[0].orders.values()
    assert stop.trigger == 0 and stop.activation == 0.00155
    step_until(lx, run, lambda: sells(run))
    moved = [p["trigger"] for p in trace.of("trigger_moved")]
    assert moved == pytest.approx([0.0015288, 0.001568], abs=1e-12)
    (fired,) = trace.of("order_triggered")
    assert fired["price"] == 0.00156
    (sell,) = sells(run)
    assert sell.amount == held and sell.taker and sell.price <= 0.00156


def test_paper_oco_leg_partly_filled_cancels_the_stop_and_the_rest_keeps_resting(scripted,
                                                                                paper_run):
    """An OCO of ~1000 XRP: the trade of 400 at 0.00155 fills 400 of the limit leg; that
    partial fill cancels the stop (as documented: the first fill of either, even a
    partial one), so the crash to 0.0014 after it sells nothing; the limit keeps resting
    for the rest."""
    lx = scripted([0.00151, 0.00155, 0.0015, 0.0014] + [0.0014] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    held = buy(run, 1000.0)
    assert held > 400
    assert run.call("oco_order", SYM, held, price=0.00155, stop=0.00145) is missing
    ai = run.strategy.assets[0]
    legs = {o.type: o for o in ai.orders.values()}
    limit, stop = legs[OrderType.LIMIT], legs[OrderType.STOP_MARKET]
    step_until(lx, run, lambda: sells(run))
    (part,) = sells(run)
    assert part.order_id == limit.id and part.amount == 400 and part.price == 0.00155
    eventually(lambda: not stop.is_open)
    assert stop.status.value == "canceled" and limit.is_open and limit.remaining == held - 400
    step_until(lx, run, lambda: lx.clock.now() > T0 + 4 * STEP)
    assert never(lambda: len(sells(run)) > 1, 0.5) and not trace.of("order_triggered")
    assert limit.is_open and limit.remaining == held - 400  # the rest is unguarded


def test_paper_bracket_exits_touched_in_one_burst_exit_at_the_trade_that_came_first(
        scripted, paper_run):
    """A market entry fills: its exits (a stop at 0.00145, a target at 0.00155) become an
    OCO pair. One burst of trades (stepped at once) goes to 0.00144 then 0.00156: the
    trades come in order, the stop is the first touched: it fires and the target is
    cancelled before the 0.00156 trade could fill it."""
    lx = scripted([0.0015, 0.00144, 0.00156] + [0.00156] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    entry = run.call("bracket_order", SYM, 300.0, stop_loss=0.00145, take_profit=0.00155)
    assert entry and entry.side is Side.BUY
    ai = run.strategy.assets[0]
    eventually(lambda: len(ai.orders) == 2)
    legs = {o.type: o for o in ai.orders.values()}
    stop, target = legs[OrderType.STOP_MARKET], legs[OrderType.LIMIT]
    assert stop.group == target.group and stop.amount == ai.floor_amount(entry.amount - entry.fee)
    lx.step(STEP)
    eventually(lambda: run.session.markets[SYM].last_trade_ts >= T0 + STEP)
    lx.step(2 * STEP)  # 0.00144 and 0.00156 at once
    eventually(lambda: sells(run))
    (sell,) = sells(run)
    assert sell.order_id == stop.id and sell.price <= 0.00144
    eventually(lambda: not target.is_open)
    assert target.filled == 0 and target.status.value == "canceled"
    (fired,) = trace.of("order_triggered")
    assert fired["id"] == stop.id


def test_paper_bracket_entry_cancelled_before_a_fill_never_places_its_exits(scripted, paper_run):
    lx = scripted([0.0015] * 30)
    run = start(paper_run, lx)
    assert run.call("bracket_order", SYM, 300.0, price=0.0014, stop_loss=0.0013,
                    take_profit=0.0016) is missing
    ai = run.strategy.assets[0]
    (entry,) = ai.orders.values()
    assert entry.legs and entry.type is OrderType.LIMIT
    assert run.call("cancel_orders", SYM) is True
    for _ in range(3):
        lx.step(STEP)
    assert never(lambda: ai.orders, 0.5)
    assert ai.committed == 0 and not run.strategy.trades


@pytest.mark.parametrize("action,args", [
    ("stop_order", {"trigger": 0.00148}),
    ("stop_order", {"trigger": 0.00148, "limit": 0.00147}),
    ("take_profit_order", {"trigger": 0.00155}),
    ("take_profit_order", {"trigger": 0.00155, "limit": 0.00154}),
    ("trailing_stop_order", {"offset": 0.00002}),
    ("oco_order", {"price": 0.00155, "stop": 0.00148})])
def test_paper_cancelled_conditional_order_frees_its_funds_and_never_fires(scripted, paper_run,
                                                                           action, args):
    lx = scripted([0.0016, 0.0014] + [0.0014] * 30)  # through every trigger above
    run = start(paper_run, lx)
    held = buy(run, 300.0)
    ai = run.strategy.assets[0]
    assert run.call(action, SYM, held, **args) is missing
    assert ai.orders and ai.committed > 0
    assert run.call("cancel_orders", SYM) is True
    assert not ai.orders and ai.committed == 0
    for _ in range(3):
        lx.step(STEP)
    assert never(lambda: sells(run) or ai.orders, 0.5)
    assert ai.floor_amount(ai.balance) == held


def test_paper_spot_sell_stop_is_limited_to_what_is_held(scripted, paper_run):
    """On spot a sell stop can only sell what the account holds: more is refused at once
    (reduce_only or not), with the reason; what is held is accepted."""
    lx = scripted([0.0015] * 30)
    run = start(paper_run, lx)
    held = buy(run, 300.0)
    assert run.call("stop_order", SYM, held + 100, 0.00148, reduce_only=True) is None
    assert "XRP" in run.strategy.errors[-1]
    assert run.call("stop_order", SYM, held, 0.00148, reduce_only=True) is missing


def test_paper_conditional_run_replays_from_its_trace(scripted, paper_run, tmp_path):
    """Triggers, trailing moves, an OCO cancellation and fills are all in the trace:
    replay_from_trace rebuilds the run's final state exactly."""
    from planarpy.trace import EventTrace, replay_from_trace

    lx = scripted([0.00151, 0.00155, 0.0016, 0.00156, 0.0015, 0.0014] + [0.0014] * 30)
    trace = EventTrace.open(tmp_path / "t", strategy="Idle", exchange="binance")
    run = start(paper_run, lx, trace)
    held = buy(run, 600.0)
    assert run.call("trailing_stop_order", SYM, 300.0, percent=0.02) is missing
    assert run.call("oco_order", SYM, held - 300, price=0.0017, stop=0.00145) is missing
    step_until(lx, run, lambda: len(sells(run)) >= 2)
    eventually(lambda: not run.strategy.assets[0].orders)
    run.stop()
    report = replay_from_trace(run.strategy, tmp_path / "t")
    assert report.ok, str(report)


def test_paper_bracket_burst_target_first_fills_the_target_and_cancels_the_stop(scripted,
                                                                                paper_run):
    """The same burst the other way round (0.00156, then 0.00144): paper takes the trades
    in their order, so the target fills first and its fill cancels the stop; the fall
    after it sells nothing more."""
    lx = scripted([0.0015, 0.00156, 0.00144] + [0.00144] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    entry = run.call("bracket_order", SYM, 300.0, stop_loss=0.00145, take_profit=0.00155)
    assert entry
    ai = run.strategy.assets[0]
    eventually(lambda: len(ai.orders) == 2)
    legs = {o.type: o for o in ai.orders.values()}
    stop, target = legs[OrderType.STOP_MARKET], legs[OrderType.LIMIT]
    lx.step(STEP)
    eventually(lambda: run.session.markets[SYM].last_trade_ts >= T0 + STEP)
    lx.step(2 * STEP)
    eventually(lambda: not ai.orders)
    (sell,) = sells(run)
    assert sell.order_id == target.id and sell.price == 0.00155 and not sell.taker
    assert stop.status.value == "canceled" and not trace.of("order_triggered")


def test_paper_amend_stop_places_the_new_stop_first_and_only_it_fires(scripted, paper_run):
    lx = scripted([0.00151, 0.00152, 0.00149, 0.00146, 0.00147] + [0.00147] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    held = buy(run, 300.0)
    assert run.call("stop_order", SYM, held, 0.00145) is missing
    (old,) = run.strategy.assets[0].orders.values()
    assert run.call("amend_stop", SYM, old.id, 0.00148) is missing
    (new,) = run.strategy.assets[0].orders.values()
    assert new.trigger == 0.00148 and new.group == old.group
    kinds = [(k, p["id"]) for k, p in trace.events
             if k in ("order_created", "order_closed") and p["id"] in (old.id, new.id)]
    assert kinds == [("order_created", old.id), ("order_created", new.id),
                     ("order_closed", old.id)]
    step_until(lx, run, lambda: sells(run))  # 0.00146 fires the new stop (not the old)
    assert [t.order_id for t in sells(run)] == [new.id]


def test_paper_trailing_stop_never_follows_a_trade_older_than_itself(scripted, paper_run):
    """A batch of trades is taken in (`last_trade_ts` moves to its newest) before its
    trades are matched; a trailing stop placed by a `call` in between is marked at that
    newest trade, so the batch's older trades (a spike to 0.0017) are not news to it: it
    neither fires on them nor follows them (it followed the spike, to 0.001666, and the
    batch's last trade, 0.0015, then fired it)."""
    from planarpy.modes.paper import orders as paper_orders

    lx = scripted([0.0015] * 40)
    run = start(paper_run, lx)
    held = buy(run, 1000.0)
    session = run.session
    m = session.markets[SYM]
    with session.engine.locked():
        ts = m.last_trade_ts
        fresh = m.on_trades([{"id": "old-spike", "timestamp": ts + 1, "price": 0.0017,
                              "amount": 1.0},
                             {"id": "newest", "timestamp": ts + 2, "price": 0.0015,
                              "amount": 1.0}])
    assert len(fresh) == 2 and m.last_trade_ts == ts + 2
    assert run.call("trailing_stop_order", SYM, held, percent=0.02) is missing
    (stop,) = run.strategy.assets[0].orders.values()
    armed = stop.trigger
    session.engine.blocking(paper_orders.on_public_trades(session, run.strategy.assets[0],
                                                          fresh), 5)
    assert stop.is_open and not stop.triggered and stop.trigger == armed
    assert sells(run) == [] and run.strategy.errors == []
