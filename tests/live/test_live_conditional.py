"""Conditional orders in live mode against the local exchange, through the real ccxt client:
native on the exchange where the venue holds the type, emulated by the engine otherwise."""

from __future__ import annotations

import pytest

from planarpy import Side, missing
from planarpy.core.orders import OrderType

from livekit import eventually, live, never, raw_client
from tapekit import STEP, SYM, Events, scripted_exchange, step_until


@pytest.fixture
def scripted(local_exchange_factory):
    return lambda path: scripted_exchange(local_exchange_factory, path)


def sells(run):
    return [t for t in run.strategy.fills if t.side is Side.SELL]


def bought(run, trade):
    """What a market buy left to sell (the fee is taken in the base on Binance spot)."""
    return run.strategy.assets[0].floor_amount(trade.amount - trade.fee)


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
    """The public trades stream goes silent while the price falls through an emulated
    trailing stop; the REST fetch after the stall shows where the market went: the stop
    fires at once, at the market, and the run is told (trigger_late)."""
    lx = scripted([0.00151, 0.0015, 0.00149, 0.00146, 0.00145] + [0.00145] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("trailing_stop_order", SYM, amount, offset=0.0000302) is missing
        eventually(lambda: "triggers:XRP/ETH" in run.session.watchers)
        lx.faults.update({"stall_public": True})
        for _ in range(4):  # 0.00151, 0.0015, 0.00149, 0.00146: through the stop, unseen
            lx.step(STEP)
        eventually(lambda: sells(run), timeout=15)
        (late,) = trace.of("trigger_late")
        assert "may have fired while the stream was down" in late["message"]
        assert [w for w, _ in run.strategy.seen_errors if w == "trigger_late:XRP/ETH"]
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
    log = []
    lx.engine.listeners.append(lambda ev: log.append(ev.payload)
                               if getattr(ev, "payload", {}).get("e") == "executionReport"
                               else None)
    with live(lx) as run:
        amount = bought(run, run.call("market_order", SYM, 1000.0, side="buy"))
        assert run.call("stop_order", SYM, amount, 0.00145) is missing
        (old,) = run.strategy.assets[0].orders.values()
        assert run.call("amend_stop", SYM, old.id, 0.00148) is missing
        (new,) = run.strategy.assets[0].orders.values()
        assert new.id != old.id and new.trigger == 0.00148 and new.route == "native"
        stops = [(e["c"] if e["x"] != "CANCELED" else e["C"], e["x"]) for e in log
                 if e["o"] == "STOP_LOSS"]
        assert stops == [(old.id, "NEW"), (old.id, "CANCELED"), (new.id, "NEW")]
        assert raw_client(lx).fetch_balance()["XRP"]["used"] == amount
        step_until(lx, lambda: sells(run))  # 0.00146 fires the new stop (not the old)
        assert sells(run)[0].order_id == new.id


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
