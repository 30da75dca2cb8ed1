"""Conditional orders in live mode against the local exchange, through the real ccxt client:
native on the exchange where the venue holds the type, emulated by the engine otherwise."""

from __future__ import annotations

import threading

import pytest

from planarpy import Side, missing
from planarpy.core.orders import OrderType

from livekit import sells, eventually, live, never, raw_client, streaming
from tapekit import STEP, SYM, T0, Events, exchange_log, step_until


def bought(run, trade):
    """What a market buy left to sell (the fee is taken in the base on Binance spot)."""
    return run.strategy.assets[0].floor_amount(trade.amount - trade.fee)


def stop_reports(log):
    """(client id, execution type) of each STOP_LOSS report in `log`."""
    return [(e["c"] if e["x"] != "CANCELED" else e["C"], e["x"]) for e in log
            if e["o"] == "STOP_LOSS"]


def amend(run):
    """Buy, place a native stop at 0.00145 and move it to 0.00148: (old, new)."""
    amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
    assert run.call("stop_order", SYM, amount, 0.00145) is missing
    (old,) = run.strategy.assets[0].orders.values()
    assert run.call("amend_stop", SYM, old.id, 0.00148) is missing
    (new,) = run.strategy.assets[0].orders.values()
    assert new.id != old.id and new.trigger == 0.00148 and new.route == "native"
    return old, new


def test_live_spot_stop_is_native_on_the_exchange_and_fills_there(scripted):
    lx = scripted([0.00151, 0.00152, 0.00149, 0.00146, 0.00147] + [0.00147] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("stop_order", SYM, amount, 0.00148) is missing
        (stop,) = run.strategy.assets[0].orders.values()
        assert stop.route == "native" and stop.type is OrderType.STOP_MARKET
        created = [p for p in trace.of("order_created") if p["id"] == stop.id]
        assert created[0]["route"] == "native"
        ex = raw_client(lx)
        (on_exchange,) = ex.fetch_open_orders(SYM)
        assert on_exchange["info"]["type"] == "STOP_LOSS" and on_exchange["triggerPrice"] == 0.00148
        assert on_exchange["info"]["clientOrderId"] == stop.id
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.side is Side.SELL and sell.amount == amount
        eventually(lambda: not run.strategy.assets[0].orders)
        assert run.strategy.errors == []


def test_live_trailing_stop_is_emulated_and_sent_when_it_fires(scripted):
    """A trailing stop by a price offset (Binance spot trails by a percentage only): the
    engine holds it, follows the public trades, and sends a market sell under the order's
    own id when it fires."""
    lx = scripted([0.00151, 0.00155, 0.00160, 0.00158, 0.00155, 0.00150] + [0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("trailing_stop_order", SYM, amount, offset=0.000032) is missing
        (stop,) = run.strategy.assets[0].orders.values()
        assert stop.route == "emulated"
        ex = raw_client(lx)
        assert ex.fetch_open_orders(SYM) == []  # nothing on the exchange while it waits
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.side is Side.SELL and sell.taker
        (fired,) = trace.of("order_triggered")
        assert fired["price"] == 0.00155 and fired["client_id"] == stop.id
        assert fired["trigger"] == pytest.approx(0.001568, abs=1e-12)
        (sent,) = [t for t in ex.fetch_my_trades(SYM) if t["side"] == "sell"]
        order = ex.fetch_order(sent["order"], SYM)
        assert order["info"]["clientOrderId"] == stop.id and order["type"] == "market"
        eventually(lambda: not run.strategy.assets[0].orders)


def test_a_live_trailing_stop_trails_from_the_market_not_from_the_last_candle_close(scripted):
    """Expected: a sell trailing stop by an offset of 0.00002 placed while the market
    trades at 0.00145 stands at (or below) 0.00143, and a next trade at the same 0.00145
    does not fire it (Binance's own trailing stop trails from its price at placement).

    Why: `contingent.place_trailing` arms it from `executor.mark(ai)`, which in live and
    paper is the close of the candle the strategy last ticked (runtime/executor.py
    `SessionExecutor.mark`): up to a whole timeframe old. Here that close is 0.0015, so
    the stop is set at 0.00148, above the market, and the first trade sells the position
    at once. The same stale mark lets through a stop the price has already passed (the
    immediate-trigger check of `stop_order`), which then also fires at once. On a 1h or
    1d strategy the gap between the last close and the market is large."""
    lx = scripted([0.00146, 0.00145] + [0.00145] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        trade = run.call("market_order", SYM, 1000.0, side="buy")
        amount = run.strategy.assets[0].floor_amount(trade.amount - trade.fee)
        lx.step(STEP)  # 0.00146
        lx.step(STEP)  # 0.00145: the market now; the last candle closed at 0.0015
        assert run.call("trailing_stop_order", SYM, amount, offset=0.00002) is not None
        (stop,) = run.strategy.assets[0].orders.values()
        assert stop.route == "emulated"
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        lx.step(STEP)  # 0.00145 again: the market has not moved
        eventually(lambda: run.session.trigger_seen.get(SYM, 0) >= T0 + 3 * STEP)
        assert stop.trigger <= 0.00143 + 1e-12, f"armed at {stop.trigger}, market 0.00145"
        assert not stop.triggered and not trace.of("order_triggered") and not sells(run)


def test_a_live_stop_the_market_has_passed_is_refused_at_the_market_price(scripted):
    """An OCO's stop leg (held by the engine) at 0.00147, with the market at 0.00145 and
    the last candle's close at 0.0015, would fire at once: refused, as Binance refuses
    it. The price it is checked at is the exchange's last price (its ticker) while the
    run streams no trades of the asset, then the newest trade its stream brought."""
    lx = scripted([0.00146, 0.00145] + [0.00145] * 30)
    trace = Events()
    tickers = lambda: [r for r in trace.of("request_sent")  # noqa: E731
                       if r["method"] == "fetch_ticker"]
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        lx.step(STEP)
        lx.step(STEP)
        oco = dict(price=0.0016, stop=0.00147)
        assert run.call("oco_order", SYM, amount, **oco) is None
        assert "would trigger immediately" in run.strategy.errors[-1] and len(tickers()) == 1
        # an emulated order: the run streams the asset's trades from here on (the
        # trailing stop is armed at the ticker's price: a second request)
        assert run.call("trailing_stop_order", SYM, amount, offset=0.00002) is missing
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        lx.step(STEP)
        eventually(lambda: run.session.trigger_seen.get(SYM, 0) >= T0 + 3 * STEP)
        assert run.call("oco_order", SYM, amount, **oco) is None
        assert "would trigger immediately" in run.strategy.errors[-1] and len(tickers()) == 2
        assert not sells(run) and len(run.strategy.assets[0].orders) == 1


def test_a_restart_rearms_the_emulated_orders_left_open(scripted, tmp_path):
    """A run stops (on_stop "keep") with an emulated trailing stop open; the next run on
    the same trace creates it again (the same id and stop) and fires it."""
    from planarpy.trace import EventTrace

    lx = scripted([0.00151, 0.0015, 0.00149, 0.00146, 0.00145] + [0.00145] * 30)
    path = tmp_path / "t"
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as first:
            amount = bought(first, first.call("market_order", SYM, 1000.0, side="buy"))
            assert first.call("trailing_stop_order", SYM, amount, offset=0.0000302) is missing
            (stop,) = first.strategy.assets[0].orders.values()
            lx.step(STEP)  # 0.00151: the stop follows to 0.0014798
            eventually(lambda: stop.trigger > 0.00147)
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as second:
            (again,) = second.strategy.assets[0].orders.values()
            assert (again.id, again.route, again.type) == (stop.id, "emulated",
                                                           OrderType.TRAILING_STOP)
            assert again.trigger == stop.trigger and second.state()["assets"][SYM]["orders"]
            step_until(lx, lambda: sells(second))
            (sell,) = sells(second)
            assert sell.order_id == stop.id and sell.amount == amount


def test_an_emulated_stop_reached_while_the_stream_is_silent_fires_late_and_alerts(scripted):
    """The public trades stream delivers a trade (the stop follows it), then goes silent
    while the price falls through the emulated trailing stop; the REST fetch after the
    stall holds trades the stream did not deliver, and shows where the market went: the
    stop fires at once, at the market, and the run is told (trigger_late)."""
    lx = scripted([0.00151, 0.0015, 0.00149, 0.00146, 0.00145] + [0.00145] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("trailing_stop_order", SYM, amount, offset=0.0000302) is missing
        (stop,) = run.strategy.assets[0].orders.values()
        eventually(lambda: streaming(lx, "xrpeth@trade"))
        lx.step(STEP)  # 0.00151, streamed: the stop follows to 0.0014798
        eventually(lambda: stop.trigger > 0.00147)
        lx.faults.update({"stall_public": True})
        for _ in range(3):  # 0.0015, 0.00149, 0.00146: through the stop, unseen
            lx.step(STEP)
        eventually(lambda: sells(run), timeout=15)
        (late,) = trace.of("trigger_late")
        assert "may have fired while the stream was down" in late["message"]
        assert [w for w, _ in run.strategy.seen_errors if w == "trigger_late:XRP/ETH"]
        (alert,) = [a for a in trace.of("alert") if a["kind"] == "trigger"]
        assert alert["message"] == late["message"] and alert["details"] == {"symbol": SYM}
        (sell,) = sells(run)
        assert sell.amount == amount


def test_a_native_stop_that_fires_while_the_user_stream_is_silent_is_found_by_rest(scripted):
    lx = scripted([0.00151, 0.00152, 0.00149, 0.00146, 0.00147] + [0.00147] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("stop_order", SYM, amount, 0.00148) is missing
        (stop,) = run.strategy.assets[0].orders.values()
        lx.faults.update({"stall_user": True})
        for _ in range(4):  # the exchange fires and fills the stop; no stream says so
            lx.step(STEP)
        eventually(lambda: sells(run), timeout=15)
        assert sells(run)[0].order_id == stop.id
        sources = {m["source"] for m in trace.of("exchange_message")
                   if m["events"] and "trade_created" in m["events"]
                   and m["data"].get("side") == "sell"}
        assert sources == {"rest"}


def test_amending_a_native_stop_uses_cancel_replace_so_a_stop_is_always_there(scripted):
    """amend_stop on Binance spot is one cancelReplace: the exchange's own order log (its
    user stream, in order) shows the new stop's NEW right after the old one's CANCELED,
    within one engine step, with no trade between; the base stays held throughout."""
    lx = scripted([0.00151, 0.00152, 0.00149, 0.00146, 0.00147] + [0.00147] * 30)
    log = exchange_log(lx)
    with live(lx) as run:
        old, new = amend(run)
        stops = stop_reports(log)
        assert stops == [(old.id, "NEW"), (old.id, "CANCELED"), (new.id, "NEW")]
        assert raw_client(lx).fetch_balance()["XRP"]["used"] == old.amount
        step_until(lx, lambda: sells(run))  # 0.00146 fires the new stop (not the old)
        assert sells(run)[0].order_id == new.id


def falls_while_it_waits(lx, trace, method):
    """Start a thread that steps the tape twice (0.0015, then 0.00146) once the run has
    sent `method`, which the exchange executes late (`delay_ms`): the market moves
    between the run's check of a new stop (at 0.0015) and the exchange's."""
    def go():
        eventually(lambda: any(p.get("method") == method for p in trace.of("request_sent")),
                   10)
        lx.step(2 * STEP)

    lx.faults.update({"delay_ms": 1500, "delay_path": "cancelReplace", "delay_count": 1})
    stepper = threading.Thread(target=go)
    stepper.start()
    return stepper


def test_a_replacement_refused_after_the_cancel_puts_a_stop_back(scripted):
    """Expected: when amend_stop's cancelReplace cancels the old native stop and the
    exchange then refuses the new one (here: it would trigger immediately: the market
    fell from 0.0015, where the run checked the new stop at 0.00147, to 0.00146 while the
    request was on its way), the run places the old stop again
    (orders._replant) and says so; the exchange holds a stop for the position, and the
    state agrees with the exchange.

    Why: ccxt raises Binance spot's -2021 as ccxt.BadResponse, which is not among
    `orders.REFUSED` (live/orders.py), so `replace` takes it for "no answer": the new
    stop goes UNKNOWN and the old one is found cancelled, and the "partially failed"
    branch that re-places it is never reached. The position is left with no stop on the
    exchange (amending "must never leave the position unprotected")."""
    lx = scripted([0.0015, 0.00146] + [0.00146] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        trade = run.call("market_order", SYM, 1000.0, side="buy")
        amount = run.strategy.assets[0].floor_amount(trade.amount - trade.fee)
        run.call("stop_order", SYM, amount, 0.0014)
        (old,) = run.strategy.assets[0].orders.values()
        assert old.route == "native"
        stepper = falls_while_it_waits(lx, trace, "edit_order")
        assert run.call("amend_stop", SYM, old.id, 0.00147) is None
        stepper.join()
        ex = raw_client(lx)
        try:
            (stop,) = eventually(lambda: [o for o in ex.fetch_open_orders(SYM)
                                          if o["info"]["type"] == "STOP_LOSS"], timeout=5)
        except AssertionError:
            here = [(o.id, o.status.value) for o in run.strategy.assets[0].orders.values()]
            raise AssertionError(f"no stop on the exchange; the run's orders: {here}; "
                                 f"told: {run.strategy.seen_errors}") from None
        mine = eventually(lambda: [o for o in run.strategy.assets[0].orders.values()
                                   if o.is_open and o.id == stop["clientOrderId"]])
        assert mine[0].trigger == float(stop["triggerPrice"]) == old.trigger
        assert [o.id for o in run.strategy.assets[0].orders.values()] == [mine[0].id]
        assert any(f"cancelled stop {old.id}: placed again as {mine[0].id}" in e
                   for e in run.strategy.errors), run.strategy.errors


def amend_refused_after_the_cancel(lx, run, trace, faults):
    """Buy, place a stop, switch `faults` on, and amend the stop while the market falls
    through the new trigger (the exchange cancels the old stop and refuses the new one);
    the old stop and the one open after the amend (put back), like it."""
    ai = run.strategy.assets[0]
    run.call("stop_order", SYM, bought(run, run.call("market_order", SYM, 1000.0, side="buy")),
             0.0014)
    (old,) = ai.orders.values()
    lx.faults.update(faults)
    stepper = falls_while_it_waits(lx, trace, "edit_order")
    assert run.call("amend_stop", SYM, old.id, 0.00147) is None
    stepper.join()
    (again,) = ai.orders.values()
    assert again.is_open and again.trigger == old.trigger and again.id != old.id
    return old, again


def test_a_replacement_refused_after_the_cancel_with_the_answer_lost_puts_a_stop_back(scripted):
    """As above, but the cancelReplace's answer is lost (a 503 after the exchange executed
    it): the old stop, looked up, is found cancelled, so the request was executed and the
    new stop's fate is decided; the lookup that finds no such order settles it as never
    placed at once (no submit window to wait out), and the old stop is placed again."""
    lx = scripted([0.0015, 0.00146] + [0.00146] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        old, again = amend_refused_after_the_cancel(lx, run, trace, {
            "http_status": 503, "http_path": "POST /api/v3/order/cancelReplace",
            "http_count": 1, "http_processed": True})
        assert list(on_exchange(lx)) == [again.id]
        assert any(f"was never placed: placed again as {again.id}" in e
                   for e in run.strategy.errors), run.strategy.errors


def test_a_stop_put_back_after_a_failed_replacement_waits_out_a_rate_limit(scripted):
    """As above, and the exchange answers the stop put back with a 429 (Retry-After 1 s):
    the stop is sent again after the wait, not given up at once, because the position
    has no stop on the exchange until it is placed."""
    lx = scripted([0.0015, 0.00146] + [0.00146] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        old, again = amend_refused_after_the_cancel(lx, run, trace, {
            "http_status": 429, "http_path": "POST /api/v3/order$", "http_count": 1,
            "retry_after": 1})
        # the 429 was answered to the stop put back (count 0), which was sent again (the
        # fault clears at the next request it would match)
        assert lx.faults.http_count is None and lx.faults.http_status is None
        assert list(on_exchange(lx)) == [again.id]
        assert any(f"cancelled stop {old.id}: placed again as {again.id}" in e
                   for e in run.strategy.errors), run.strategy.errors


def test_a_cancel_replace_whose_cancel_fails_places_nothing_and_looks_the_old_stop_up(scripted):
    """The old stop is no longer open on the exchange (cancelled by hand; the run has not
    heard: its user stream drops events), so the cancelReplace's cancel fails and the new
    stop is not tried (-2022, which ccxt raises as BadResponse): the new stop is refused,
    not unknown, and the old one is looked up and closed as the exchange has it."""
    lx = scripted([0.0015] * 30)
    with live(lx) as run:
        ai = run.strategy.assets[0]
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        run.call("stop_order", SYM, amount, 0.00145)
        (old,) = ai.orders.values()
        lx.faults.update({"withhold_user": True})
        ex = raw_client(lx)
        ex.cancel_order(None, SYM, {"origClientOrderId": old.id})
        assert run.call("amend_stop", SYM, old.id, 0.00148) is None
        assert not ai.orders and old.status.value == "canceled" and not on_exchange(lx)
        assert any("cancel-replace failed" in e for e in run.strategy.errors)


def test_cancelling_an_emulated_stop_is_local_and_it_never_fires(scripted):
    lx = scripted([0.00151, 0.0015, 0.00149, 0.00146, 0.00145] + [0.00145] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("trailing_stop_order", SYM, amount, offset=0.0000302) is missing
        requests = len(trace.of("request_sent"))
        assert run.call("cancel_orders", SYM) is True
        assert not run.strategy.assets[0].orders and run.strategy.assets[0].committed == 0
        assert [p["method"] for p in trace.of("request_sent")[requests:]] == []
        for _ in range(5):
            lx.step(STEP)
        assert never(lambda: sells(run), 1.0)


def test_live_oco_limit_leg_on_the_exchange_stop_leg_emulated(scripted):
    """An OCO pair on spot: the limit leg rests on the exchange; the stop leg is held by
    the engine (both on the exchange would hold the base twice). When the stop fires, the
    limit leg is cancelled on the exchange first, then the market sell goes."""
    lx = scripted([0.00151, 0.0015, 0.00149, 0.00146, 0.00145] + [0.00145] * 30)
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("oco_order", SYM, amount, price=0.0016, stop=0.00147) is missing
        legs = {o.type: o for o in run.strategy.assets[0].orders.values()}
        limit, stop = legs[OrderType.LIMIT], legs[OrderType.STOP_MARKET]
        assert stop.route == "emulated" and limit.group == stop.group
        ex = raw_client(lx)
        (resting,) = ex.fetch_open_orders(SYM)
        assert resting["info"]["clientOrderId"] == limit.id
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.amount == amount
        assert ex.fetch_order(resting["id"], SYM)["status"] == "canceled"
        eventually(lambda: not run.strategy.assets[0].orders)


# ---- per type on spot: trigger, fill price, cancellation -------------------------------------
def on_exchange(lx):
    """The open orders the exchange holds, by client id."""
    return {o["info"]["clientOrderId"]: o for o in raw_client(lx).fetch_open_orders(SYM)}


def test_live_native_stop_gapped_through_fills_at_the_exchange_book_after_the_gap(scripted):
    """The trade after 0.0015 is 0.0013, far below the native stop at 0.00148: the exchange
    fires it at that trade and sells into its book as it stands then, at or below 0.0013."""
    lx = scripted([0.0015, 0.0013] + [0.0013] * 30)
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        assert run.call("stop_order", SYM, amount, 0.00148) is missing
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.amount == amount and 0.0013 * 0.99 < sell.price <= 0.0013
        eventually(lambda: not run.strategy.assets[0].orders)
        assert run.strategy.errors == []


def test_live_emulated_stop_gapped_through_sells_at_the_book_after_the_gap(scripted):
    """The same gap (0.0015, then 0.0013) through an OCO's stop leg at 0.00148, which the
    engine holds: it fires on the trade at 0.0013, cancels the limit leg on the exchange,
    and its market sell fills at the book after the gap, at or below 0.0013, never at the
    trigger."""
    lx = scripted([0.0015, 0.0013] + [0.0013] * 30)
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        assert run.call("oco_order", SYM, amount, price=0.00155, stop=0.00148) is missing
        stop = next(o for o in run.strategy.assets[0].orders.values() if o.is_conditional)
        assert stop.route == "emulated"
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.amount == amount
        assert 0.0013 * 0.99 < sell.price <= 0.0013
        eventually(lambda: not run.strategy.assets[0].orders)
        assert on_exchange(lx) == {} and run.strategy.errors == []


def test_live_native_stop_limit_fires_rests_on_the_exchange_then_fills(scripted):
    """STOP_LOSS_LIMIT at 0.00148, limit 0.00147: the gap to 0.0014 fires it on the
    exchange, where it rests at its limit (the bids are below it); the trade back at
    0.00148 fills it there, at 0.00147."""
    lx = scripted([0.0015, 0.0014, 0.00142, 0.00148] + [0.00148] * 30)
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        assert run.call("stop_order", SYM, amount, 0.00148, limit=0.00147) is missing
        (stop,) = run.strategy.assets[0].orders.values()
        assert stop.route == "native" and on_exchange(lx)[stop.id]["info"]["type"] == \
            "STOP_LOSS_LIMIT"
        step_until(lx, lambda: on_exchange(lx)[stop.id]["info"]["isWorking"])
        assert not sells(run) and stop.is_open
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.price == 0.00147 and sell.amount == amount
        eventually(lambda: not run.strategy.assets[0].orders)


def test_live_native_stop_limit_fired_and_resting_is_cancelled_on_the_exchange(scripted):
    lx = scripted([0.0015, 0.0014] + [0.0014] * 30)
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        assert run.call("stop_order", SYM, amount, 0.00148, limit=0.00147) is missing
        (stop,) = run.strategy.assets[0].orders.values()
        step_until(lx, lambda: on_exchange(lx)[stop.id]["info"]["isWorking"])
        assert run.call("cancel_orders", SYM) is True
        assert on_exchange(lx) == {} and not run.strategy.assets[0].orders
        assert raw_client(lx).fetch_balance()["XRP"]["used"] == 0
        assert not sells(run)


def test_a_spot_stop_placed_by_hand_is_adopted_as_a_native_stop(scripted):
    """Expected: a spot STOP_LOSS found open on the exchange at start-up (placed by hand,
    or left by a run whose trace this one does not have) is adopted as what it is: a
    native stop-market sell with its trigger, as USD-M's algo stops are
    (test_live_conditional_usdm::test_a_stop_placed_by_hand_on_the_exchange_is_adopted_as_a_native_stop).

    Why: `translate.order_payload` (live/translate.py) knows only "market" and "limit",
    and only an algo report (USD-M) gets `algo_payload`; ccxt calls a spot STOP_LOSS
    "market", so the stop is adopted as an open MARKET sell at price 0, with no trigger
    and no route. The issue names this very defect ("be adopted as a limit in live").
    The state then shows a resting market order for what is a stop: the strategy, the
    risk checks and amend_stop (which refuses it as no stop) see the wrong order."""
    lx = scripted([0.0015] * 30)
    ex = raw_client(lx)
    bought = ex.create_order(SYM, "market", "buy", 1000.0)
    held = float(ex.fetch_balance()["XRP"]["free"])
    placed = ex.create_order(SYM, "market", "sell", held, None, {"stopLossPrice": 0.00145})
    assert bought and placed["clientOrderId"]
    with live(lx, hand_orders="adopt") as run:
        (stop,) = run.strategy.assets[0].orders.values()
        assert (stop.id, stop.type, stop.trigger, stop.route) == (
            placed["clientOrderId"], OrderType.STOP_MARKET, 0.00145, "native"), \
            f"adopted as {stop.type.value} at {stop.price}"


def test_a_fired_spot_stop_limit_found_at_start_up_is_adopted_fired_and_followed(scripted):
    """A spot STOP_LOSS_LIMIT placed by hand that fired before the run started (it works
    at its limit, `isWorking`) is adopted as a native stop-limit that has fired: a resting
    limit at 0.00147 that no trigger fires again. The run follows it to its fill."""
    lx = scripted([0.0015, 0.0014, 0.00142, 0.00142, 0.00148] + [0.00148] * 30)
    ex = raw_client(lx)
    ex.create_order(SYM, "market", "buy", 1000.0)
    held = float(ex.fetch_balance()["XRP"]["free"])
    placed = ex.create_order(SYM, "limit", "sell", held, 0.00147, {"stopLossPrice": 0.00148})
    step_until(lx, lambda: on_exchange(lx)[placed["clientOrderId"]]["info"]["isWorking"])
    with live(lx, hand_orders="adopt") as run:
        (stop,) = run.strategy.assets[0].orders.values()
        assert (stop.type, stop.trigger, stop.price, stop.route, stop.triggered) == (
            OrderType.STOP_LIMIT, 0.00148, 0.00147, "native", True)
        assert run.reconcile() == []
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.price == 0.00147 and sell.amount == held
        eventually(lambda: not run.strategy.assets[0].orders)


def test_a_spot_stop_limit_placed_by_hand_while_the_run_goes_is_adopted_as_a_native_stop(
        scripted):
    """The periodic sweep of the orders open on the exchange (and the user stream, if it
    reports it first) adopts a spot STOP_LOSS_LIMIT placed by hand during the run as what
    it is, as the start-up sync does: the same translation. It is then followed to its
    fill at its limit."""
    lx = scripted([0.0015, 0.0014, 0.00142, 0.00148] + [0.00148] * 30)
    ex = raw_client(lx)
    ex.create_order(SYM, "market", "buy", 1000.0)
    held = float(ex.fetch_balance()["XRP"]["free"])
    with live(lx, hand_orders="adopt", adopt_every=0.2) as run:
        assert not run.strategy.assets[0].orders
        placed = ex.create_order(SYM, "limit", "sell", held, 0.00147,
                                 {"stopLossPrice": 0.00148})
        stop = eventually(lambda: run.strategy.assets[0].orders.get(placed["clientOrderId"]))
        assert (stop.type, stop.trigger, stop.price, stop.route, stop.triggered) == (
            OrderType.STOP_LIMIT, 0.00148, 0.00147, "native", False)
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.price == 0.00147 and sell.amount == held
        eventually(lambda: not run.strategy.assets[0].orders)



@pytest.mark.parametrize("limit", [None, 0.00155])
def test_live_native_take_profit_fires_on_the_rise(scripted, limit):
    """TAKE_PROFIT (market) or TAKE_PROFIT_LIMIT at 0.00155 on the exchange: 0.00154 does
    not fire it, 0.00156 does; it sells at or above 0.00155."""
    lx = scripted([0.00152, 0.00154, 0.00156] + [0.00156] * 30)
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        assert run.call("take_profit_order", SYM, amount, 0.00155, limit=limit) is missing
        (tp,) = run.strategy.assets[0].orders.values()
        kind = on_exchange(lx)[tp.id]["info"]["type"]
        assert tp.route == "native" and kind == ("TAKE_PROFIT" if limit is None
                                                 else "TAKE_PROFIT_LIMIT")
        step_until(lx, lambda: sells(run))
        eventually(lambda: sum(t.amount for t in sells(run)) == amount)
        assert all(t.order_id == tp.id and 0.00155 <= t.price <= 0.00156 for t in sells(run))


def test_live_emulated_trailing_stop_with_activation_follows_a_rally_then_fires(scripted):
    lx = scripted([0.00153, 0.00156, 0.0016, 0.00157, 0.00156] + [0.00156] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        assert run.call("trailing_stop_order", SYM, amount, offset=0.000032,
                        activation=0.00155) is missing
        (stop,) = run.strategy.assets[0].orders.values()
        assert stop.route == "emulated" and stop.trigger == 0
        step_until(lx, lambda: sells(run))
        moved = [p["trigger"] for p in trace.of("trigger_moved")]
        assert moved == pytest.approx([0.001528, 0.001568], abs=1e-12)
        (fired,) = trace.of("order_triggered")
        assert fired["price"] == 0.00156
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.amount == amount and sell.price <= 0.00156


def test_live_oco_limit_leg_partly_filled_cancels_the_emulated_stop(scripted):
    """The OCO's limit leg (on the exchange) gets ~400 of 900 from the trade at 0.00155:
    that partial fill cancels the stop leg (the engine's), so the crash to 0.0014 sells
    nothing more; the limit keeps resting on the exchange for the rest."""
    lx = scripted([0.00151, 0.00155, 0.0015, 0.0014] + [0.0014] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = 900.0  # more than one trade of the tape (400)
        assert run.call("oco_order", SYM, amount, price=0.00155, stop=0.00145) is missing
        legs = {o.type: o for o in run.strategy.assets[0].orders.values()}
        limit, stop = legs[OrderType.LIMIT], legs[OrderType.STOP_MARKET]
        step_until(lx, lambda: sells(run))
        (part,) = sells(run)
        assert part.order_id == limit.id and part.price == 0.00155 and part.amount < amount
        eventually(lambda: not stop.is_open)
        for _ in range(3):
            lx.step(STEP)
        assert never(lambda: len(sells(run)) > 1, 0.5) and not trace.of("order_triggered")
        assert limit.is_open and on_exchange(lx)[limit.id]["filled"] == part.amount


def test_live_bracket_exits_touched_in_one_burst_sell_once(scripted):
    """A market entry; its exits are an OCO pair (the target on the exchange, the stop
    held by the engine). One burst goes to 0.00144 then 0.00156: the stop is touched
    first. Whatever reaches the exchange first, the position is sold once, never twice."""
    lx = scripted([0.0015, 0.00144, 0.00156] + [0.00156] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        entry = run.call("bracket_order", SYM, 300.0, stop_loss=0.00145, take_profit=0.00155)
        assert entry and entry.side is Side.BUY
        ai = run.strategy.assets[0]
        # both exits are there long before the 5 s `waitfor`: the target does not wait
        # for a fill before its stop is placed
        eventually(lambda: len(ai.orders) == 2, timeout=3)
        legs = {o.type: o for o in ai.orders.values()}
        stop, target = legs[OrderType.STOP_MARKET], legs[OrderType.LIMIT]
        amount = stop.amount
        assert target.amount == amount <= entry.amount and target.id in on_exchange(lx)
        lx.step(STEP)
        eventually(lambda: "triggers:XRP/ETH" in run.session.watchers)
        lx.step(2 * STEP)  # 0.00144 and 0.00156 at once
        eventually(lambda: not ai.orders, timeout=10)
        assert never(lambda: sum(t.amount for t in sells(run)) > amount, 0.5), sells(run)
        assert sum(t.amount for t in sells(run)) == amount
        assert raw_client(lx).fetch_balance()["XRP"]["total"] == pytest.approx(
            100_000 + entry.amount - entry.fee - amount)
        if target.filled:  # the exchange matched the target first
            assert not [t for t in sells(run) if t.order_id == stop.id]
            # the stop fired before the target's fill came, and its cancel found it
            # filled: the run is told (else the fill closed the stop before it fired)
            assert bool([w for w, _ in run.strategy.seen_errors
                         if w == "oco:XRP/ETH"]) == stop.triggered


def test_live_bracket_entry_cancelled_before_a_fill_never_places_its_exits(scripted):
    lx = scripted([0.0015] * 30)
    with live(lx) as run:
        assert run.call("bracket_order", SYM, 300.0, price=0.0014, stop_loss=0.0013,
                        take_profit=0.0016) is missing
        ai = run.strategy.assets[0]
        (entry,) = ai.orders.values()
        assert entry.legs and entry.id in on_exchange(lx)
        assert run.call("cancel_orders", SYM) is True
        for _ in range(3):
            lx.step(STEP)
        assert never(lambda: ai.orders or on_exchange(lx), 0.5)


@pytest.mark.parametrize("action,args,route", [
    ("stop_order", {"trigger": 0.00148}, "native"),
    ("stop_order", {"trigger": 0.00148, "limit": 0.00147}, "native"),
    ("take_profit_order", {"trigger": 0.00155}, "native"),
    ("take_profit_order", {"trigger": 0.00155, "limit": 0.00154}, "native"),
    ("trailing_stop_order", {"offset": 0.00002}, "emulated"),
    ("oco_order", {"price": 0.00155, "stop": 0.00148}, "native,emulated")])
def test_live_cancelled_conditional_order_is_gone_everywhere_and_never_fires(scripted, action,
                                                                            args, route):
    lx = scripted([0.0016, 0.0014] + [0.0014] * 30)  # through every trigger above
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        ai = run.strategy.assets[0]
        assert run.call(action, SYM, amount, **args) is missing
        assert sorted(o.route or "native" for o in ai.orders.values()) == sorted(route.split(","))
        assert run.call("cancel_orders", SYM) is True
        assert not ai.orders and ai.committed == 0 and on_exchange(lx) == {}
        for _ in range(3):
            lx.step(STEP)
        assert never(lambda: sells(run) or ai.orders, 0.5)
        assert raw_client(lx).fetch_balance()["XRP"]["free"] >= amount


def test_live_spot_sell_stop_is_limited_to_what_is_held(scripted):
    """On spot a sell stop can only sell what the account holds (the test account's XRP
    and what the run bought): more is refused before it is sent, reduce_only or not. (The
    exchange's last price may be read first: the trigger is checked against it.)"""
    lx = scripted([0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        bought(run, run.call("market_order", SYM, 300.0, side="buy"))
        ai = run.strategy.assets[0]
        amount = ai.floor_amount(ai.free_balance)
        sent = lambda: [r for r in trace.of("request_sent")  # noqa: E731
                        if r["method"] != "fetch_ticker"]
        before = len(sent())
        assert run.call("stop_order", SYM, amount + 100, 0.00148, reduce_only=True) is None
        assert "XRP" in run.strategy.errors[-1]
        assert len(sent()) == before
        assert run.call("stop_order", SYM, amount, 0.00148, reduce_only=True) is missing


def test_live_conditional_run_replays_from_its_trace(scripted, tmp_path):
    """A native stop that fires, an emulated trailing stop that follows and fires, an OCO
    whose limit fills and cancels its stop: replay_from_trace rebuilds the final state."""
    from planarpy.trace import EventTrace, replay_from_trace

    lx = scripted([0.00151, 0.00155, 0.0016, 0.00156, 0.0015, 0.0014] + [0.0014] * 30)
    path = tmp_path / "t"
    with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as run:
            assert run.call("trailing_stop_order", SYM, 300.0, offset=0.000032) is missing
            assert run.call("stop_order", SYM, 300.0, 0.00146) is missing
            assert run.call("oco_order", SYM, 300.0, price=0.00158, stop=0.00145) is missing
            step_until(lx, lambda: len({t.order_id for t in sells(run)}) >= 3)
            eventually(lambda: not run.strategy.assets[0].orders)
            strategy = run.strategy
    report = replay_from_trace(strategy, path)
    assert report.ok, str(report)


def test_amending_a_native_stop_without_cancel_replace_places_the_new_one_first(scripted):
    """On a market where the exchange refuses cancel-replace (its exchangeInfo says so),
    amend_stop places the new stop on the exchange first and cancels the old one after:
    the exchange's own order log shows a stop open at every moment, and the old one never
    fires."""
    lx = scripted([0.00151, 0.00152, 0.00149, 0.00146, 0.00147] + [0.00147] * 30)
    lx.faults.update({"no_cancel_replace": True})
    log = exchange_log(lx)
    trace = Events()
    with live(lx, trace=trace) as run:
        old, new = amend(run)
        assert not [p for p in trace.of("request_sent") if p["method"] == "edit_order"]
        stops = stop_reports(log)
        assert stops == [(old.id, "NEW"), (new.id, "NEW"), (old.id, "CANCELED")]
        open_ = set()
        for cid, what in stops:  # never a moment without a stop on the exchange
            (open_.add if what == "NEW" else open_.discard)(cid)
            assert open_
        assert list(on_exchange(lx)) == [new.id]
        step_until(lx, lambda: sells(run))  # 0.00146 fires the new stop (not the old)
        assert [t.order_id for t in sells(run)] == [new.id]


def test_without_cancel_replace_a_refused_replacement_leaves_the_old_stop(scripted):
    """The replacement the exchange refuses (no funds left for a second stop: the old one
    holds them) is reported; the old stop stays on the exchange, untouched."""
    lx = scripted([0.0015] * 30)
    lx.faults.update({"no_cancel_replace": True})
    with live(lx) as run:
        run.call("market_order", SYM, 300.0, side="buy")
        ai = run.strategy.assets[0]
        eventually(lambda: not ai.orders)
        everything = ai.floor_amount(ai.free_balance)
        assert run.call("stop_order", SYM, everything, 0.00145) is missing
        (old,) = ai.orders.values()
        assert run.call("amend_stop", SYM, old.id, 0.00148) is None
        assert list(ai.orders) == [old.id] and list(on_exchange(lx)) == [old.id]
        assert run.strategy.errors


def test_live_oco_burst_through_both_legs_sells_the_pair_once(scripted):
    """One burst: 0.00144 reaches the engine's stop leg of a 900 OCO, and 0.00155 (a
    trade of 400) fills part of its limit leg on the exchange. Which the run learns of
    first (the public trades or its own fill) decides, and either way the pair sells at
    most 900, once: the limit's partial fill first cancels the stop (the limit rests on
    for the rest, as documented); the stop's trigger first cancels the limit, and as
    its fill came before the cancel, the stop is closed unsent and only the rest goes at
    the market (the run is told)."""
    lx = scripted([0.0015, 0.00144, 0.00155] + [0.0015] * 30)
    with live(lx) as run:
        run.call("market_order", SYM, 1000.0, side="buy")
        assert run.call("oco_order", SYM, 900.0, price=0.00155, stop=0.00145) is missing
        ai = run.strategy.assets[0]
        legs = {o.type: o for o in ai.orders.values()}
        limit, stop = legs[OrderType.LIMIT], legs[OrderType.STOP_MARKET]
        lx.step(STEP)
        eventually(lambda: "triggers:XRP/ETH" in run.session.watchers)
        lx.step(2 * STEP)  # 0.00144 and 0.00155 at once
        sold = lambda: sum(t.amount for t in sells(run))  # noqa: E731
        eventually(lambda: sold() >= 900 or (limit.filled and not stop.is_open
                                             and not stop.triggered), timeout=10)
        assert never(lambda: sold() > 900, 0.5)
        by_order = {}
        for t in sells(run):
            by_order[t.order_id] = by_order.get(t.order_id, 0) + t.amount
        assert 0 < by_order.pop(limit.id) < 900 and stop.id not in by_order
        if not stop.triggered:  # the fill came first: the stop is cancelled
            assert by_order == {} and limit.is_open and limit.remaining == 900 - limit.filled
            return
        (rest,) = by_order.values()  # the market order of what the limit left
        assert rest == 900 - limit.filled and not ai.orders
        (told,) = [m for w, m in run.strategy.seen_errors if w == "oco:XRP/ETH"]
        assert f"the rest, {rest:g}, goes at the market" in told
