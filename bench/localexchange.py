"""Local exchange throughput: order round trips through ccxt, WebSocket frames delivered.

Run: python bench/localexchange.py. Prints figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
import ccxt

from planarpy.localexchange import LocalExchange, point_ccxt

SPOT = "XRP/ETH"


def order_round_trips(lx: LocalExchange, n: int = 300) -> None:
    ex = point_ccxt(ccxt.binance({"apiKey": lx.api_key, "secret": lx.secret}), lx.url)
    ex.load_markets()
    bid = ex.fetch_order_book(SPOT)["bids"][0][0]
    price = round(bid * 0.98, 8)
    t = time.perf_counter()
    for _ in range(n):
        o = ex.create_order(SPOT, "limit", "buy", 10, price)
        ex.cancel_order(o["id"], SPOT)
    dt = time.perf_counter() - t
    print(f"limit create+cancel through sync ccxt: {2 * n / dt:8.0f} requests/s ({n / dt:.0f} pairs/s)")
    t = time.perf_counter()
    for i in range(n):
        ex.create_order(SPOT, "market", "buy" if i % 2 == 0 else "sell", 10)
    dt = time.perf_counter() - t
    print(f"market orders through sync ccxt:       {n / dt:8.0f} orders/s")


async def ws_frames(lx: LocalExchange, hours: int = 24) -> None:
    streams = ["xrpeth@trade", "xrpeth@kline_1m", "xrpeth@depth@100ms", "xrpeth@bookTicker",
               "xrpeth@ticker"]
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{lx.ws_url}/stream/ws") as ws:
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
            await ws.receive()
            sent0 = lx.hub.sent
            loop = asyncio.get_running_loop()
            t = time.perf_counter()
            step = loop.run_in_executor(None, lx.step, hours * 3_600_000)
            received = 0
            while True:
                try:
                    await asyncio.wait_for(ws.receive(), 1.0)
                    received += 1
                except asyncio.TimeoutError:
                    break
            ticks = await step
            dt = time.perf_counter() - t - 1.0
    print(f"WebSocket frames delivered (5 streams): {received / dt:8.0f} frames/s "
          f"({received} frames for {ticks} replayed trades, server sent {lx.hub.sent - sent0})")


def main() -> None:
    with LocalExchange() as lx:
        order_round_trips(lx)
        asyncio.run(ws_frames(lx))


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
