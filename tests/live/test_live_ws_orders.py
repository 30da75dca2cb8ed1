"""Orders over the exchange's WebSocket API (`ws_orders = true`): what goes where, what is
left behind, and what happens when that connection fails."""

import pytest

from planarpy import Trade, missing
from planarpy.trace import EventTrace, trace_tail

from livekit import eventually, live, raw_client

SYM = "XRP/ETH"
WS = {"exchanges": {"binance": {"rate_limit": False, "ws_orders": True}}}


@pytest.fixture
def lx(local_exchange):
    local_exchange.step(3_600_000)
    return local_exchange


def test_orders_and_cancels_go_over_the_websocket_api(lx, tmp_path):
    """Orders and cancels are create_order_ws / cancel_order_ws requests in the trace, and
    ccxt keeps nothing per answered request (it would grow with every order)."""
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace:
        with live(lx, settings=WS, trace=trace) as run:
            for k in range(30):
                t = run.call("market_order", SYM, 100.0, side="buy" if k % 2 == 0 else "sell")
                assert isinstance(t, Trade)
            assert run.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.1) is missing
            assert run.call("cancel_orders", SYM) is True
            kept = sum(len(c.subscriptions) for c in run.session.client.clients.values())
            assert kept < 10
            assert eventually(lambda: run.reconcile() == [], timeout=5)
        trace.flush()
        methods = [e["payload"]["method"] for e in trace_tail(tmp_path / "t", n=10_000,
                                                               kinds=["request_sent"])]
    assert methods.count("create_order_ws") == 31 and methods.count("cancel_order_ws") == 1
    assert "create_order" not in methods and "cancel_order" not in methods


def test_a_failed_websocket_api_falls_back_to_rest(lx, caplog):
    """With the WebSocket connections dropped and new ones refused, an order goes by REST
    after the WebSocket try fails, and exists once; so does a cancel. ccxt's failed dials
    do not reach the log as asyncio errors."""
    with live(lx, settings=WS) as run:
        run.call("market_order", SYM, 100.0, side="buy")  # the WebSocket API is connected
        lx.faults.update({"refuse_ws": True})
        lx.faults.drop_websockets()
        t = run.call("market_order", SYM, 100.0, side="buy", waitfor=3)
        assert isinstance(t, Trade), run.strategy.errors
        r = run.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.1)
        assert r is missing, run.strategy.errors
        assert run.call("cancel_orders", SYM) is True
        lx.faults.clear()
        buys = [o for o in raw_client(lx).fetch_orders(SYM) if o["side"] == "buy"]
        assert sorted(o["status"] for o in buys) == ["canceled", "closed", "closed"]
        assert eventually(lambda: run.reconcile() == [], timeout=10)
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.name == "asyncio"]
