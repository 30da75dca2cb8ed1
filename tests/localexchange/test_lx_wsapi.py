"""The WebSocket API's trading requests through the unmodified ccxt.pro clients: each answers
as its REST twin does, signed the same way, with the same errors."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import ccxt
import ccxt.pro
import pytest

from planarpy.localexchange import point_ccxt

from livekit import started, user_streams

SPOT = "XRP/ETH"
PERP = "XRP/USDT:USDT"


def client(cls, lx, **config):
    return point_ccxt(cls({"apiKey": lx.api_key, "secret": lx.secret, **config}), lx.url)


def test_spot_orders_over_the_websocket_api(run_pro, spot):
    """create_order_ws fills a market order; a resting limit is found, listed and cancelled
    over the WebSocket API, and REST sees the same orders."""
    async def body(ex):
        o = await ex.create_order_ws(SPOT, "market", "buy", 100, None, {"clientOrderId": "ws-m1"})
        assert (o["status"], o["filled"], o["clientOrderId"]) == ("closed", 100, "ws-m1")
        assert [t["amount"] for t in o["trades"]] and sum(t["amount"] for t in o["trades"]) == 100
        bid = (await ex.fetch_order_book(SPOT))["bids"][0][0]
        lim = await ex.create_order_ws(SPOT, "limit", "buy", 100, round(bid * 0.5, 8),
                                       {"clientOrderId": "ws-l1"})
        assert lim["status"] == "open"
        found = await ex.fetch_order_ws(None, SPOT, {"origClientOrderId": "ws-l1"})
        assert (found["id"], found["status"]) == (lim["id"], "open")
        assert [x["id"] for x in await ex.fetch_open_orders_ws(SPOT)] == [lim["id"]]
        gone = await ex.cancel_order_ws(lim["id"], SPOT)
        assert (gone["id"], gone["status"]) == (lim["id"], "canceled")
        return o["id"], lim["id"]
    market_id, limit_id = run_pro(body)
    assert spot.fetch_order(market_id, SPOT)["status"] == "closed"
    assert spot.fetch_order(limit_id, SPOT)["status"] == "canceled"
    assert spot.fetch_open_orders(SPOT) == []


def test_futures_orders_over_the_websocket_api(run_pro, usdm):
    """binanceusdm's create_order_ws and cancel_order_ws reach the USD-M WebSocket API."""
    async def body(ex):
        o = await ex.create_order_ws(PERP, "market", "buy", 10)
        assert (o["filled"], o["side"]) == (10, "buy")
        bid = (await ex.fetch_order_book(PERP))["bids"][0][0]
        lim = await ex.create_order_ws(PERP, "limit", "buy", 10, round(bid * 0.9, 4))
        assert lim["status"] == "open"
        gone = await ex.cancel_order_ws(lim["id"], PERP)
        assert gone["status"] == "canceled"
    run_pro(body, ccxt.pro.binanceusdm)
    (pos,) = [p for p in usdm.fetch_positions([PERP]) if p["contracts"]]
    assert pos["contracts"] == 10 and usdm.fetch_open_orders(PERP) == []


def test_websocket_api_errors_are_ccxt_errors(run_pro, local_exchange):
    """A refused order, an unknown order and a bad key raise what REST raises; an order
    refused for lack of funds leaves nothing on the exchange."""
    async def body(ex):
        with pytest.raises(ccxt.InsufficientFunds):
            await ex.create_order_ws(SPOT, "limit", "buy", 10_000_000, 0.0003)
        with pytest.raises(ccxt.OrderNotFound):
            await ex.fetch_order_ws("424242", SPOT)
        assert await ex.fetch_open_orders(SPOT) == [] and await ex.fetch_closed_orders(SPOT) == []
    run_pro(body)

    async def forged() -> None:
        ex = client(ccxt.pro.binance, local_exchange, secret="not-the-secret")
        try:
            await ex.load_markets()
            with pytest.raises(ccxt.AuthenticationError, match="Signature"):
                await ex.create_order_ws(SPOT, "market", "buy", 100)
        finally:
            await ex.close()
    asyncio.run(forged())


def test_http_faults_reach_the_websocket_api(run_pro, local_exchange):
    """`http_status` faults answer WebSocket API requests too: a 429 is a rate limit, a 5xx
    an unknown outcome (ccxt OperationFailed: retry after looking the order up)."""
    async def body(ex):
        local_exchange.faults.update({"http_status": 429, "http_count": 1, "http_path": "order.place"})
        with pytest.raises(ccxt.RateLimitExceeded):
            await ex.create_order_ws(SPOT, "market", "buy", 100)
        local_exchange.faults.update({"http_status": 503, "http_count": 1, "http_path": "order.place"})
        with pytest.raises(ccxt.OperationFailed, match="execution status unknown"):
            await ex.create_order_ws(SPOT, "market", "buy", 100)
        o = await ex.create_order_ws(SPOT, "market", "buy", 100)  # the faults are used up
        assert o["filled"] == 100
        return await ex.fetch_closed_orders(SPOT)
    assert len(run_pro(body)) == 1


async def _frames_after_an_order(lx, lag_ms: int) -> list[str]:
    """On one raw WebSocket API connection: log in for user data, place a market order,
    and name the frames that come back in the order they come."""
    lx.faults.update({"user_lag_ms": lag_ms})
    ex = client(ccxt.pro.binance, lx)
    try:
        await ex.load_markets()
        login = ex.sign_params({})
        order = ex.sign_params({"symbol": "XRPETH", "side": "BUY", "type": "MARKET",
                                "quantity": "100"})
    finally:
        await ex.close()
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{lx.ws_url}/ws-api/ws-api/v3") as ws:
            await ws.send_str(json.dumps({"id": "login", "method": "userDataStream.subscribe.signature",
                                          "params": login}))
            assert json.loads((await ws.receive(timeout=3)).data)["status"] == 200
            await ws.send_str(json.dumps({"id": "o1", "method": "order.place", "params": order}))
            names = []
            for _ in range(4):  # the answer, NEW, TRADE, the balance
                frame = json.loads((await ws.receive(timeout=3)).data)
                names.append("answer" if frame.get("id") == "o1" else frame["event"]["e"])
            return names


def test_user_data_comes_before_or_after_the_answer(local_exchange):
    """By default an order's user-data events leave before its answer (the hard case for a
    client); with `user_lag_ms` they follow it, as Binance's stream usually does."""
    first = asyncio.run(_frames_after_an_order(local_exchange, 0))
    assert first == ["executionReport", "executionReport", "outboundAccountPosition", "answer"]
    lagged = asyncio.run(_frames_after_an_order(local_exchange, 30))
    assert lagged == ["answer", "executionReport", "executionReport", "outboundAccountPosition"]


def test_lagged_user_data_still_reaches_ccxt_streams(run_pro, local_exchange):
    """With user data lagging, ccxt's watch_my_trades still gets the fill, after the answer."""
    local_exchange.faults.update({"user_lag_ms": 50})

    async def body(ex):
        trades = await started(ex, ex.watch_my_trades(SPOT), lambda: user_streams(local_exchange))
        o = await ex.create_order(SPOT, "market", "buy", 100)
        assert not trades.done()  # the answer came first
        (t,) = await asyncio.wait_for(trades, 3)
        assert t["order"] == o["id"]
    run_pro(body)
