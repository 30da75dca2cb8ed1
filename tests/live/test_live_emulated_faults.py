"""Live emulated conditional orders under faults, against the local exchange through the
real ccxt client: stale REST batches, long outages, restarts, an unconfirmed cancel of
the other OCO leg, a cancel between an order's trigger and its send."""

from __future__ import annotations

import pytest

from planarpy import missing
from planarpy.core.orders import OrderType

from livekit import sells, eventually, live, never, raw_client, streaming, user_stream_up
from tapekit import STEP, SYM, T0, Events, exchange_log, step_until


def sold(run):
    """What each order sold: {order id: amount} (a market order may fill in parts)."""
    out = {}
    for t in sells(run):
        out[t.order_id] = out.get(t.order_id, 0.0) + t.amount
    return out


def sends_done(run):
    """Whether the run's fire-and-forget tasks (an emulated order's send among them) have
    all ended: what they were to send is sent, or never will be."""
    return not run.session.engine._fired


def requests(trace, method):
    return [p for p in trace.of("request_sent") if p["method"] == method]


def oco(run, amount=900.0, stop=0.00147):
    """Buy, then an OCO sell: the limit leg (0.0016) on the exchange, the stop leg held by
    the engine. Returns (limit, stop)."""
    run.call("market_order", SYM, 1000.0, side="buy")
    assert run.call("oco_order", SYM, amount, price=0.0016, stop=stop) is missing
    legs = {o.type: o for o in run.strategy.assets[0].orders.values()}
    limit, stop_leg = legs[OrderType.LIMIT], legs[OrderType.STOP_MARKET]
    assert stop_leg.route == "emulated"
    return limit, stop_leg


# ---- 1. the marks: trades from before an order never fire it ---------------------------------
def test_a_stall_batch_of_trades_from_before_the_order_never_fires_it(scripted):
    """The market dipped to 0.0014 before the OCO was placed, then went quiet. The stall
    guard's REST batches hold that dip: they are older than the stop leg (its mark), so
    they neither fire it nor raise trigger_late."""
    lx = scripted([0.0014] + [0.0015] * 5 + [0.0015] * 30)
    lx.step(6 * STEP)  # the dip and the recovery, before the run starts
    trace = Events()
    with live(lx, trace=trace, stall_after=0.3) as run:
        limit, stop = oco(run)
        # two REST batches of the stall guard applied (they apply in turn)
        eventually(lambda: len(requests(trace, "fetch_trades")) >= 2)
        eventually(lambda: len([p for p in trace.of("response_received")
                                if p["method"] == "fetch_trades"]) >= 2)
        assert not stop.triggered and stop.is_open and limit.is_open
        assert not trace.of("trigger_late") and not sells(run)
        # they asked only for the trades after the order's mark
        assert all(p["args"][1] is not None and p["args"][1] > stop.date
                   for p in requests(trace, "fetch_trades"))


@pytest.mark.parametrize("pages", [None, 2])
def test_an_outage_longer_than_a_page_is_checked_whole(scripted, monkeypatch, pages):
    """The public stream is lost; meanwhile the market dips through the emulated stop and
    then trades 1200 times more (over three hours: more than one REST page, and Binance
    answers a `since` query an hour at a time). The catch-up pages through the whole
    range since the order's mark: the dip is found, the stop fires late, with the alert.
    With fewer pages allowed than the range needs (two full pages of 300), the first
    pages and the newest one are checked, and the run is told the range may miss trades."""
    from planarpy.modes.live import emulation
    if pages is not None:
        monkeypatch.setattr(emulation, "PAGES", pages)
        monkeypatch.setattr(emulation, "LIMIT", 300)
    lx = scripted([0.0015, 0.00146] + [0.0015] * 1200 + [0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        limit, stop = oco(run)
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        lx.faults.update({"refuse_ws": True})
        lx.faults.drop_websockets("public")
        eventually(lambda: trace.of("connection_lost"))
        lx.step(1202 * STEP)
        lx.faults.update({"refuse_ws": False})
        eventually(lambda: sells(run), timeout=20)
        eventually(lambda: sold(run) == {stop.id: 900.0})
        (late,) = trace.of("trigger_late")
        assert "0.00146" in late["message"]
        assert [a for a in trace.of("alert") if a["kind"] == "trigger"]
        asked = [p["args"][1] for p in requests(trace, "fetch_trades")]
        gap = [m for w, m in run.strategy.seen_errors if w == "trigger_gap:XRP/ETH"]
        if pages is None:
            assert len(asked) >= 4 and all(since is not None for since in asked) and not gap
        else:
            assert asked[-1] is None and "may be missing" in gap[0]
        eventually(lambda: not limit.is_open)


def test_a_missed_rally_then_fall_through_a_trailing_stop_fires_it_on_catch_up(scripted):
    """Expected: the REST catch-up after a silent stream fires an emulated trailing stop
    that the missed trades, taken in their order, fired (a rally to 0.00157 moves a stop
    trailing 0.00001 to 0.00156; the trade at 0.00153 after it goes through that stop),
    with the trigger_late alert, as the exchange (native), paper (trade by trade) and the
    sim (the 0.00157 candle closes, the 0.00153 one fires it) all would.

    Why: `emulation._catch_up` hands `triggers.catch_up` only the range's min and max, so
    the order of the trades is lost: the stop is checked against its old trigger
    (0.0015, not reached by the low 0.00153), then trailed to the high's 0.00156, and left
    armed above the market. It does not fire, nor does anyone say it may have: the
    position the stop was to close stays open while the price is already through it."""
    lx = scripted([0.00151, 0.00157, 0.00153] + [0.00153] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        trade = run.call("market_order", SYM, 1000.0, side="buy")
        amount = run.strategy.assets[0].floor_amount(trade.amount - trade.fee)
        assert run.call("trailing_stop_order", SYM, amount, offset=0.00001) is not None
        (stop,) = run.strategy.assets[0].orders.values()
        assert stop.route == "emulated"
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        lx.step(STEP)  # 0.00151, streamed: the stop follows to 0.0015
        eventually(lambda: stop.trigger >= 0.0015)
        lx.faults.update({"stall_public": True})
        lx.step(STEP)  # 0.00157, unseen: a real trailing stop moves to 0.00156
        lx.step(STEP)  # 0.00153, unseen: through 0.00156, it fires
        # the REST catch-up after the stall has read both unseen trades
        eventually(lambda: run.session.trigger_seen.get(SYM, 0) >= T0 + 3 * STEP,
                   timeout=15)
        assert (stop.trigger, stop.triggered) != (0.00156, False), \
            "left armed at 0.00156 with the market at 0.00153"
        eventually(lambda: sells(run), timeout=5)
        assert sells(run)[0].order_id == stop.id
        (late,) = trace.of("trigger_late")
        assert f"{stop.id} at 0.00156 may have fired" in late["message"]


def test_a_restart_does_not_fire_a_trailing_stop_on_trades_it_already_followed(scripted,
                                                                                tmp_path):
    """A trailing stop follows a rally to 0.0016 (its stop moves to 0.0015698); the run
    stops and the next one re-arms it. Its mark is the time of its last move: the trades
    at 0.0015 before the rally (below the moved stop) are not news to it, so the catch-up
    after the restart does not fire it; a later fall through the stop does."""
    from planarpy.modes.live import emulation
    from planarpy.trace import EventTrace

    lx = scripted([0.00151, 0.00155, 0.0016, 0.0016, 0.0016, 0.00158, 0.00155]
                  + [0.00155] * 30)
    path = tmp_path / "t"
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as first:
            first.call("market_order", SYM, 1000.0, side="buy")
            assert first.call("trailing_stop_order", SYM, 600.0, offset=0.0000302) is missing
            (stop,) = first.strategy.assets[0].orders.values()
            eventually(lambda: streaming(lx, "xrpeth@trade"))
            for _ in range(3):
                lx.step(STEP)
            eventually(lambda: stop.trigger > 0.00156)
    lx.step(2 * STEP)  # 0.0016 twice while no run watches
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace, stall_after=0.3) as second:
            (again,) = second.strategy.assets[0].orders.values()
            assert again.id == stop.id and not again.triggered
            # the catch-up applied: the stop has been shown the trades up to now
            eventually(lambda: emulation.mark(second.session, again) >= lx.clock.now())
            assert not again.triggered and not sells(second)
            assert not [w for w, _ in second.strategy.seen_errors if w.startswith("trigger")]
            step_until(lx, lambda: sells(second))  # 0.00158, then 0.00155 fires it
            assert set(sold(second)) == {stop.id}
            assert again.trigger == pytest.approx(0.0015698)


def test_a_trigger_reached_while_the_run_was_stopped_fires_late_on_restart(scripted, tmp_path):
    """An emulated stop is left open when a run stops; the market falls through it and
    recovers before the next run starts. The re-armed stop's catch-up (from its creation
    time, in the trace) finds the fall: it fires at once, late, with the alert."""
    from planarpy.trace import EventTrace

    lx = scripted([0.0015, 0.00146, 0.0015, 0.0015] + [0.0015] * 30)
    path = tmp_path / "t"
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as first:
            limit, stop = oco(first)
    lx.step(3 * STEP)
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as second:
            eventually(lambda: sells(second), timeout=10)
            assert sells(second)[0].order_id == stop.id
            (told,) = [m for w, m in second.strategy.seen_errors if w == "trigger_late:XRP/ETH"]
            assert "from 0.00146 to 0.0015" in told


# ---- 2. the other leg's cancel: settled before the send, and sent once -----------------------
def test_the_pairs_other_leg_is_cancelled_once(scripted):
    """When the emulated stop leg fires, one cancel of the limit leg reaches the exchange
    (the emulation is the pair's one canceller), and the exchange's order log shows the
    limit cancelled before the stop's market order exists."""
    lx = scripted([0.0015, 0.00146] + [0.0015] * 30)
    log = exchange_log(lx)
    trace = Events()
    with live(lx, trace=trace) as run:
        limit, stop = oco(run)
        step_until(lx, lambda: sells(run))
        eventually(lambda: not run.strategy.assets[0].orders)
        assert never(lambda: len(requests(trace, "cancel_order")) > 1, 0.3)
        (cancel,) = requests(trace, "cancel_order")
        reports = [(e["c"] if e["x"] != "CANCELED" else e["C"], e["x"]) for e in log
                   if limit.id in (e["c"], e.get("C")) or e["c"] == stop.id]
        assert reports.index((limit.id, "CANCELED")) < reports.index((stop.id, "NEW"))
        assert [x for c, x in reports if c == limit.id].count("CANCELED") == 1


def test_a_fired_stop_answered_with_a_rate_limit_is_sent_again(scripted):
    """When the emulated stop leg fires and the exchange answers its market order with a
    429 (Retry-After 1 s), the order is sent again after the wait, not given up: the
    stop was reached and the position has no other protection."""
    lx = scripted([0.0015, 0.00146] + [0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        limit, stop = oco(run)
        lx.faults.update({"http_status": 429, "http_path": "POST /api/v3/order$",
                          "http_count": 1, "retry_after": 1})
        step_until(lx, lambda: sells(run))
        eventually(lambda: not run.strategy.assets[0].orders)
        assert sold(run) == {stop.id: 900.0}
        # the stop's market order sent twice under its id: the first send answered 429
        sent = [p["args"][-1]["clientOrderId"] for p in requests(trace, "create_order")]
        assert sent.count(stop.id) == 2 and lx.faults.http_status is None


@pytest.mark.parametrize("processed", [False, True])
def test_an_unconfirmed_cancel_of_the_other_leg_holds_the_fired_order(scripted, processed):
    """The cancel of the limit leg gets a 503 (not executed, or executed with the answer
    lost). The fired stop is not sent while the limit may still be on the exchange: the
    leg is asked about by client id and cancelled again until the exchange says it is
    closed; then the stop goes, and the pair sells once."""
    lx = scripted([0.0015, 0.00146] + [0.0015] * 30)
    lx.faults.update({"http_status": 503, "http_path": "DELETE /api/v3/order",
                      "http_processed": processed})
    log = exchange_log(lx)
    trace = Events()
    with live(lx, trace=trace) as run:
        limit, stop = oco(run)
        step_until(lx, lambda: stop.triggered)
        eventually(lambda: [p for p in trace.of("exchange_error")
                            if p.get("method") == "cancel_order"])
        if not processed:
            assert never(lambda: sells(run), 1.0)  # the limit still holds the XRP
            assert limit.is_open and limit.id in {o["clientOrderId"] for o in
                                                  raw_client(lx).fetch_open_orders(SYM)}
            told = [m for w, m in run.strategy.seen_errors if w == "oco:XRP/ETH"]
            assert told and "not confirmed" in told[0]
            lx.faults.update({"http_status": None})
        eventually(lambda: sold(run) == {stop.id: 900.0}, timeout=10)
        assert never(lambda: sold(run) != {stop.id: 900.0}, 0.3)
        assert raw_client(lx).fetch_open_orders(SYM) == []
        xs = [(e["c"] if e["x"] != "CANCELED" else e["C"], e["x"]) for e in log]
        assert xs.index((limit.id, "CANCELED")) < xs.index((stop.id, "NEW"))


# ---- 3. a cancel between the trigger and the send wins ---------------------------------------
def test_a_cancel_between_the_trigger_and_the_send_wins(scripted):
    """The stop leg fires; while the cancel of its limit leg is on its way (the exchange
    answers it 1.5 s late), the strategy cancels the fired stop. That cancel wins: the
    stop is never sent (the exchange never hears of its client id) and nothing is sold."""
    lx = scripted([0.0015, 0.00146] + [0.0015] * 30)
    lx.faults.update({"delay_ms": 1500, "delay_path": "DELETE /api/v3/order",
                      "delay_count": 1})
    log = exchange_log(lx)
    trace = Events()
    with live(lx, trace=trace) as run:
        limit, stop = oco(run)
        step_until(lx, lambda: stop.triggered)
        assert not requests(trace, "create_order")[2:]  # the buy and the limit leg only
        assert run.call("cancel_orders", SYM, ids=[stop.id]) is True
        assert not stop.is_open
        eventually(lambda: not limit.is_open)
        for _ in range(3):
            lx.step(STEP)
        eventually(lambda: sends_done(run))  # the fired stop's send has decided
        assert stop.id not in {e["c"] for e in log}
        assert len(requests(trace, "create_order")) == 2
        assert never(lambda: sells(run), 0.5)


# ---- 4. review findings (l15c) ---------------------------------------------------------------
def quiet_exchange(factory):
    """A local exchange whose XRP/ETH traded at 0.0015 every 10 s for the hour before T0,
    then not at all: a quiet market."""
    import numpy as np

    from planarpy.data.sample import sample_markets
    from planarpy.localexchange import Clock, Feed
    from tapekit import T0
    ts = T0 - STEP * np.arange(360, dtype=np.int64)[::-1]
    feed = Feed(ts, np.full(360, 0.0015), np.full(360, 400.0), np.zeros(360, bool))
    m = sample_markets("binance")[SYM]
    return factory(markets=[m], clock=Clock(start=T0), origin=T0, data={SYM: feed})


def stalls(trace):
    return [p for p in trace.of("exchange_error")
            if p.get("watcher") == "triggers:XRP/ETH" and p.get("error") == "stalled"]


def test_a_quiet_market_costs_one_request_a_stall_and_raises_no_gap(local_exchange_factory):
    """No public trade for 13 hours after the OCO's stop leg was placed. The first stall
    batch pages through the quiet hours (one request an hour, up to the newest page,
    which reaches back before them: no trade can be missing); the marks move to the end
    of the last hour read whole, so each later stall batch asks one or two requests, and
    no trigger_gap is told (before: every stall batch sent 13 requests and the gap)."""
    from planarpy.modes.live import emulation
    from tapekit import T0
    lx = quiet_exchange(local_exchange_factory)
    trace = Events()
    with live(lx, trace=trace, stall_after=0.3) as run:
        limit, stop = oco(run, stop=0.00147)
        lx.step(13 * 3_600_000)
        eventually(lambda: len(stalls(trace)) >= 2, timeout=10)
        eventually(lambda: emulation.mark(run.session, stop) > T0 + 11 * 3_600_000)
        start = len(stalls(trace))
        before = len(requests(trace, "fetch_trades"))
        eventually(lambda: len(stalls(trace)) >= start + 4, timeout=10)
        passes = len(stalls(trace)) - start
        asked = len(requests(trace, "fetch_trades")) - before
        assert asked <= 2 * (passes + 1)
        assert not [w for w, _ in run.strategy.seen_errors if w.startswith("trigger")]
        assert not [a for a in trace.of("alert") if a["kind"] == "trigger"]
        assert stop.is_open and not stop.triggered and limit.is_open


class Ahead:
    """A run's clock reading the exchange's stepped clock plus `lead` ms (set by the test):
    a local clock that runs ahead of the exchange's."""

    speed = None  # it moves when the exchange's is stepped

    def __init__(self, clock):
        self.clock, self.lead = clock, 0

    def now(self):
        return self.clock.now() + self.lead

    def now_ns(self):
        return self.now() * 1_000_000


def test_an_hour_not_ended_on_the_exchange_is_not_taken_as_read(local_exchange_factory):
    """The run's clock runs two hours ahead of the exchange's, which tells its own time
    (/time), as a real exchange does. The stall batches of the emulated stop's watcher
    find no trade after the last one streamed: the hour after it has not ended on the
    exchange, so it is not taken as read, and the fall through the stop that comes next,
    inside that hour, fires it (before: by the run's clock that hour had ended, the marks
    moved past it, and the fall was taken for a trade the stop had already been shown)."""
    from planarpy.data.sample import sample_markets
    from planarpy.localexchange import Clock
    from planarpy.modes.live import emulation
    from tapekit import T0, tape
    lx = local_exchange_factory(markets=[sample_markets("binance")[SYM]], origin=T0,
                                clock=Clock(start=T0, serves_time=True),
                                data={SYM: tape([0.0015, 0.0015, 0.00146] + [0.0015] * 30)})
    clock = Ahead(lx.clock)
    trace = Events()
    with live(lx, clock=clock, trace=trace, stall_after=0.3) as run:
        limit, stop = oco(run)
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        step_until(lx, lambda: run.session.trigger_streamed.get(SYM))  # 0.0015, streamed
        clock.lead = 2 * emulation.HOUR
        start = len(stalls(trace))
        eventually(lambda: len(stalls(trace)) >= start + 2, timeout=10)  # one batch applied
        assert emulation.mark(run.session, stop) <= lx.clock.now()  # none past the exchange's
        step_until(lx, lambda: stop.triggered)  # 0.0015, then 0.00146 fires it
        eventually(lambda: sold(run) == {stop.id: 900.0})
        eventually(lambda: not limit.is_open)


def test_the_stream_fires_while_the_refetch_after_a_loss_keeps_failing(scripted):
    """The public stream is lost and comes back, but the REST re-fetch that must follow
    keeps failing (503 on aggTrades). A trade the stream delivers through the emulated
    stop fires it at once, at that trade (not late): the stream's trades are not thrown
    away while the re-fetch is due (before: each was dropped until REST recovered)."""
    lx = scripted([0.0015, 0.0015, 0.00146] + [0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        limit, stop = oco(run)
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        lx.faults.update({"refuse_ws": True, "http_status": 503, "http_path": "aggTrades"})
        lx.faults.drop_websockets("public")
        eventually(lambda: trace.of("connection_lost"))
        lx.faults.update({"refuse_ws": False})
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        lx.step(STEP)  # 0.0015: the stream is back, its re-fetch fails
        eventually(lambda: trace.of("connection_restored"))
        eventually(lambda: [p for p in trace.of("exchange_error")
                            if p.get("method") == "fetch_trades"])
        step_until(lx, lambda: stop.triggered)  # 0.00146, by the stream
        eventually(lambda: sold(run) == {stop.id: 900.0})
        assert lx.faults.http_status == 503  # REST never came back meanwhile
        assert not trace.of("trigger_late")
        eventually(lambda: not limit.is_open)


def test_a_fill_of_a_buy_ocos_limit_leg_closes_its_stop_leg_in_the_same_step(scripted):
    """A buy OCO: its stop leg (above the market) is placed first, and names the group;
    the limit leg (below) fills. The emulated stop is closed in the same step as that fill is
    applied, before any other event: no trade batch that takes the state lock before the
    group's settle can fire it with an empty pair and buy a second time (before: it stayed
    open until settle_group ran, and its pair did not hold the filled leg)."""
    lx = scripted([0.0015, 0.00139] + [0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        assert run.call("oco_order", SYM, 900.0, side="buy", price=0.0014,
                        stop=0.00155) is missing
        legs = {o.type: o for o in run.strategy.assets[0].orders.values()}
        limit, stop = legs[OrderType.LIMIT], legs[OrderType.STOP_MARKET]
        assert stop.route == "emulated" and stop.group == limit.group == stop.id
        step_until(lx, lambda: not limit.is_open)
        eventually(lambda: not stop.is_open)
        after = [(k, p.get("order_id" if k == "trade_created" else "id"))
                 for k, p in trace.events]
        first = after.index(("trade_created", limit.id))
        assert after[first + 1] == ("order_closed", stop.id)
        assert not stop.triggered and [t.order_id for t in run.strategy.fills] == [limit.id]


def forget(lx, client_id):
    """The exchange forgets a closed order (as Binance archives a cancelled order with no
    fill): a lookup by its client id answers "does not exist" (-2013)."""
    def go():
        e = lx.engine
        o = e.by_client.pop((lx.account().name, client_id))
        e.orders.pop(o.id, None)
        e.resting.pop(o.id, None)
    lx._call(go)


def test_a_leg_the_exchange_does_not_know_is_closed_and_the_fired_order_goes(scripted):
    """The limit leg was cancelled on the exchange by hand while the run heard nothing,
    and the exchange forgot it. When the stop leg fires, the cancel of the limit is
    refused as unknown (-2011) and the lookup says "does not exist": the leg is closed
    here (not on the exchange, and the run is told) and the fired stop goes, once (before:
    the canceller asked and cancelled again every second, and the stop never went)."""
    lx = scripted([0.0015, 0.00146] + [0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        limit, stop = oco(run)
        user_stream_up(lx)
        lx.faults.update({"withhold_user": True})
        raw_client(lx).cancel_order(None, SYM, {"origClientOrderId": limit.id})
        forget(lx, limit.id)
        lx.faults.update({"withhold_user": False})
        assert limit.is_open
        step_until(lx, lambda: stop.triggered)
        eventually(lambda: sold(run) == {stop.id: 900.0})
        assert not limit.is_open
        (closed,) = [p for p in trace.of("order_closed") if p["id"] == limit.id]
        assert closed["reason"] == "not on the exchange"
        assert [w for w, _ in run.strategy.seen_errors if w == "cancel:XRP/ETH"]
        assert len(requests(trace, "cancel_order")) == 1


def sold_late(lx, path, order, amount):
    """Run again on the trace at `path` until `order` has sold `amount`; the run, and what
    it was told (its one trigger_late)."""
    from planarpy.trace import EventTrace
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as run:
            eventually(lambda: sold(run) == {order.id: amount}, timeout=10)
            (told,) = [m for w, m in run.strategy.seen_errors if w == "trigger_late:XRP/ETH"]
    return run, told


def test_a_stop_that_fired_and_was_never_sent_is_sent_after_a_restart(scripted, tmp_path):
    """The stop leg fires, but the cancel of its limit leg gets 503s (not executed): the
    run stops while the stop waits for it. The next run finds the stop fired, and the
    exchange knows no order by its id: it was never sent. The limit leg is cancelled and
    the stop sent now, with the alert (before: it was closed as "not on the exchange",
    silently, and the position stayed without its stop)."""
    from planarpy.trace import EventTrace

    lx = scripted([0.0015, 0.00146] + [0.0015] * 30)
    path = tmp_path / "t"
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        # its stop waits waitfor + 5 s for the fired stop's send: a short waitfor
        with live(lx, trace=trace, waitfor=0.5) as first:
            limit, stop = oco(first)
            lx.faults.update({"http_status": 503, "http_path": "DELETE /api/v3/order"})
            step_until(lx, lambda: stop.triggered)
            eventually(lambda: [w for w, _ in first.strategy.seen_errors if w == "oco:XRP/ETH"])
            assert not sells(first)
    lx.faults.update({"http_status": None})
    second, told = sold_late(lx, path, stop, 900.0)
    assert "never sent" in told
    assert raw_client(lx).fetch_open_orders(SYM) == []
    assert not second.strategy.assets[0].orders


@pytest.mark.parametrize("lookup", ["does not exist", "503"])
def test_a_carried_order_the_exchange_does_not_know_is_closed_on_restart(scripted, tmp_path,
                                                                         lookup):
    """A run stops with a limit order open; it is cancelled by hand and the exchange forgets
    it. The next run carries it over and asks about it: "does not exist" closes it (not on
    the exchange, unlike a fired emulated order, which is sent); an exchange it could not
    ask (503) leaves it open, for the reconciliation, and the run is told ("resume")."""
    from planarpy.trace import EventTrace, trace_tail

    lx = scripted([0.0015] * 30)
    path = tmp_path / "t"
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as first:
            assert first.call("limit_order", SYM, 900.0, 0.0010, side="buy") is missing
            (order,) = first.strategy.assets[0].orders.values()
    raw_client(lx).cancel_order(None, SYM, {"origClientOrderId": order.id})
    forget(lx, order.id)
    if lookup == "503":
        lx.faults.update({"http_status": 503, "http_path": "GET /api/v3/order"})
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as second:
            told = [w for w, _ in second.strategy.seen_errors if w == "resume"]
            left = list(second.strategy.assets[0].orders)
    closed = [p for p in (e["payload"] for e in trace_tail(path, 100, "order_closed"))
              if p["id"] == order.id]
    if lookup == "503":
        assert told and left == [order.id] and not closed
    else:
        assert not told and left == []
        assert [p["reason"] for p in closed] == ["not on the exchange"]


def test_a_cancel_of_a_fired_order_waiting_for_its_pair_is_known_at_once(scripted):
    """The stop leg fired; its limit leg's cancel gets 503s, so the stop waits, unsent.
    The strategy cancels the stop: it is on no exchange, so the cancel is done at once
    and says so (True), even with waitfor=0 (before: it waited for the send and answered
    False, though the stop could never be sent). Once the limit's cancel gets through,
    nothing is sold."""
    lx = scripted([0.0015, 0.00146] + [0.0015] * 30)
    log = exchange_log(lx)
    with live(lx) as run:
        limit, stop = oco(run)
        lx.faults.update({"http_status": 503, "http_path": "DELETE /api/v3/order"})
        step_until(lx, lambda: stop.triggered)
        eventually(lambda: [w for w, _ in run.strategy.seen_errors if w == "oco:XRP/ETH"])
        assert run.call("cancel_orders", SYM, ids=[stop.id], waitfor=0.0) is True
        assert not stop.is_open
        lx.faults.update({"http_status": None})
        eventually(lambda: not limit.is_open)
        eventually(lambda: sends_done(run))  # the fired stop's send has decided
        assert stop.id not in {e["c"] for e in log}
        assert never(lambda: sells(run), 0.5)


def test_a_restart_re_arms_a_trailing_stop_from_the_trade_that_moved_it(scripted, tmp_path):
    """A trailing stop's move on the rally to 0.0016 is applied late (the state lock is
    held meanwhile), when the exchange's clock is already at the next trade, a fall to
    0.00155 through the moved stop that the stream does not deliver (stalled); the run
    then stops. The next run re-arms the stop from the exchange time of the trade that
    moved it, so its catch-up finds the fall: it fires, late, with the alert (before: its
    mark was the time the move was applied, and the fall, at or before it, was skipped)."""
    from planarpy.trace import EventTrace

    lx = scripted([0.00151, 0.0016, 0.00155] + [0.0016] * 30)
    path = tmp_path / "t"
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace, stall_after=60.0) as first:
            first.call("market_order", SYM, 1000.0, side="buy")
            assert first.call("trailing_stop_order", SYM, 600.0, offset=0.0000302) is missing
            (stop,) = first.strategy.assets[0].orders.values()
            eventually(lambda: streaming(lx, "xrpeth@trade"))
            step_until(lx, lambda: stop.trigger > 0.001479)  # 0.00151
            streamed = first.session.trigger_streamed
            with first.session.engine.locked():
                lx.step(STEP)  # 0.0016: streamed, waiting for the lock
                eventually(lambda: streamed.get(SYM) == lx.clock.now())
                lx.faults.update({"stall_public": True})
                lx.step(STEP)  # 0.00155, not streamed
            eventually(lambda: stop.trigger > 0.00156)
            assert not stop.triggered
    lx.faults.update({"stall_public": False})
    _, told = sold_late(lx, path, stop, 600.0)
    assert "0.00155" in told
