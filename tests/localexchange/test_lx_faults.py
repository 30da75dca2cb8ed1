"""Run-time faults, each seen by ccxt as a real exchange's failure would be."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import aiohttp
import ccxt
import ccxt.pro
import pytest

from planarpy.localexchange import point_ccxt

from livekit import conns, started, streaming, until, user_streams

SPOT = "XRP/ETH"
PERP = "XRP/USDT:USDT"


def admin(lx, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(lx.url + path, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_http_5xx_then_recovery(spot, local_exchange):
    """An HTTP 503 for one request is ExchangeNotAvailable; the next request succeeds."""
    local_exchange.faults.update({"http_status": 503, "http_count": 1})
    with pytest.raises(ccxt.ExchangeNotAvailable):
        spot.fetch_balance()
    assert spot.fetch_balance()["ETH"]["total"] == 100


def test_rate_limit_429_and_ban_418_carry_retry_after(spot, local_exchange):
    """429 and 418 answers are DDoSProtection in ccxt and carry a Retry-After header."""
    for status in (429, 418):
        local_exchange.faults.update({"http_status": status, "http_count": 1, "retry_after": 7})
        with pytest.raises(ccxt.DDoSProtection, match=str(status)):
            spot.fetch_ticker(SPOT)
        assert spot.last_response_headers["Retry-After"] == "7"


def test_fault_limited_to_a_path(spot, local_exchange):
    """A fault scoped to /api/v3/order leaves other endpoints working."""
    local_exchange.faults.update({"http_status": 500, "http_path": "/api/v3/order"})
    assert spot.fetch_balance()["ETH"]["total"] == 100
    with pytest.raises(ccxt.ExchangeNotAvailable):
        spot.create_order(SPOT, "market", "buy", 10)
    local_exchange.faults.clear()
    assert spot.create_order(SPOT, "market", "buy", 10)["status"] == "closed"


def test_delay_makes_client_time_out(spot, local_exchange):
    """Delayed answers past the client's timeout are RequestTimeout."""
    spot.timeout = 200
    local_exchange.faults.update({"delay_ms": 600})
    with pytest.raises(ccxt.RequestTimeout):
        spot.fetch_time()


def test_clock_skew_is_invalid_nonce_until_time_sync(spot, local_exchange):
    """A server clock 30 s ahead rejects ccxt's timestamps (-1021) until ccxt syncs its time difference."""
    local_exchange.faults.update({"clock_skew_ms": 30_000})
    with pytest.raises(ccxt.InvalidNonce):
        spot.fetch_balance()
    spot.load_time_difference()
    assert spot.fetch_balance()["ETH"]["total"] == 100


def test_admin_endpoint_sets_and_clears_faults(spot, local_exchange):
    """POST /lx/faults switches a fault on for ccxt; /lx/faults/clear switches everything off."""
    assert admin(local_exchange, "/lx/faults", {"http_status": 502})["http_status"] == 502
    with pytest.raises(ccxt.ExchangeNotAvailable):
        spot.fetch_time()
    admin(local_exchange, "/lx/faults/clear", {})
    assert spot.fetch_time() > 0
    t0 = local_exchange.clock.now()
    assert admin(local_exchange, "/lx/step", {"ms": 60_000})["market_time"] == t0 + 60_000
    assert admin(local_exchange, "/lx/state")["stepped"] is True


def test_dropped_websocket_is_network_error(run_pro, local_exchange):
    """Dropping WebSockets fails a pending watch with NetworkError; a new watch reconnects."""
    lx = local_exchange

    async def body(ex):
        task = await started(ex, ex.watch_trades(SPOT), lambda: streaming(lx, "xrpeth@trade"))
        dropped = conns(lx)
        assert lx.faults.drop_websockets() >= 1
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(task, 3)
        again = await started(ex, ex.watch_trades(SPOT), lambda: any(
            "xrpeth@trade" in c.streams for c in conns(lx) if c not in dropped))
        for _ in range(60):
            local_exchange.step(60_000)
            if (await asyncio.wait([again], timeout=0.05))[0]:
                break
        assert len(again.result()) >= 1
    run_pro(body)


def test_refused_websocket(run_pro, local_exchange):
    """With WebSockets refused, a watch fails with a NetworkError instead of hanging."""
    local_exchange.faults.update({"refuse_ws": True})
    async def body(ex):
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(ex.watch_trades(SPOT), 3)
    run_pro(body)


async def _closed_order(ex) -> None:
    """Watch the orders until one reports closed."""
    while not any(o["status"] == "closed" for o in await ex.watch_orders(SPOT)):
        pass


def test_stalled_user_stream_is_silent_but_rest_sees_fill(run_pro, local_exchange):
    """A stalled user stream delivers nothing (the watch times out) while REST shows the fill."""
    async def body(ex):
        first = asyncio.ensure_future(_closed_order(ex))
        await until(lambda: user_streams(local_exchange))
        await ex.create_order(SPOT, "market", "buy", 10)
        await asyncio.wait_for(first, 3)  # its last report is in: none can arrive late
        local_exchange.faults.update({"stall_user": True})
        task = asyncio.ensure_future(ex.watch_orders(SPOT))
        o = await ex.create_order(SPOT, "market", "buy", 10)
        done, _ = await asyncio.wait([task], timeout=0.5)  # silence: nothing may arrive
        assert not done
        assert (await ex.fetch_order(o["id"], SPOT))["status"] == "closed"
        task.cancel()
    run_pro(body)


def test_stalled_public_stream(run_pro, local_exchange):
    """A stalled market stream keeps the socket open and sends no trades while the replay runs."""
    local_exchange.faults.update({"stall_public": True})
    async def body(ex):
        task = await started(ex, ex.watch_trades(SPOT),
                             lambda: streaming(local_exchange, "xrpeth@trade"))
        assert local_exchange.step(3_600_000) > 0
        done, _ = await asyncio.wait([task], timeout=0.5)  # silence: nothing may arrive
        assert not done and len(local_exchange.hub.conns) == 1
        task.cancel()
    run_pro(body)


def test_withheld_user_events_leave_only_rest(run_pro, local_exchange):
    """Withheld user-data events never arrive: only a synced REST fetch shows the fill."""
    local_exchange.faults.update({"withhold_user": True})
    async def body(ex):
        task = await started(ex, ex.watch_my_trades(SPOT), lambda: user_streams(local_exchange))
        o = await ex.create_order(SPOT, "market", "buy", 10)
        done, _ = await asyncio.wait([task], timeout=0.5)  # silence: nothing may arrive
        assert not done
        trades = await ex.fetch_my_trades(SPOT)
        assert [t["order"] for t in trades] == [o["id"]]
        task.cancel()
    run_pro(body)


async def _user_frames(lx, n: int, act) -> list[dict]:
    """Open the futures listen-key stream raw, run `act`, return the first `n` frames."""
    async with aiohttp.ClientSession() as s:
        async with s.post(lx.url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": lx.api_key}) as r:
            key = (await r.json())["listenKey"]
        async with s.ws_connect(f"{lx.ws_url}/fstream/private/ws?listenKey={key}") as ws:
            await asyncio.get_running_loop().run_in_executor(None, act)
            return [json.loads((await asyncio.wait_for(ws.receive(), 3)).data) for _ in range(n)]


def test_duplicated_user_events(usdm, local_exchange):
    """With duplication on, every user-data event arrives twice in a row."""
    local_exchange.faults.update({"duplicate_user": True})
    frames = asyncio.run(_user_frames(local_exchange, 4, lambda: usdm.create_order(PERP, "market", "buy", 10)))
    assert frames[0] == frames[1] and frames[2] == frames[3]
    assert [f["o"]["x"] for f in frames[:4:2]] == ["NEW", "TRADE"]


def test_reordered_user_events(usdm, local_exchange):
    """With reordering on, events come in swapped pairs: the fill before the order's NEW."""
    local_exchange.faults.update({"reorder_user": True})
    frames = asyncio.run(_user_frames(local_exchange, 2, lambda: usdm.create_order(PERP, "market", "buy", 10)))
    assert [f["o"]["x"] for f in frames] == ["TRADE", "NEW"]


def test_an_order_answered_before_it_fills(spot, usdm, local_exchange):
    """With `reply_before_fill`, a market order's answer says it is open with nothing
    filled (spot: no fills either); the order filled all the same, as its lookup shows."""
    local_exchange.faults.update({"reply_before_fill": True})
    for ex, symbol in ((spot, SPOT), (usdm, PERP)):
        o = ex.create_order(symbol, "market", "buy", 10)
        assert (o["status"], o["filled"], o["trades"]) == ("open", 0.0, []), o
        found = ex.fetch_order(o["id"], symbol)
        assert (found["status"], found["filled"]) == ("closed", 10.0)


def test_a_5xx_either_executes_the_request_or_not(spot, local_exchange):
    """A 503 on an order with `http_processed` off leaves nothing; with it on, the order
    exists although the client saw only the 503 (Binance's "execution status unknown")."""
    faults = local_exchange.faults
    for processed, cid in ((False, "not-executed"), (True, "executed")):
        faults.update({"http_status": 503, "http_path": "POST /api/v3/order", "http_count": 1,
                       "http_processed": processed})
        with pytest.raises(ccxt.ExchangeNotAvailable):
            spot.create_order(SPOT, "limit", "buy", 10, 0.0005, {"clientOrderId": cid})
        faults.clear()
    assert [o["clientOrderId"] for o in spot.fetch_open_orders(SPOT)] == ["executed"]


def test_a_method_scoped_fault_leaves_other_methods_alone(spot, local_exchange):
    """"GET /api/v3/order" fails lookups only: orders are placed and cancelled."""
    local_exchange.faults.update({"http_status": 503, "http_path": "GET /api/v3/order"})
    o = spot.create_order(SPOT, "limit", "buy", 10, 0.0005, {"clientOrderId": "c1"})
    with pytest.raises(ccxt.ExchangeNotAvailable):
        spot.fetch_order(o["id"], SPOT)
    assert spot.cancel_order(o["id"], SPOT)["status"] == "canceled"


def test_a_request_stalled_past_the_timeout_is_executed_late(spot, local_exchange):
    """The order POST waits 600 ms (once): the client times out at 200 ms; a lookup
    meanwhile finds nothing; the exchange executes the order all the same."""
    spot.timeout = 200
    local_exchange.faults.update({"delay_ms": 600, "delay_path": "POST /api/v3/order",
                                  "delay_count": 1})
    with pytest.raises(ccxt.RequestTimeout):
        spot.create_order(SPOT, "limit", "buy", 10, 0.0005, {"clientOrderId": "late"})
    with pytest.raises(ccxt.OrderNotFound):
        spot.fetch_order(None, SPOT, {"origClientOrderId": "late"})  # not there yet
    spot.timeout = 5000
    deadline = time.monotonic() + 5
    while not spot.fetch_open_orders(SPOT) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [o["clientOrderId"] for o in spot.fetch_open_orders(SPOT)] == ["late"]


def test_an_order_placed_by_hand(spot, local_exchange):
    """place_by_hand and POST /lx/orders place orders with the exchange's own client ids,
    seen by the account like any other; a bad one is refused with Binance's error."""
    o = local_exchange.place_by_hand("XRPETH", "buy", 10, "0.0005")
    assert o["clientOrderId"].startswith("web_") and o["status"] == "NEW"
    o2 = admin(local_exchange, "/lx/orders", {"symbol": "XRPETH", "side": "buy", "amount": 10,
                                              "price": "0.0004"})
    assert {x["clientOrderId"] for x in spot.fetch_open_orders(SPOT)} == \
        {o["clientOrderId"], o2["clientOrderId"]}
    with pytest.raises(Exception, match="400"):
        admin(local_exchange, "/lx/orders", {"symbol": "XRPETH", "side": "buy", "amount": 1e9,
                                             "price": "0.0004"})


def test_the_websocket_api_executes_an_order_answered_5xx_when_asked(run_pro, local_exchange):
    """The WebSocket API answers -1007 (execution status unknown); with `http_processed`
    the order was executed."""
    local_exchange.faults.update({"http_status": 503, "http_path": "order.place",
                                  "http_count": 1, "http_processed": True})

    async def body(ex):
        with pytest.raises(ccxt.BaseError, match="-1007"):
            await ex.create_order_ws(SPOT, "limit", "buy", 10, 0.0005, {"clientOrderId": "ws1"})
        assert [o["clientOrderId"] for o in await ex.fetch_open_orders(SPOT)] == ["ws1"]
    run_pro(body)
