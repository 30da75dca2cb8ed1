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
from tapekit import STEP, T0, Events

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


def step_until(lx, done, steps=40):
    for _ in range(steps):
        if done():
            return
        lx.step(STEP)
        try:
            eventually(done, timeout=0.3)
        except AssertionError:
            pass
    eventually(done, timeout=10)


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


def test_usdm_stop_is_an_algo_order_and_fills_at_its_orders_price(perp, tmp_path):
    from planarpy.trace import EventTrace
    lx = perp([1.0, 1.01, 0.99, 0.97, 0.98] + [0.98] * 30)
    trace = EventTrace.open(tmp_path / "t", strategy="QuietPerp", exchange="binanceusdm")
    with trace, live(lx, QuietPerp, trace=trace) as run:
        long(run, lx)
        assert run.call("stop_order", PERP, 100.0, 0.98, reduce_only=True) is missing
        (stop,) = orders(run)
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
