"""Run-time faults, each seen by ccxt as a real exchange's failure would be."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp
import ccxt
import ccxt.pro
import pytest

from planarpy.localexchange import point_ccxt

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
    async def body(ex):
        task = asyncio.ensure_future(ex.watch_trades(SPOT))
        await asyncio.sleep(0.3)
        assert local_exchange.faults.drop_websockets() >= 1
        with pytest.raises(ccxt.NetworkError):
            await asyncio.wait_for(task, 3)
        again = asyncio.ensure_future(ex.watch_trades(SPOT))
        await asyncio.sleep(0.3)
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


def test_stalled_user_stream_is_silent_but_rest_sees_fill(run_pro, local_exchange):
    """A stalled user stream delivers nothing (the watch times out) while REST shows the fill."""
    async def body(ex):
        first = asyncio.ensure_future(ex.watch_orders(SPOT))
        await asyncio.sleep(0.3)
        await ex.create_order(SPOT, "market", "buy", 10)
        await asyncio.wait_for(first, 3)
        local_exchange.faults.update({"stall_user": True})
        task = asyncio.ensure_future(ex.watch_orders(SPOT))
        o = await ex.create_order(SPOT, "market", "buy", 10)
        done, _ = await asyncio.wait([task], timeout=0.5)
        assert not done
        assert (await ex.fetch_order(o["id"], SPOT))["status"] == "closed"
        task.cancel()
    run_pro(body)


def test_stalled_public_stream(run_pro, local_exchange):
    """A stalled market stream keeps the socket open and sends no trades while the replay runs."""
    local_exchange.faults.update({"stall_public": True})
    async def body(ex):
        task = asyncio.ensure_future(ex.watch_trades(SPOT))
        await asyncio.sleep(0.3)
        assert local_exchange.step(3_600_000) > 0
        done, _ = await asyncio.wait([task], timeout=0.5)
        assert not done and len(local_exchange.hub.conns) == 1
        task.cancel()
    run_pro(body)


def test_withheld_user_events_leave_only_rest(run_pro, local_exchange):
    """Withheld user-data events never arrive: only a synced REST fetch shows the fill."""
    local_exchange.faults.update({"withhold_user": True})
    async def body(ex):
        task = asyncio.ensure_future(ex.watch_my_trades(SPOT))
        await asyncio.sleep(0.3)
        o = await ex.create_order(SPOT, "market", "buy", 10)
        done, _ = await asyncio.wait([task], timeout=0.5)
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
