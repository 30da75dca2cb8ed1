"""Native trailing stops on Binance spot in live mode, against the local exchange through
the real ccxt client: a trailing stop by a percentage goes to the exchange as a STOP_LOSS
(or, with an activation price, a TAKE_PROFIT) with `trailingDelta`, which the exchange
follows and fires; outside the symbol's TRAILING_DELTA filter, or by a price offset, the
engine holds it (emulated, tests/live/test_live_conditional.py)."""

from __future__ import annotations

import pytest

from planarpy import missing
from planarpy.core.orders import OrderType

from livekit import sells, eventually, live, never, raw_client, replayed
from tapekit import STEP, SYM, Events, step_until


def stops(run):
    with run.session.engine.locked():
        return list(run.strategy.assets[0].orders.values())


def bought(run):
    """A market buy of 1000 XRP: what it left to sell (Binance takes the fee in XRP)."""
    trade = run.call("market_order", SYM, 1000.0, side="buy")
    return run.strategy.assets[0].floor_amount(trade.amount - trade.fee)


def trace_at(path):
    from planarpy.trace import EventTrace
    return EventTrace.open(path, strategy="Quiet", exchange="binance")


def on_exchange(lx):
    """The exchange's open conditional orders of XRP/ETH."""
    return lx._call(lambda: [o for st in lx.engine.spot.values() for o in st.armed.items.values()])


# the price rallies from 0.0015 to 0.0016, then falls: 2% under 0.0016 is 0.001568
RALLY = [0.00151, 0.00155, 0.0016, 0.00158, 0.00155, 0.0015] + [0.0015] * 30


def test_spot_trailing_stop_is_native_follows_the_rally_then_fires(scripted, tmp_path):
    lx = scripted(RALLY)
    with trace_at(tmp_path / "t") as trace, live(lx, trace=trace) as run:
        amount = bought(run)
        assert run.call("trailing_stop_order", SYM, amount, percent=0.02) is missing
        (stop,) = stops(run)
        assert stop.route == "native" and stop.type is OrderType.TRAILING_STOP
        (held,) = raw_client(lx).fetch_open_orders(SYM)
        assert held["info"]["type"] == "STOP_LOSS" and held["info"]["trailingDelta"] == 200
        assert held["info"]["clientOrderId"] == stop.id and held["amount"] == amount
        (o,) = on_exchange(lx)
        for _ in range(4):  # 0.00151, 0.00155, 0.0016, 0.00158: it follows, does not fire
            lx.step(STEP)
        eventually(lambda: float(o.trail.trigger) == 0.001568)
        assert stops(run) == [stop] and not sells(run)
        step_until(lx, lambda: sells(run))  # 0.00155 <= 0.001568
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.amount == amount
        assert sell.price == pytest.approx(0.00155, rel=0.01)
        eventually(lambda: not stops(run))
        assert run.strategy.errors == []
    replayed(run.strategy, trace.path)


def test_spot_trailing_stop_with_an_activation_price_trails_only_from_there(scripted):
    """A 2% trailing sell from 0.00153: the dip to 0.00146 (2.7% under the price at
    placement) fires nothing; the exchange holds a TAKE_PROFIT that trails from 0.00154,
    follows 0.00158 and fires at 0.0015 (under 0.00158 x 0.98 = 0.0015484)."""
    lx = scripted([0.0015, 0.00146, 0.00154, 0.00158, 0.00155, 0.0015] + [0.0015] * 30)
    trace = Events()
    with live(lx, trace=trace) as run:
        amount = bought(run)
        assert run.call("trailing_stop_order", SYM, amount, percent=0.02,
                        activation=0.00153) is missing
        (stop,) = stops(run)
        assert stop.route == "native"
        (held,) = raw_client(lx).fetch_open_orders(SYM)
        assert held["info"]["type"] == "TAKE_PROFIT" and held["triggerPrice"] == 0.00153
        for _ in range(2):  # 0.0015, 0.00146: not armed
            lx.step(STEP)
        assert never(lambda: sells(run), 0.5)
        assert raw_client(lx).fetch_order(held["id"], SYM)["info"]["trailingTime"] == -1
        lx.step(STEP)  # 0.00154: it trails from here
        eventually(lambda: raw_client(lx).fetch_order(held["id"], SYM)["info"]["trailingTime"] > 0)
        step_until(lx, lambda: sells(run))
        (sell,) = sells(run)
        assert sell.order_id == stop.id and sell.price == pytest.approx(0.0015, rel=0.01)
        (created,) = [p for p in trace.of("order_created") if p["id"] == stop.id]
        assert created["route"] == "native" and created["activation"] == 0.00153


def test_cancelling_a_native_spot_trailing_stop_cancels_it_on_the_exchange(scripted):
    lx = scripted(RALLY)
    with live(lx) as run:
        amount = bought(run)
        assert run.call("trailing_stop_order", SYM, amount, percent=0.02) is missing
        (o,) = on_exchange(lx)
        assert run.call("cancel_orders", SYM) is True
        assert not stops(run) and o.status == "CANCELED"
        assert raw_client(lx).fetch_balance()["XRP"]["used"] == 0
        for _ in range(6):
            lx.step(STEP)
        assert never(lambda: sells(run), 1.0)


def test_a_restart_finds_the_native_spot_trailing_stop_and_follows_it(scripted, tmp_path):
    lx = scripted(RALLY)
    path = tmp_path / "t"
    with trace_at(path) as trace, live(lx, trace=trace) as first:
        amount = bought(first)
        assert first.call("trailing_stop_order", SYM, amount, percent=0.02) is missing
        (stop,) = stops(first)
    (o,) = on_exchange(lx)  # left open on the exchange (on_stop "keep")
    assert o.client_id == stop.id
    with trace_at(path) as trace, live(lx, trace=trace) as second:
        (again,) = stops(second)
        assert (again.id, again.route, again.type, again.trail) == (
            stop.id, "native", OrderType.TRAILING_STOP, 0.02)
        step_until(lx, lambda: sells(second))
        (sell,) = sells(second)
        assert sell.order_id == stop.id and sell.amount == amount
        eventually(lambda: not stops(second))
    replayed(second.strategy, path)


@pytest.mark.parametrize("kw", [
    {"percent": 0.25},  # 2500 bips: over the TRAILING_DELTA filter's 2000
    {"percent": 0.00005},  # half a basis point
    {"offset": 0.000032},  # by a price offset
])
def test_a_spot_trailing_stop_the_exchange_cannot_hold_is_emulated(scripted, kw):
    lx = scripted(RALLY)
    with live(lx) as run:
        amount = bought(run)
        assert run.call("trailing_stop_order", SYM, amount, **kw) is missing
        (stop,) = stops(run)
        assert stop.route == "emulated" and on_exchange(lx) == []
