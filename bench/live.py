"""Live mode's overhead against the local exchange, with the real ccxt client.

1. A market order through `call` versus the same order through raw ccxt, with the exchange
   in its own process and each client on its own account of it, so all three stay
   connected and are measured in turns (blocks), and drift on a busy machine hits them
   alike. The peers:
   - raw ccxt.pro: `await create_order(...)` (REST) on the client's own loop (the target's
     peer, ratio <= 1.2), and, for reference, `await create_order_ws(...)` (Binance's
     WebSocket API, which live mode does not use);
   - raw ccxt.pro with the user-data streams watched: create_order while watch_orders,
     watch_my_trades and watch_balance run on that loop, as anything that keeps its state
     in step with the exchange must run them (the like-for-like peer);
   - planarpy `call(...)` from the strategy's tick (the path strategy code takes), and
     `run.call(...)` from a script's thread (the REPL facade), the run recording its
     EventTrace as live runs do.
   Paced (an order every 10 ms, as a strategy reacting to the market sends them): the
   latency one order sees, the figure the target is for. Back to back (the next order as
   soon as the last returns): throughput, bound by CPU, since live mode must also parse
   every order's user-data frames. With rate limiting on (the default), ccxt spaces
   binance spot orders at least 10 ms apart (cost 0.2 of its 50 ms unit): the paced case.
2. The time from a user-data event leaving the exchange's WebSocket to the strategy's
   state having applied it (on_trade), median over resting orders filled by another
   account (target <= 2 ms). Server and strategy run in this process, so one clock serves.
The local exchange sends an order's user-data events before its answer by default: the
hard case, where the client must parse them before it sees the answer. Binance's stream
lags its answers (by a few ms to over 100 ms); `--user-lag-ms 5` models that.
Run: python bench/live.py [--orders N] [--user-lag-ms MS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Awaitable

import ccxt
import ccxt.pro
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "kit"))
from livekit import Quiet, counterparty, live, raw_client  # noqa: E402

from planarpy import call  # noqa: E402
from planarpy.localexchange import TEST_KEY, TEST_SECRET, LocalExchange, point_ccxt  # noqa: E402
from planarpy.trace import EventTrace  # noqa: E402

SYM = "XRP/ETH"
AMOUNT = 20.0  # small beside the book: three clients take from it within its refill time
BLOCKS = 5
GAP = 0.010  # seconds between paced orders
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
    """Records when each fill is applied; and, given a job, sends orders from its
    `on_interval`, which runs on the engine's loop as `tick` does (the path strategy code
    takes)."""

    def reset(self) -> None:
        super().reset()
        self.applied: dict[str, int] = {}
        self.jobs: queue.Queue = queue.Queue()
        self.done: queue.Queue = queue.Queue()
        self.job: tuple[int, bool] | None = None
        self.times: list[float] = []

    def on_trade(self, ai, trade) -> None:
        self.applied.setdefault(trade.id, time.perf_counter_ns())

    def on_interval(self, ts: int) -> None:
        """Back to back: all of a job's orders in one call. Paced: one order per call, the
        calls `tick_interval` apart (it must not sleep: that would stall the loop)."""
        if self.job is None:
            try:
                self.job = self.jobs.get_nowait()
            except queue.Empty:
                return
            self.times = []
        n, paced = self.job
        for k in range(len(self.times), n):
            t = time.perf_counter()
            trade = call(self, "market_order", SYM, AMOUNT, side="buy" if k % 2 == 0 else "sell")
            self.times.append(time.perf_counter() - t)
            if not trade:
                self.job = None
                self.done.put(f"order {k} did not fill: {self.errors[-1:]}")
                return
            if paced:
                break
        if len(self.times) == n:
            self.job = None
            self.done.put(self.times)


class Remote:
    """A local exchange in its own process (`planarpy exchange serve`), so that its work
    does not share this process's interpreter with the clients being measured; the raw
    clients trade on accounts of their own (`--account`)."""

    api_key, secret = TEST_KEY, TEST_SECRET

    def __init__(self, accounts: tuple[str, ...]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        extra = [a for name in accounts for a in ("--account", name)]
        self.proc = subprocess.Popen([sys.executable, "-m", "planarpy.cli.main", "exchange",
                                      "serve", "--port", str(port), "--speed", "1", *extra],
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

    def faults(self, **changes: Any) -> None:
        req = urllib.request.Request(self.url + "/lx/faults", data=json.dumps(changes).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawClient:
    """A ccxt.pro client on its own loop thread; timings are taken on that loop."""

    def __init__(self, url: str, account: str, watch: bool, ws: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.ex = point_ccxt(ccxt.pro.binance({"apiKey": f"{account}-key",
                                               "secret": f"{account}-secret"}), url)
        self.tasks: list[asyncio.Future] = []
        self.create = self.ex.create_order_ws if ws else self.ex.create_order
        self.run(self._start(watch))

    def run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    async def _start(self, watch: bool) -> None:
        await self.ex.load_markets()
        if watch:  # read account-wide, as live mode reads them
            for stream in (self.ex.watch_orders, self.ex.watch_my_trades, self.ex.watch_balance):
                self.tasks.append(asyncio.ensure_future(_drain(stream)))
            await asyncio.sleep(0.3)
        await self._orders(10, 0.0)  # warm up: connections open, streams flowing

    async def _orders(self, n: int, gap: float) -> list[float]:
        out = []
        for k in range(n):
            t = time.perf_counter()
            o = await self.create(SYM, "market", "buy" if k % 2 == 0 else "sell", AMOUNT)
            out.append(time.perf_counter() - t)
            if o["filled"] != AMOUNT:  # an unfilled order is cheaper: it would skew the ratio
                raise RuntimeError(f"raw order {k} did not fill: {o['status']}")
            if gap:
                await asyncio.sleep(gap)
        return out

    def orders(self, n: int, gap: float) -> list[float]:
        return self.run(self._orders(n, gap))

    def close(self) -> None:
        async def stop() -> None:
            for task in self.tasks:
                task.cancel()
            await self.ex.close()
        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


async def _drain(stream: Any) -> None:
    while True:
        await stream()


IDLE_TICK = 1.0  # seconds between on_interval calls while the other peers are measured


def tick_orders(run: Any, n: int, gap: float) -> list[float]:
    """Orders sent by the strategy's own code on the loop (the path strategy code takes);
    paced, one per on_interval call, every `GAP` seconds. Between jobs the run calls it
    only every IDLE_TICK seconds, so that it does not load the process while the raw
    peers are timed."""
    run.session.tick_interval = gap or IDLE_TICK
    run.strategy.jobs.put((n, bool(gap)))
    try:
        out = run.strategy.done.get(timeout=300)
    finally:
        run.session.tick_interval = IDLE_TICK
    if isinstance(out, str):
        raise SystemExit(out)
    return out


def call_orders(run: Any, n: int, gap: float) -> list[float]:
    """Orders sent through the run's handle from this thread (a script, a REPL)."""
    out = []
    for k in range(n):
        t = time.perf_counter()
        trade = run.call("market_order", SYM, AMOUNT, side="buy" if k % 2 == 0 else "sell")
        out.append(time.perf_counter() - t)
        if not trade:
            raise SystemExit(f"order {k} did not fill: {run.strategy.errors[-1:]}")
        if gap:
            time.sleep(gap)
    return out


PEERS = ("raw", "raw_ws", "watched", "tick", "handle")


def compare(remote: Remote, n: int, trace_dir: Path) -> dict[str, dict[str, list[float]]]:
    """Per pacing, per peer: the round trips of every block, the peers taking turns."""
    settings = {"exchanges": {"binance": {"rate_limit": False}}}  # off on every side
    trace = EventTrace.open(trace_dir / "trace", strategy="Timed", exchange="binance",
                            redact=[TEST_KEY, TEST_SECRET])
    raws = {"raw": RawClient(remote.url, "raw", watch=False, ws=False),
            "raw_ws": RawClient(remote.url, "rawws", watch=False, ws=True),
            "watched": RawClient(remote.url, "watched", watch=True, ws=False)}
    out: dict[str, dict[str, list[float]]] = {}
    try:
        with live(remote, Timed, tick_interval=IDLE_TICK, settings=settings, trace=trace) as run:
            call_orders(run, 10, 0.0)
            tick_orders(run, 10, 0.0)
            for pacing, gap, per in (("back to back", 0.0, n // BLOCKS),
                                     ("paced", GAP, n // (2 * BLOCKS))):
                res = out[pacing] = {k: [] for k in (*PEERS, "ratios", "ratios_ws")}
                for _ in range(BLOCKS):
                    block = {k: c.orders(per, gap) for k, c in raws.items()}
                    block["tick"] = tick_orders(run, per, gap)
                    block["handle"] = call_orders(run, per, gap)
                    for k, times in block.items():
                        res[k] += times
                    tick = statistics.median(block["tick"])
                    res["ratios"].append(tick / statistics.median(block["raw"]))
                    res["ratios_ws"].append(tick / statistics.median(block["raw_ws"]))
    finally:
        for c in raws.values():
            c.close()
    return out


def event_latencies(lx: LocalExchange, run, n: int) -> list[float]:
    other = counterparty(lx)
    mine = raw_client(lx)
    out = []
    for k in range(n):
        bid = mine.fetch_order_book(SYM)["bids"][0][0]
        run.call("limit_order", SYM, AMOUNT, round(bid + 2e-8, 8), side="buy", waitfor=0.05)
        before = len(run.strategy.applied)
        other.create_order(SYM, "market", "sell", AMOUNT)
        deadline = time.monotonic() + 5
        while len(run.strategy.applied) == before and time.monotonic() < deadline:
            time.sleep(0.0005)
        run.call("market_order", SYM, AMOUNT, side="sell")  # back to where we were
    for tid, applied in run.strategy.applied.items():
        if tid in SENT:
            out.append((applied - SENT[tid]) / 1e6)
    return out


def _ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1e3:5.2f} ms  mean {statistics.mean(xs) * 1e3:5.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=400, help="back-to-back orders per peer")
    ap.add_argument("--user-lag-ms", type=int, default=0,
                    help="user-data events leave this long after the answer (default 0: before it)")
    args = ap.parse_args()
    remote = Remote(("raw", "rawws", "watched"))
    remote.faults(user_lag_ms=args.user_lag_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = compare(remote, args.orders, Path(tmp))
    finally:
        remote.close()
    web.WebSocketResponse.send_str = _stamped_send  # stamp frames as they leave the server
    settings = {"exchanges": {"binance": {"rate_limit": False}}}
    with LocalExchange() as lx:
        lx.step(3_600_000)
        with live(lx, Timed, tick_interval=60, settings=settings) as run:
            lat = event_latencies(lx, run, max(20, args.orders // 4))
    print(f"python {sys.version.split()[0]}, ccxt {ccxt.__version__}, local exchange in its own "
          f"process on loopback, rate limiting off on every side, {BLOCKS} blocks per peer in "
          f"turns; user data "
          + (f"{args.user_lag_ms} ms after the answer" if args.user_lag_ms else "before the answer"))
    titles = {"paced": "market order latency (paced, one every 10 ms)",
              "back to back": "order throughput (back to back, CPU bound)"}
    for pacing in ("paced", "back to back"):
        res = results[pacing]
        print(f"{titles[pacing]}:")
        print(f"  raw ccxt.pro create_order (REST)           {_ms(res['raw'])}")
        print(f"  raw ccxt.pro create_order_ws (WS API)      {_ms(res['raw_ws'])}")
        print(f"  raw ccxt.pro REST, user-data streams read {_ms(res['watched'])}")
        print(f"  planarpy call() in the strategy tick       {_ms(res['tick'])}")
        print(f"  planarpy run.call() from a script          {_ms(res['handle'])}")
        w = statistics.median(res["tick"]) / statistics.median(res["watched"])
        h = statistics.median(res["handle"]) / statistics.median(res["raw"])
        target = "; target <= 1.2" if pacing == "paced" else ""
        print(f"  ratio tick call / raw ccxt REST: {statistics.median(res['ratios']):.2f} (median of "
              f"the blocks' ratios{target}); / raw ccxt WS API: "
              f"{statistics.median(res['ratios_ws']):.2f}; / raw with streams: {w:.2f}; "
              f"script call / raw REST: {h:.2f}")
    if lat:
        print(f"user-data event -> local state: median {statistics.median(lat):.2f} ms, "
              f"p90 {sorted(lat)[int(0.9 * len(lat))]:.2f} ms over {len(lat)} fills (target <= 2 ms)")
    else:
        print("user-data event -> local state: no fill was matched to a sent frame")


if __name__ == "__main__":
    main()
