"""Live mode's overhead against the local exchange, with the real ccxt client.

1. A market order through `call` versus the same order through raw ccxt (ccxt.pro's
   async client on its own loop), mean round trip and their ratio (target <= 1.2), with
   the exchange in a separate process.
2. The time from a user-data event leaving the exchange's WebSocket to the strategy's
   state having applied it (on_trade), median over resting orders filled by another
   account (target <= 2 ms). Server and strategy run in this process, so one clock serves.
Run: python bench/live.py [--orders N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "kit"))
from livekit import Quiet, counterparty, live, raw_client  # noqa: E402

from planarpy.localexchange import TEST_KEY, TEST_SECRET, LocalExchange, point_ccxt  # noqa: E402

SYM = "XRP/ETH"
SENT: dict[str, int] = {}
_TRADE = re.compile(r'"x":"TRADE"')
_OURS = re.compile(r'"c":"pp[^"]*"')  # our client order ids: the other side's frame has its own
_TID = re.compile(r'"t":(\d+)')
_send_str = web.WebSocketResponse.send_str


async def _stamped_send(self: web.WebSocketResponse, data: str, *args, **kwargs) -> None:
    if _TRADE.search(data) and _OURS.search(data):
        m = _TID.search(data)
        if m:
            SENT.setdefault(m.group(1), time.perf_counter_ns())
    await _send_str(self, data, *args, **kwargs)


class Timed(Quiet):
    def reset(self) -> None:
        super().reset()
        self.applied: dict[str, int] = {}

    def on_trade(self, ai, trade) -> None:
        self.applied.setdefault(trade.id, time.perf_counter_ns())


class Remote:
    """A local exchange in its own process (`planarpy exchange serve`), so that its work
    does not share this process's interpreter with the client being measured."""

    api_key, secret = TEST_KEY, TEST_SECRET

    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "planarpy.cli.main", "exchange",
                                      "serve", "--port", str(port), "--speed", "1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/api/v3/time", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_round_trips(lx: Any, n: int, watch: bool = False) -> list[float]:
    """Market orders through raw ccxt.pro; with `watch`, while watch_orders, watch_my_trades
    and watch_balance run on the same loop, as live mode runs them to stay in step."""
    async def drain(stream: Any) -> None:
        while True:
            await stream()

    async def go() -> list[float]:
        ex = point_ccxt(ccxt.pro.binance({"apiKey": lx.api_key, "secret": lx.secret}), lx.url)
        tasks = []
        try:
            await ex.load_markets()
            if watch:
                for stream in (lambda: ex.watch_orders(SYM), lambda: ex.watch_my_trades(SYM),
                               ex.watch_balance):
                    tasks.append(asyncio.ensure_future(drain(stream)))
                await ex.create_order(SYM, "market", "buy", 100.0)
                await asyncio.sleep(0.5)  # streams connected
            out = []
            for k in range(n):
                t = time.perf_counter()
                o = await ex.create_order(SYM, "market", "buy" if k % 2 == 0 else "sell", 100.0)
                out.append(time.perf_counter() - t)
                if o["filled"] != 100.0:  # an unfilled order is cheaper: it would skew the ratio
                    raise SystemExit(f"raw order {k} did not fill: {o['status']}")
            return out
        finally:
            for task in tasks:
                task.cancel()
            await ex.close()
    return asyncio.run(go())


def call_round_trips(run, n: int) -> list[float]:
    out = []
    for k in range(n):
        t = time.perf_counter()
        trade = run.call("market_order", SYM, 100.0, side="buy" if k % 2 == 0 else "sell")
        out.append(time.perf_counter() - t)
        if not trade:
            raise SystemExit(f"order {k} did not fill: {run.strategy.errors[-1:]}")
    return out


def event_latencies(lx: LocalExchange, run, n: int) -> list[float]:
    other = counterparty(lx)
    mine = raw_client(lx)
    out = []
    for k in range(n):
        bid = mine.fetch_order_book(SYM)["bids"][0][0]
        run.call("limit_order", SYM, 100.0, round(bid + 2e-8, 8), side="buy", waitfor=0.05)
        before = len(run.strategy.applied)
        other.create_order(SYM, "market", "sell", 100.0)
        deadline = time.monotonic() + 5
        while len(run.strategy.applied) == before and time.monotonic() < deadline:
            time.sleep(0.0005)
        run.call("market_order", SYM, 100.0, side="sell")  # back to where we were
    for tid, applied in run.strategy.applied.items():
        if tid in SENT:
            out.append((applied - SENT[tid]) / 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=200)
    args = ap.parse_args()
    # ccxt's rate limiter would space orders out on both sides alike: off on both
    settings = {"exchanges": {"binance": {"rate_limit": False}}}
    remote = Remote()
    try:
        raw_round_trips(remote, 10)  # warm up
        raw = raw_round_trips(remote, args.orders)
        watched = raw_round_trips(remote, args.orders, watch=True)
        with live(remote, Timed, tick_interval=60, settings=settings) as run:
            call_round_trips(run, 10)
            via = call_round_trips(run, args.orders)
    finally:
        remote.close()
    web.WebSocketResponse.send_str = _stamped_send  # stamp frames as they leave the server
    with LocalExchange() as lx:
        lx.step(3_600_000)
        with live(lx, Timed, tick_interval=60, settings=settings) as run:
            lat = event_latencies(lx, run, max(20, args.orders // 4))
    r, c, w = statistics.mean(raw), statistics.mean(via), statistics.mean(watched)
    print(f"python {sys.version.split()[0]}, ccxt {ccxt.__version__}, local exchange on loopback, "
          "rate limiting off on both sides")
    print(f"market order, raw ccxt.pro:       mean {r * 1e3:7.2f} ms  median {statistics.median(raw) * 1e3:7.2f} ms")
    print(f"market order, raw ccxt.pro with its user-data streams watched:"
          f" mean {w * 1e3:7.2f} ms  median {statistics.median(watched) * 1e3:7.2f} ms")
    print(f"market order, planarpy call():    mean {c * 1e3:7.2f} ms  median {statistics.median(via) * 1e3:7.2f} ms")
    print(f"ratio call / raw: {c / r:.2f} (target <= 1.2); call / raw with streams watched: "
          f"{c / w:.2f}")
    if lat:
        print(f"user-data event -> local state: median {statistics.median(lat):.2f} ms, "
              f"p90 {sorted(lat)[int(0.9 * len(lat))]:.2f} ms over {len(lat)} fills (target <= 2 ms)")
    else:
        print("user-data event -> local state: no fill was matched to a sent frame")


if __name__ == "__main__":
    main()
