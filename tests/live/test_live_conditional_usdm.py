"""Native conditional orders on Binance USD-M in live mode, against the local exchange
through the real ccxt client: each is an algo order (/fapi/v1/algoOrder) that, when it
fires, places an order of its own; the run follows the algo's reports (ALGO_UPDATE, or
REST when the stream is down) to that order, whose fills are the stop's."""

from __future__ import annotations

import numpy as np
import pytest

from planarpy import Side, missing
from planarpy.core.orders import OrderType
from planarpy.data.sample import sample_markets
from planarpy.localexchange import Clock, Feed

from livekit import QuietPerp, eventually, live, never, perp_in_step, raw_client, replayed
from tapekit import STEP, T0, Events, step_until

PERP = "XRP/USDT:USDT"


def perp_tape(path):
    """An hour of trades at 1.0 every 10 s before T0, then `path`, one every 10 s."""
    prices = [1.0] * 360 + list(path)
    ts = T0 + STEP * (np.arange(len(prices), dtype=np.int64) - 360 + 1)
    return Feed(ts, np.array(prices), np.full(len(prices), 5000.0), np.zeros(len(prices), bool))


@pytest.fixture
def perp(local_exchange_factory):
    m = sample_markets("binanceusdm")[PERP]
    return lambda path: local_exchange_factory(markets=[m], clock=Clock(start=T0), origin=T0,
                                               data={PERP: perp_tape(path)})


def fills(run, side=Side.SELL):
    return [t for t in run.strategy.fills if t.side is side]


def orders(run):
    with run.session.engine.locked():
        return list(run.strategy.state.assets[PERP].orders.values())


def algos(lx, open_only=True):
    return [a for a in list(lx.engine.algos.values()) if a.is_open or not open_only]


def long(run, lx, amount=100.0):
    run.call("market_order", PERP, amount, side="buy")
    eventually(lambda: run.state()["assets"][PERP]["long"] == amount)


def trace_at(path):
    from planarpy.trace import EventTrace
    return EventTrace.open(path, strategy="QuietPerp", exchange="binanceusdm")


def armed(run, lx, action, *args, **kw):
    """A long of 100, then one reduce-only conditional order of 100 on it (`action` and
    its arguments after the amount): the order."""
    long(run, lx)
    kw.setdefault("reduce_only", True)
    assert run.call(action, PERP, 100.0, *args, **kw) is missing
    (order,) = orders(run)
    return order


def test_usdm_stop_is_an_algo_order_and_fills_at_its_orders_price(perp, tmp_path):
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    trace = trace_at(tmp_path / "t")
    with trace, live(lx, QuietPerp, trace=trace) as run:
        stop = armed(run, lx, "stop_order", 0.98)
        assert stop.route == "native" and stop.type is OrderType.STOP_MARKET
        ex = raw_client(lx, "binanceusdm")
        (algo,) = ex.fetch_open_orders(PERP, params={"trigger": True})
        assert algo["clientOrderId"] == stop.id and algo["info"]["orderType"] == "STOP_MARKET"
        assert algo["reduceOnly"] is True and ex.fetch_open_orders(PERP) == []
        step_until(lx, lambda: fills(run))
        eventually(lambda: not orders(run))
        (sell,) = fills(run)
        done = ex.fetch_order(algo["id"], PERP, params={"trigger": True})
        child = ex.fetch_order(done["info"]["actualOrderId"], PERP)
        assert sell.order_id == stop.id and sell.amount == 100.0
        assert sell.price == pytest.approx(child["average"]) and child["type"] == "market"
        assert run.state()["assets"][PERP]["long"] == 0.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)
        assert run.strategy.errors == []
    replayed(run.strategy, trace.path)


def test_an_algo_that_finishes_before_its_orders_fills_arrive_loses_nothing(perp):
    """`algo_first`: the algo's TRIGGERED and FINISHED come before its order's reports
    (ccxt calls both "closed"). The stop is not closed by them: its order is fetched,
    and its fill is applied once (the order's late stream reports change nothing)."""
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    trace = Events()
    with live(lx, QuietPerp, trace=trace) as run:
        long(run, lx)
        lx.faults.update({"algo_first": True})
        assert run.call("stop_order", PERP, 100.0, 0.98, reduce_only=True) is missing
        (stop,) = orders(run)
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.amount == 100.0 and stop.filled == 100.0
        assert stop.status.value == "closed" and stop.triggered
        (created,) = [p for p in trace.of("order_created") if p["id"] == stop.id]
        assert created["route"] == "native" and created["type"] == "stop_market"
        (fired,) = trace.of("order_triggered")
        assert fired["id"] == stop.id and fired["child"]
        algo_reports = [m for m in trace.of("exchange_message")
                        if "algo" in (m["reason"] or "")]
        assert algo_reports and all("order_closed" not in m["events"] for m in algo_reports)
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_usdm_take_profit_is_native_and_fires_on_the_rise(perp):
    lx = perp([1.0, 1.01, 1.03, 1.06, 1.05] + [1.05] * 30)
    with live(lx, QuietPerp) as run:
        tp = armed(run, lx, "take_profit_order", 1.05)
        assert tp.route == "native" and tp.type is OrderType.TAKE_PROFIT_MARKET
        (algo,) = algos(lx)
        assert algo.type == "TAKE_PROFIT_MARKET"
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == tp.id and sell.price >= 1.05
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_usdm_trailing_stop_is_native_follows_the_rally_then_fires(perp):
    """2% trailing: the exchange follows 1.0 -> 1.05 (stop 1.029), fires at 1.02."""
    lx = perp([1.0, 1.02, 1.05, 1.04, 1.02, 1.01] + [1.01] * 30)
    with live(lx, QuietPerp) as run:
        long(run, lx)
        assert run.call("trailing_stop_order", PERP, 100.0, percent=0.02,
                        reduce_only=True) is missing
        (stop,) = orders(run)
        assert stop.route == "native" and stop.type is OrderType.TRAILING_STOP
        (algo,) = algos(lx)
        assert algo.type == "TRAILING_STOP_MARKET" and algo.trail.rate * 100 == 2
        for _ in range(4):  # 1.0, 1.02, 1.05, 1.04: it follows, does not fire
            lx.step(STEP)
        eventually(lambda: float(algo.trigger) == 1.029)
        assert orders(run) == [stop] and not fills(run)
        step_until(lx, lambda: not orders(run))  # 1.02 <= 1.029
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.price == pytest.approx(1.02, abs=0.005)


def test_usdm_trailing_stop_by_offset_is_still_emulated(perp):
    """No trailing by a price offset on Binance: the engine holds it and sends a market
    order under the stop's id when the public trades reach it."""
    lx = perp([1.0, 1.02, 1.05, 1.04, 1.02, 1.01] + [1.01] * 30)
    with live(lx, QuietPerp) as run:
        long(run, lx)
        assert run.call("trailing_stop_order", PERP, 100.0, offset=0.02,
                        reduce_only=True) is missing
        (stop,) = orders(run)
        assert stop.route == "emulated" and algos(lx) == []
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.amount == 100.0


def test_a_usdm_stop_that_fires_while_the_user_stream_is_silent_is_found_by_rest(perp):
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    trace = Events()
    with live(lx, QuietPerp, trace=trace) as run:
        stop = armed(run, lx, "stop_order", 0.98)
        eventually(lambda: len(fills(run, Side.BUY)) == 1)  # the long's fill, either path
        lx.faults.update({"stall_user": True})
        before = len(trace.of("exchange_message"))  # the long's own reports may come late
        for _ in range(4):  # the exchange fires the algo and fills its order, unsaid
            lx.step(STEP)
        eventually(lambda: not orders(run), timeout=15)
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.amount == 100.0
        sources = {m["source"] for m in trace.of("exchange_message")[before:]
                   if "trade_created" in m["events"] or "order_triggered" in m["events"]}
        assert sources == {"rest"}
        lx.faults.update({"stall_user": False})
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def left_open(lx, path):
    """A run on the trace at `path` that goes long and leaves a native stop at 0.98 open
    when it stops: the stop."""
    with trace_at(path) as trace, live(lx, QuietPerp, trace=trace) as first:
        return armed(first, lx, "stop_order", 0.98)


def test_a_restart_adopts_the_native_usdm_stop_and_follows_it(perp, tmp_path):
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    path = tmp_path / "t"
    stop = left_open(lx, path)
    assert [a.client_id for a in algos(lx)] == [stop.id]  # left open on the exchange
    with trace_at(path) as trace, live(lx, QuietPerp, trace=trace) as second:
        (again,) = orders(second)
        assert (again.id, again.route, again.type, again.trigger) == (
            stop.id, "native", OrderType.STOP_MARKET, 0.98)
        step_until(lx, lambda: not orders(second))
        (sell,) = fills(second)
        assert sell.order_id == stop.id and sell.amount == 100.0
        assert eventually(lambda: perp_in_step(second, lx) == [], timeout=5)
    replayed(second.strategy, path)


def _algo_log(lx):
    log = []
    lx.engine.listeners.append(lambda ev: log.append(dict(ev.payload["o"]))
                               if getattr(ev, "payload", {}).get("e") == "ALGO_UPDATE"
                               else None)
    return log


def _never_unguarded(log):
    """Replaying the exchange's algo log in order: an open stop at every moment."""
    live_ = set()
    for e in log:
        (live_.add if e["X"] == "NEW" else live_.discard)(e["caid"])
        assert live_, f"no stop on the exchange after {e}"


def test_amending_a_usdm_stop_places_the_new_one_before_cancelling_the_old(perp):
    """No cancel-replace for algo orders: the exchange's own order log shows the new
    stop's NEW before the old one's CANCELED, never a moment with no stop."""
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    log = _algo_log(lx)
    with live(lx, QuietPerp) as run:
        old = armed(run, lx, "stop_order", 0.95)
        assert run.call("amend_stop", PERP, old.id, 0.98) is missing
        (new,) = orders(run)
        assert new.id != old.id and new.trigger == 0.98 and new.route == "native"
        eventually(lambda: len(log) >= 3)
        assert [(e["caid"], e["X"]) for e in log] == [(old.id, "NEW"), (new.id, "NEW"),
                                                      (old.id, "CANCELED")]
        _never_unguarded(log)
        step_until(lx, lambda: not orders(run))  # 0.97 fires the new stop
        (sell,) = fills(run)
        assert sell.order_id == new.id


def quick_settle(lx, **options):
    """A live QuietPerp that waits 1 s for an answer and whose unknown orders settle fast
    (recvWindow 2 s: a lost submit can no longer arrive 3 s after it was sent)."""
    settings = {"exchanges": {"binanceusdm": {"rate_limit": False,
                                              "options": {"recvWindow": 2000}}}}
    return live(lx, QuietPerp, waitfor=1.0, settings=settings, **options)


def test_an_amend_keeps_the_old_stop_while_the_replacement_is_unknown(perp):
    """Expected: amend_stop on USD-M (no cancel-replace: the new stop first, then the old
    one cancelled) whose new stop gets no answer (a 503; the exchange did not place it)
    does not cancel the old stop on that guess: the exchange holds a stop for the
    position throughout, and the old one is cancelled only once the new one is known to
    be there.

    Why: `contingent.amend_stop` goes on to cancel the old stop whenever `place_stop`
    returns anything but None, and live answers `missing` for a submit of unknown
    outcome (live/orders.py `_submit`: go_unknown, then `_result`). Unknown is treated as
    placed: here the old stop is cancelled and the replacement never existed, so the
    leveraged position is left with no stop on the exchange (amending "must never leave
    the position unprotected")."""
    lx = perp([1.0] * 40)
    with quick_settle(lx) as run:
        old = armed(run, lx, "stop_order", 0.95)
        assert [a.client_id for a in algos(lx)] == [old.id]
        lx.faults.update({"http_status": 503, "http_path": "POST /fapi/v1/algoOrder",
                          "http_count": 1, "http_processed": False})
        assert run.call("amend_stop", PERP, old.id, 0.97) is missing
        assert [(a.client_id, a.type) for a in algos(lx)] == [(old.id, "STOP_MARKET")], \
            "no stop on the exchange: the old one was cancelled while its replacement " \
            "was unknown (it was never placed)"
        assert any("is unknown: both may be open" in e for e in run.strategy.errors)
        # settled once the lost submit can no longer arrive: never placed, the old one stays
        eventually(lambda: any("was never placed; " + old.id + " stays" in e
                               for e in run.strategy.errors), timeout=10)
        assert [o.id for o in orders(run)] == [old.id] and old.is_open
        assert [a.client_id for a in algos(lx)] == [old.id]


def test_an_amend_whose_replacement_is_found_later_then_cancels_the_old_stop(perp):
    """The replacement's submit is executed but its answer lost, and nothing can be
    learnt of it within the run's waitfor (the lookups get 503, the user stream is
    silent): both stops stay, and the strategy is told so. Once a lookup finds the new
    stop open, the old one is cancelled: the exchange's algo log never shows a moment
    without a stop, and ends with the new one alone, as the state has it."""
    lx = perp([1.0] * 40)
    log = _algo_log(lx)
    with quick_settle(lx) as run:
        old = armed(run, lx, "stop_order", 0.95)
        lx.faults.update({"http_status": 503, "http_path": "/fapi/v1/algoOrder",
                          "http_processed": True, "stall_user": True})
        assert run.call("amend_stop", PERP, old.id, 0.97) is missing
        assert len(algos(lx)) == 2 and old.is_open
        assert any("is unknown: both may be open" in e for e in run.strategy.errors)
        lx.faults.update({"http_status": None, "stall_user": False})
        (new,) = eventually(lambda: [a for a in algos(lx) if a.client_id != old.id]
                            if len(algos(lx)) == 1 else None, timeout=10)
        assert float(new.stop) == 0.97
        eventually(lambda: [(o.id, o.status.value) for o in orders(run)]
                   == [(new.client_id, "open")])
        _never_unguarded(log)


def amend_held_up(run, lx, old, trigger):
    """`amend_stop` of `old` to `trigger` in a thread, the old stop's cancel held up by
    the exchange (a slow answer) while the price steps through 1.0, 0.99, 0.96; the
    call's result."""
    import threading
    lx.faults.update({"delay_ms": 3000, "delay_path": "DELETE /fapi/v1/algoOrder",
                      "delay_count": 1})
    done = []
    t = threading.Thread(target=lambda: done.append(run.call("amend_stop", PERP, old.id,
                                                             trigger)))
    t.start()
    eventually(lambda: len(algos(lx)) == 2)  # the new one placed, the old one's cancel held
    for _ in range(3):
        lx.step(STEP)
    t.join(30)
    assert not t.is_alive()
    return done[0]


def test_an_amend_whose_old_stop_fires_before_its_cancel_cancels_the_new_one(perp):
    """The old stop's cancel is held up (a slow exchange) and the price falls through the
    old stop meanwhile: the cancel finds it fired (-2011), its fill is applied, and the
    replacement, which now guards nothing, is cancelled; the strategy is told."""
    lx = perp([1.0, 0.99, 0.96, 0.96] + [0.96] * 30)
    with live(lx, QuietPerp) as run:
        old = armed(run, lx, "stop_order", 0.97)
        assert amend_held_up(run, lx, old, 0.95) is missing  # 0.96 fires the old one only
        eventually(lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == old.id and algos(lx) == []
        assert any("fired before its cancel" in e for e in run.strategy.errors), run.strategy.errors
        assert run.state()["assets"][PERP]["long"] == 0.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_when_both_the_old_and_the_new_stop_fire_the_extra_fill_is_undone(perp):
    """Not reduce-only, the old stop at 0.97 and its replacement at 0.98 both fire on one
    trade while the old one's cancel is held up: the position went short; a reduce-only
    market order closes what the replacement added, and the strategy is told."""
    lx = perp([1.0, 0.99, 0.96, 0.96] + [0.96] * 30)
    with live(lx, QuietPerp) as run:
        old = armed(run, lx, "stop_order", 0.97, reduce_only=False)
        amend_held_up(run, lx, old, 0.98)
        eventually(lambda: len(fills(run, Side.BUY)) == 2, timeout=15)  # the entry, the undo
        assert any("undone by a reduce-only market order" in e for e in run.strategy.errors)
        eventually(lambda: run.state()["assets"][PERP]["short"] == 0.0
                   and run.state()["assets"][PERP]["long"] == 0.0, timeout=15)
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_cancelling_a_usdm_stop_cancels_the_algo_and_it_never_fires(perp):
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.96] + [0.96] * 30)
    with live(lx, QuietPerp) as run:
        stop = armed(run, lx, "stop_order", 0.98)
        assert run.call("cancel_orders", PERP) is True
        assert not orders(run) and stop.status.value == "canceled"
        (algo,) = algos(lx, open_only=False)
        assert algo.status == "CANCELED"
        for _ in range(5):
            lx.step(STEP)
        assert never(lambda: fills(run), 1.0)
        assert run.state()["assets"][PERP]["long"] == 100.0


def test_a_reduce_only_stop_with_no_position_left_expires_and_closes_here(perp):
    """The position is closed by hand through the run while a reduce-only stop protects
    it (the stop holds nothing against the close: the gate let it through); the stop's
    reduce-only order is then refused when it fires, the algo EXPIRED, and the stop
    closes here with no fill (no short opened)."""
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.96] + [0.96] * 30)
    with live(lx, QuietPerp) as run:
        stop = armed(run, lx, "stop_order", 0.98)
        closed = run.call("market_order", PERP, 100.0, side="sell", reduce_only=True)
        assert closed and closed.amount == 100.0, run.strategy.errors
        eventually(lambda: run.state()["assets"][PERP]["long"] == 0.0)
        assert orders(run) == [stop]
        step_until(lx, lambda: not orders(run))
        (algo,) = algos(lx, open_only=False)
        assert algo.status == "EXPIRED" and stop.filled == 0.0
        assert stop.status.value in ("canceled", "rejected")
        assert run.state()["assets"][PERP]["short"] == 0.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_an_emulated_reduce_only_stop_never_blocks_a_close_by_hand(perp):
    """An engine-held reduce-only trailing stop of the whole position: a reduce-only
    close by hand goes through the gate; when the stop fires later, its order finds
    nothing to reduce and is refused, and nothing else is sold (no short)."""
    lx = perp([1.0, 1.0, 1.0, 0.97, 0.96] + [0.96] * 30)
    with live(lx, QuietPerp) as run:
        long(run, lx)
        assert run.call("trailing_stop_order", PERP, 100.0, offset=0.02,
                        reduce_only=True) is missing
        (stop,) = orders(run)
        assert stop.route == "emulated"
        closed = run.call("market_order", PERP, 100.0, side="sell", reduce_only=True)
        assert closed and closed.amount == 100.0, run.strategy.errors
        step_until(lx, lambda: not orders(run))
        assert stop.filled == 0.0 and [t.amount for t in fills(run)] == [100.0]
        assert run.state()["assets"][PERP]["short"] == 0.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_a_gap_through_a_usdm_stop_fills_at_the_market_not_the_stop(perp):
    lx = perp([1.0, 0.90, 0.90] + [0.90] * 30)
    with live(lx, QuietPerp) as run:
        long(run, lx)
        assert run.call("stop_order", PERP, 100.0, 0.98, reduce_only=True) is missing
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.price == pytest.approx(0.90, abs=0.005)


def test_usdm_stop_limit_is_native_and_its_limit_order_rests_after_the_trigger(perp):
    """STOP (Binance's stop-limit algo): once fired it places a limit order, which rests
    while the price is below it; the stop is open (triggered) until that order fills."""
    lx = perp([1.0, 0.97, 0.96, 0.96, 0.99, 0.99] + [0.99] * 30)
    with live(lx, QuietPerp) as run:
        stop = armed(run, lx, "stop_order", 0.98, limit=0.985)
        assert stop.route == "native" and stop.type is OrderType.STOP_LIMIT
        (algo,) = algos(lx)
        assert algo.type == "STOP"
        step_until(lx, lambda: stop.triggered)
        assert stop.is_open and not fills(run)
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.price == pytest.approx(0.985, abs=0.006)


def test_a_usdm_stop_whose_placement_got_no_answer_is_settled_by_client_id(perp):
    """A 503 after the exchange placed the algo: the stop is UNKNOWN, then found by its
    client id (an algo lookup) and followed; a 503 with nothing placed: closed as never
    placed once the request can no longer arrive."""
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    cfg = {"exchanges": {"binanceusdm": {"rate_limit": False, "options": {"recvWindow": 1000}}}}
    trace = Events()
    with live(lx, QuietPerp, settings=cfg, trace=trace) as run:
        long(run, lx)
        lx.faults.update({"http_status": 503, "http_path": "POST /fapi/v1/algoOrder",
                          "http_count": 1, "http_processed": True})
        assert run.call("stop_order", PERP, 50.0, 0.98, reduce_only=True) is missing
        (stop,) = orders(run)
        eventually(lambda: stop.status.value == "open", timeout=10)
        assert [(u["id"], u["status"]) for u in trace.of("order_updated")] == [
            (stop.id, "unknown"), (stop.id, "open")]
        assert [a.client_id for a in algos(lx)] == [stop.id]
        lx.faults.update({"http_status": 503, "http_path": "POST /fapi/v1/algoOrder",
                          "http_count": 1, "http_processed": False})
        assert run.call("stop_order", PERP, 50.0, 0.95, reduce_only=True) is missing
        (lost,) = [o for o in orders(run) if o is not stop]
        eventually(lambda: not lost.is_open, timeout=15)
        assert lost.status.value == "not_placed" and len(algos(lx)) == 1
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.amount == 50.0


def test_reconciliation_counts_native_stops_as_open_there_and_emulated_ones_as_held(perp):
    """A native stop is an open algo order on the exchange, an emulated one is held by the
    engine: neither is a difference for reconcile() or the periodic reconciliation."""
    lx = perp([1.0] * 30)
    with live(lx, QuietPerp) as run:
        long(run, lx)
        assert run.call("stop_order", PERP, 50.0, 0.95, reduce_only=True) is missing
        assert run.call("trailing_stop_order", PERP, 50.0, offset=0.03,
                        reduce_only=True) is missing
        assert sorted(o.route for o in orders(run)) == ["emulated", "native"]
        assert run.reconcile() == []
        assert run.align().ok
        assert perp_in_step(run, lx) == []


def test_a_usdm_stop_that_fired_while_the_run_was_down_is_settled_at_restart(perp, tmp_path):
    """The run stops with a native stop open; the exchange fires it meanwhile. The next run
    on the trace looks the algo up, follows it to its order and applies the fill once."""
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    path = tmp_path / "t"
    stop = left_open(lx, path)
    for _ in range(5):
        lx.step(STEP)
    (algo,) = algos(lx, open_only=False)
    assert algo.status == "FINISHED"
    with trace_at(path) as trace, live(lx, QuietPerp, trace=trace) as second:
        assert orders(second) == []
        sells = [t for t in second.strategy.state.assets[PERP].trades if t.side is Side.SELL]
        assert [(t.order_id, t.amount) for t in sells] == [(stop.id, 100.0)]
        assert second.state()["assets"][PERP]["long"] == 0.0
        assert eventually(lambda: perp_in_step(second, lx) == [], timeout=5)
    replayed(second.strategy, path)


def test_a_usdm_stop_that_fires_while_the_websockets_are_down_is_found_after(perp):
    """Every WebSocket dropped and refused while the stop fires: it is found (REST, or the
    stream once it is back) and its fill applied once."""
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    with live(lx, QuietPerp) as run:
        stop = armed(run, lx, "stop_order", 0.98)
        lx.faults.update({"refuse_ws": True})
        lx.faults.drop_websockets()
        for _ in range(4):
            lx.step(STEP)
        eventually(lambda: not algos(lx))
        lx.faults.update({"refuse_ws": False})
        eventually(lambda: not orders(run), timeout=20)
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.amount == 100.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=10)


def test_a_stop_placed_by_hand_on_the_exchange_is_adopted_as_a_native_stop(perp):
    """An algo stop placed by hand (not through the run) is adopted at start-up with its
    type and trigger, and followed to its fill like the run's own."""
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    ex = raw_client(lx, "binanceusdm")
    ex.create_order(PERP, "market", "buy", 100.0)
    placed = ex.create_order(PERP, "market", "sell", 100.0, None,
                             {"stopLossPrice": 0.98, "reduceOnly": True})
    with live(lx, QuietPerp) as run:
        (stop,) = orders(run)
        assert (stop.id, stop.type, stop.trigger, stop.route, stop.reduce_only) == (
            placed["clientOrderId"], OrderType.STOP_MARKET, 0.98, "native", True)
        assert run.reconcile() == []
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.amount == 100.0
        assert run.state()["assets"][PERP]["long"] == 0.0


def test_cancelling_a_fired_usdm_stop_limit_cancels_the_limit_order_it_placed(perp):
    lx = perp([1.0, 0.97, 0.96, 0.96] + [0.96] * 30)
    with live(lx, QuietPerp) as run:
        stop = armed(run, lx, "stop_order", 0.98, limit=0.985)
        step_until(lx, lambda: stop.triggered)
        (algo,) = algos(lx, open_only=False)
        assert algo.order is not None and algo.order.is_open  # the limit rests above 0.96
        assert run.call("cancel_orders", PERP) is True
        assert not orders(run) and stop.status.value == "canceled" and not fills(run)
        eventually(lambda: not algo.order.is_open)
        assert run.state()["assets"][PERP]["long"] == 100.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


# ---- a bracket's exits: both legs on the exchange (reduce-only, the stop an algo order) -----
def bracket(run, lx, stop_loss=0.975, take_profit=1.05, **kw):
    """A bracket entry of 100 at the market, its exits placed on the exchange: (limit, stop)."""
    run.call("bracket_order", PERP, 100.0, stop_loss=stop_loss, take_profit=take_profit, **kw)
    eventually(lambda: len(orders(run)) == 2)
    legs = {o.type: o for o in orders(run)}
    limit, stop = legs[OrderType.LIMIT], legs[OrderType.STOP_MARKET]
    eventually(lambda: [a.client_id for a in algos(lx)] == [stop.id])
    return limit, stop


def test_a_usdm_bracket_stop_loss_is_held_by_the_exchange(perp):
    """Expected: once a USD-M bracket entry has filled, the exchange itself holds its
    stop-loss (a reduce-only STOP_MARKET algo order), as it holds a plain stop_order's.

    Why: issue 15 asks for native conditional orders where the venue supports them, and
    USD-M does (algo orders hold no margin, so a reduce-only take-profit limit and a
    reduce-only stop can both rest without holding anything twice). planarpy makes the
    stop leg of every OCO pair, so of every bracket, `paired` and therefore emulated
    (live/executor.py `_native`): the leveraged position's only stop lives in the
    process. If the run dies, loses its network or is stopped with on_stop "keep", the
    exchange holds just the take-profit and nothing limits the loss."""
    lx = perp([1.0] * 40)
    with live(lx, QuietPerp) as run:
        run.call("bracket_order", PERP, 100.0, stop_loss=0.97, take_profit=1.05)
        eventually(lambda: len(run.strategy.state.assets[PERP].orders) == 2)
        legs = {o.type: o for o in run.strategy.state.assets[PERP].orders.values()}
        stop = legs[OrderType.STOP_MARKET]
        expected = [(stop.id, "STOP_MARKET", True)]
        open_algos = lambda: [(a.client_id, a.type, a.reduce_only)  # noqa: E731
                              for a in list(lx.engine.algos.values()) if a.is_open]
        eventually(lambda: open_algos() == expected)
        assert open_algos() == expected, f"the stop's route is {stop.route!r}"
        assert stop.route == "native"


def test_a_usdm_brackets_stop_fires_on_the_exchange_and_its_target_is_cancelled(perp):
    """The exits of a bracket are an OCO pair, both on the exchange: the take-profit a
    reduce-only limit, the stop-loss a reduce-only algo order. When the algo fires (0.97),
    the run cancels the limit; the position is closed once, by the stop."""
    lx = perp([1.0, 0.99, 0.97, 0.96] + [0.96] * 30)
    with live(lx, QuietPerp) as run:
        limit, stop = bracket(run, lx)
        assert stop.route == "native" and limit.group == stop.group
        (resting,) = raw_client(lx, "binanceusdm").fetch_open_orders(PERP)
        assert resting["clientOrderId"] == limit.id and resting["reduceOnly"] is True
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == stop.id and sell.amount == 100.0
        assert limit.status.value == "canceled"
        assert raw_client(lx, "binanceusdm").fetch_open_orders(PERP) == []
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_a_usdm_brackets_target_fill_cancels_its_stop_on_the_exchange(perp):
    """The take-profit limit fills (1.05): the run cancels the stop's algo order on the
    exchange (CANCELED, never fired)."""
    lx = perp([1.0, 1.02, 1.05, 1.06] + [1.06] * 30)
    with live(lx, QuietPerp) as run:
        limit, stop = bracket(run, lx)
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == limit.id and sell.amount == 100.0
        (algo,) = algos(lx, open_only=False)
        assert algo.client_id == stop.id and algo.status == "CANCELED"
        assert stop.status.value == "canceled" and not stop.triggered
        assert run.state()["assets"][PERP]["long"] == 0.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


@pytest.mark.parametrize("path,first", [([1.05, 0.96], "limit"), ([0.96, 1.05], "stop")])
def test_both_legs_of_a_usdm_bracket_in_one_burst_close_the_position_once(perp, path, first):
    """Both legs are reached in one burst, before the run can cancel either: the exchange
    caps the second, reduce-only, at what is left of the position (nothing). The target
    first: the algo fires and its reduce-only order is refused (EXPIRED). The stop first:
    the resting reduce-only limit expires as the position closes. Either way the position
    is closed once, by the first, and never turned short."""
    lx = perp(path + [path[-1]] * 30)
    with live(lx, QuietPerp) as run:
        limit, stop = bracket(run, lx)
        lx.step(2 * STEP)  # both trades at once: the run hears of them after
        eventually(lambda: not orders(run), timeout=10)
        (sell,) = fills(run)
        assert sell.order_id == {"limit": limit.id, "stop": stop.id}[first]
        assert sell.amount == 100.0
        ex = raw_client(lx, "binanceusdm")
        assert [p for p in ex.fetch_positions([PERP]) if p["contracts"]] == []
        assert run.state()["assets"][PERP]["long"] == 0.0
        assert run.state()["assets"][PERP]["short"] == 0.0
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_amending_a_usdm_brackets_stop_places_the_new_algo_first_and_keeps_the_pair(perp):
    """amend_stop of the bracket's native stop: the exchange's algo log shows the new
    stop's NEW before the old one's CANCELED (never a moment with no stop); the new stop
    is native, in the pair, and when it fires the target is cancelled."""
    lx = perp([1.0, 0.99, 0.97, 0.96] + [0.96] * 30)
    log = _algo_log(lx)
    with live(lx, QuietPerp) as run:
        limit, old = bracket(run, lx, stop_loss=0.95)
        assert run.call("amend_stop", PERP, old.id, 0.975) is missing
        eventually(lambda: len(log) >= 3)
        (new,) = [o for o in orders(run) if o.type is OrderType.STOP_MARKET]
        assert (new.route, new.group, new.pair, new.trigger) == ("native", limit.group,
                                                                 "exits", 0.975)
        assert [(e["caid"], e["X"]) for e in log] == [(old.id, "NEW"), (new.id, "NEW"),
                                                      (old.id, "CANCELED")]
        _never_unguarded(log)
        step_until(lx, lambda: not orders(run))
        (sell,) = fills(run)
        assert sell.order_id == new.id and sell.amount == 100.0
        assert limit.status.value == "canceled"
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_a_restart_finds_both_legs_of_a_usdm_bracket_on_the_exchange(perp, tmp_path):
    """The run stops with the bracket's exits open; the next run on the trace finds both
    on the exchange (the stop a native algo order), still a pair: when the stop fires,
    the target is cancelled."""
    lx = perp([1.0, 0.99, 0.97, 0.96] + [0.96] * 30)
    path = tmp_path / "t"
    with trace_at(path) as trace, live(lx, QuietPerp, trace=trace) as first:
        limit, stop = bracket(first, lx)
    assert [a.client_id for a in algos(lx)] == [stop.id]
    with trace_at(path) as trace, live(lx, QuietPerp, trace=trace) as second:
        found = {o.id: (o.type, o.route, o.group, o.pair) for o in orders(second)}
        assert found == {limit.id: (OrderType.LIMIT, "", limit.group, "exits"),
                         stop.id: (OrderType.STOP_MARKET, "native", limit.group, "exits")}
        step_until(lx, lambda: not orders(second))
        (sell,) = fills(second)
        assert sell.order_id == stop.id and sell.amount == 100.0
        assert raw_client(lx, "binanceusdm").fetch_open_orders(PERP) == []
        assert eventually(lambda: perp_in_step(second, lx) == [], timeout=5)
    replayed(second.strategy, path)


def test_a_short_usdm_brackets_stop_placed_first_is_on_the_exchange_too(perp):
    """A short bracket's exits are a buy OCO pair, whose stop (above) is placed first: a
    reduce-only algo order on the exchange, the target a reduce-only limit beside it."""
    lx = perp([1.0] * 30)
    with live(lx, QuietPerp) as run:
        limit, stop = bracket(run, lx, side="sell", pos="short", stop_loss=1.05,
                              take_profit=0.95)
        assert (limit.side, stop.side) == (Side.BUY, Side.BUY)
        assert stop.route == "native" and stop.group == limit.group == stop.id
        (algo,) = algos(lx)
        assert (algo.type, algo.reduce_only) == ("STOP_MARKET", True)
        (resting,) = raw_client(lx, "binanceusdm").fetch_open_orders(PERP)
        assert resting["clientOrderId"] == limit.id and resting["reduceOnly"] is True
        assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)


def test_a_restart_keeps_the_promise_to_cancel_the_old_stop_of_an_unknown_amend(perp, tmp_path):
    """Expected: amend_stop whose replacement's outcome is unknown tells the strategy
    "{old} is cancelled once {new} is found open". If the run restarts before that, the
    restarted run finds the replacement open on the exchange and cancels the old stop as
    promised: one stop protects the position, as the state and the exchange have it.

    Why: the promise lives only in memory: contingent.amend_stop -> LiveExecutor.settle ->
    inflight.settle_then appends a closure to Flight.settled (modes/live/inflight.py),
    which neither the trace nor resume (live/resume.py) knows. After the restart both
    stops are adopted as native stops of the whole position and the old one is never
    cancelled: a stale stop at 0.95 stays on the exchange (with a stop that is not
    reduce-only, both fire: a double sell that turns the long short; a reduce-only one
    closes a later long it was never meant for)."""
    lx = perp([1.0] * 60)
    path = tmp_path / "t"
    with trace_at(path) as trace, quick_settle(lx, trace=trace) as run:
        old = armed(run, lx, "stop_order", 0.95)
        lx.faults.update({"http_status": 503, "http_path": "/fapi/v1/algoOrder",
                          "http_processed": True, "stall_user": True})
        run.call("amend_stop", PERP, old.id, 0.97)
        assert len(algos(lx)) == 2
        assert any("is unknown: both may be open" in e for e in run.strategy.errors)
    lx.faults.update({"http_status": None, "stall_user": False})
    with trace_at(path) as trace, quick_settle(lx, trace=trace) as second:
        try:
            eventually(lambda: len(algos(lx)) == 1, timeout=10)
        except AssertionError:
            pass
        assert [a.client_id for a in algos(lx)] not in ([], [old.id]) and \
            len(algos(lx)) == 1, (
            f"after the restart the exchange still holds {[(a.client_id, float(a.stop)) for a in algos(lx)]} "
            f"and the run {[(o.id, o.trigger, o.status.value) for o in orders(second)]}: "
            f"the old stop {old.id} was never cancelled")


def test_a_plain_close_admitted_beside_a_reduce_only_stop_never_turns_the_long_short(perp):
    """Expected: a long of 100 on USD-M with a reduce-only stop of 100 at 0.98; the
    strategy then places a plain (not reduce-only) sell limit of 100 at 1.02, meant as a
    take-profit: the gate refuses it, as it refuses the same two the other way round.
    The stop closes the long at 0.97; when the price comes back to 1.02 nothing sells
    again: no short of 100, with no stop, that nobody asked for.

    Why (review 15b): core/accounting.funds_error dropped the reduce-only stop's
    commitment for the plain order too, so the overlap was admitted. On the exchange (one-way mode) the plain sell
    beyond the position opens a short: live ends SHORT 100 (run and exchange agree),
    while the sim, given the same orders, ends flat with a phantom sell booked against
    no position (tests/review15b/test_review15b_sim.py): the modes differ, and live's
    position is reversed."""
    from livekit import perp_in_step
    from tapekit import step_until
    lx = perp([1.0, 1.0, 0.99, 0.97, 0.99, 1.01, 1.02, 1.03] + [1.03] * 30)
    with quick_settle(lx) as run:
        stop = armed(run, lx, "stop_order", 0.98)
        assert run.call("limit_order", PERP, 100.0, 1.02, side="sell") is None
        assert run.strategy.errors[-1].endswith("but only 0 is open and not already being "
                                                "reduced by another order")
        step_until(lx, lambda: stop.filled == 100.0)
        step_until(lx, lambda: not [o for o in orders(run) if o.is_open])
        client_pos = [p for p in __import__("livekit").raw_client(lx, "binanceusdm")
                      .fetch_positions([PERP]) if float(p.get("contracts") or 0)]
        diffs = perp_in_step(run, lx)
        assert not client_pos, (
            f"exchange positions {[(p['side'], p['contracts']) for p in client_pos]}, "
            f"run long {run.state()['assets'][PERP]['long']}, short "
            f"{run.state()['assets'][PERP]['short']}; differences: {diffs}")


def test_after_a_restart_an_unknown_amend_of_a_plain_stop_sells_twice(perp, tmp_path):
    """Expected: as above, with a stop that is not reduce-only (a plain STOP_MARKET sell
    of the whole long of 100, native on USD-M): once the run restarts and finds the
    replacement open, the old stop is cancelled, so a fall through both triggers sells
    100 once and leaves the account flat.

    Why: the cancel of the old stop waits in memory (inflight.Flight.settled, appended by
    inflight.settle_then from contingent.amend_stop); the restart adopts both stops and
    forgets it. A gap from 0.99 to 0.94 then fires both on one trade: 200 sold, the
    exchange's one-way position turned into a short of 100 with no stop (a double sell),
    while the run, booking the second sell against its closed long, shows flat."""
    from tapekit import step_until
    lx = perp([1.0] * 8 + [0.99, 0.94] + [0.94] * 30)
    path = tmp_path / "t"
    with trace_at(path) as trace, quick_settle(lx, trace=trace) as run:
        old = armed(run, lx, "stop_order", 0.95, reduce_only=False)
        lx.faults.update({"http_status": 503, "http_path": "/fapi/v1/algoOrder",
                          "http_processed": True, "stall_user": True})
        run.call("amend_stop", PERP, old.id, 0.97)
        assert len(algos(lx)) == 2
    lx.faults.update({"http_status": None, "stall_user": False})
    with trace_at(path) as trace, quick_settle(lx, trace=trace) as second:
        step_until(lx, lambda: not algos(lx))
        eventually(lambda: not [o for o in orders(second) if o.is_open], timeout=10)
        from livekit import perp_in_step, raw_client
        theirs = [(p["side"], p["contracts"]) for p in
                  raw_client(lx, "binanceusdm").fetch_positions([PERP])
                  if float(p.get("contracts") or 0)]
        sold = [(t.order_id, t.amount) for t in second.strategy.fills if t.side.value == "sell"]
        state = second.state()["assets"][PERP]
        assert theirs == [] and sum(a for _, a in sold) <= 100.0, (
            f"both stops sold: {sold}; the exchange holds {theirs}, the run long "
            f"{state['long']}, short {state['short']}; differences: "
            f"{eventually(lambda: perp_in_step(second, lx) or ['none'], timeout=3)}")


def test_a_usdm_brackets_exits_lost_in_a_crash_are_placed_on_the_exchange(perp, tmp_path):
    """A run killed after its exits were recorded as covering a USD-M bracket's entry and
    before they were placed (tests/live/test_live_bracket_restart.py has it on spot):
    the restart places the exits for the long of 100 as the bracket would have, both on
    the exchange (a reduce-only stop algo order and a reduce-only target), naming the
    entry, and says so."""
    from livekit import crashed
    lx = perp([1.0] * 40)
    full, cut = tmp_path / "full", tmp_path / "cut"
    with trace_at(full) as trace, live(lx, QuietPerp, trace=trace) as first:
        old = bracket(first, lx)
        assert first.call("cancel_orders", PERP) is True  # after the cut: never sent
    assert algos(lx) == []
    crashed(full, cut, lambda e: e["kind"] == "legs_covered")
    with trace_at(cut) as trace, live(lx, QuietPerp, trace=trace) as second:
        eventually(lambda: len(exits(second)) == 2, 10)
        limit, stop = exits(second)[OrderType.LIMIT], exits(second)[OrderType.STOP_MARKET]
        assert {limit.id, stop.id}.isdisjoint(o.id for o in old)
        assert limit.entry == stop.entry == old[0].entry != ""
        assert (limit.amount, stop.amount, limit.price, stop.trigger) == (100.0, 100.0, 1.05, 0.975)
        assert limit.reduce_only and stop.reduce_only and stop.route == "native"
        eventually(lambda: [a.client_id for a in algos(lx)] == [stop.id])
        assert [m for w, m in second.strategy.seen_errors if w == f"exits:{PERP}"]
        strategy = second.strategy
    replayed(strategy, cut)


def exits(run):
    """The open exits of a bracket (orders naming an entry), by type."""
    return {o.type: o for o in orders(run) if o.entry}
