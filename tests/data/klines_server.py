"""Test kit: a Binance-format klines server on 127.0.0.1, fed with the bundled real candles.

Serves just what the real ccxt client needs to download candles: `GET /api/v3/exchangeInfo`
(spot markets, for load_markets with fetchMarkets types ['spot']), `/api/v3/time` and
`GET /api/v3/klines` with Binance's startTime / endTime / limit semantics. Tests can make
the next klines requests fail with an HTTP status (`fail_next`) and read the requests made.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
from aiohttp import web

from planarpy.data.ohlcv import OHLCV, load_csv, resample, timeframe_ms
from planarpy.data.sample import sample_path

INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")


def sample_markets() -> dict[str, tuple[str, str, str, OHLCV]]:
    """Binance id -> (base, quote, source timeframe, candles) of the bundled spot samples."""
    out = {}
    for base, quote, tf in (("XRP", "ETH", "1m"), ("ETH", "BTC", "5m")):
        path = sample_path("binance", f"{base}/{quote}", tf)
        assert path is not None
        out[base + quote] = (base, quote, tf, load_csv(path))
    return out


def _symbol_info(market_id: str, base: str, quote: str) -> dict[str, Any]:
    return {
        "symbol": market_id, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "1000.0",
             "tickSize": "0.00000001"},
            {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "90000000.0",
             "stepSize": "0.001"},
        ],
    }


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


class KlinesServer:
    """Run with `with KlinesServer() as srv:`; point ccxt at `srv.url`."""

    def __init__(self) -> None:
        self.markets = sample_markets()
        self.fail_next: list[int] = []  # HTTP statuses for the next klines requests
        self.requests: list[dict[str, str]] = []  # query of every klines request
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # aiohttp handlers

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbols = [_symbol_info(i, b, q) for i, (b, q, _, _) in self.markets.items()]
        return web.json_response({"timezone": "UTC", "serverTime": int(time.time() * 1000),
                                  "rateLimits": [], "exchangeFilters": [], "symbols": symbols})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def _klines(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(q)
        if self.fail_next:
            status = self.fail_next.pop(0)
            if status == 429:
                return _error(429, -1003, "Too many requests; current limit is 6000 request "
                                          "weight per 1 MINUTE.")
            return web.Response(status=status, text="Service Unavailable")
        market = self.markets.get(q.get("symbol", ""))
        if market is None:
            return _error(400, -1121, "Invalid symbol.")
        interval = q.get("interval", "")
        if interval not in INTERVALS:
            return _error(400, -1120, "Invalid interval.")
        try:
            limit = int(q.get("limit", 500))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            return _error(400, -1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= 1000:
            return _error(400, -1130, "Invalid data sent for a parameter.")
        return web.json_response(self._rows(market, interval, start, end, limit))

    def _rows(self, market: tuple[str, str, str, OHLCV], interval: str, start: int | None,
              end: int | None, limit: int) -> list[list[Any]]:
        _, _, src, ohlcv = market
        if timeframe_ms(interval) % timeframe_ms(src):
            return []
        if interval != src:
            ohlcv = resample(ohlcv, src, interval)
        ts = ohlcv.timestamp
        lo = 0 if start is None else int(np.searchsorted(ts, start, "left"))
        hi = len(ts) if end is None else int(np.searchsorted(ts, end, "right"))
        # Binance: first `limit` from startTime, else the last `limit` up to endTime
        lo, hi = (lo, min(hi, lo + limit)) if start is not None else (max(lo, hi - limit), hi)
        tf = timeframe_ms(interval)
        return [[t, repr(o), repr(h), repr(l), repr(c), repr(v), t + tf - 1, "0", 1, "0", "0", "0"]
                for t, o, h, l, c, v in zip(ts[lo:hi].tolist(), ohlcv.open[lo:hi].tolist(),
                                            ohlcv.high[lo:hi].tolist(), ohlcv.low[lo:hi].tolist(),
                                            ohlcv.close[lo:hi].tolist(),
                                            ohlcv.volume[lo:hi].tolist())]

    # lifecycle

    def klines_requests(self) -> int:
        return len(self.requests)

    def __enter__(self) -> "KlinesServer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("klines server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/klines", self._klines)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
