"""A seeded soak: continuous order flow under a random schedule of every fault the local
exchange has. At the end the local orders, trades and balances equal the exchange's, the
trace replays to the live state, and nothing is lost: every order the run created is
settled, and the same on both sides.

The short form runs in the default suite (25 s of faults). The long form runs with
PLANARPY_SOAK_MINUTES=N (and PLANARPY_SOAK_SEED=S), e.g.
    PLANARPY_SOAK_MINUTES=10 python -m pytest -s tests/live/test_live_soak.py -k long
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from typing import Any, Callable

import pytest

from planarpy import call
from planarpy.trace import EventTrace, trace_tail

from livekit import ALL, Quiet, counterparty, eventually, in_step, live, raw_client, replayed

SYM = "XRP/ETH"
SEED = int(os.environ.get("PLANARPY_SOAK_SEED", "13"))
SETTINGS = {"exchanges": {"binance": {"rate_limit": False, "timeout": 500,
                                      "options": {"recvWindow": 1000}}}}


class Flow(Quiet):
    """Every `tick_interval` one random action (on_interval: a tick comes only once per
    closed candle, and the soak's clock moves in jumps): market buys and sells, near and
    far limit bids (some fire and forget), cancels. Seeded; stops when `running` is
    cleared."""

    def reset(self) -> None:
        super().reset()
        self.rng = random.Random(SEED)
        self.running = False
        self.actions: Counter[str] = Counter()

    def on_interval(self, ts: int) -> None:
        ai = self.assets[0]
        if not self.running or ai.ohlcv is None:
            return
        price = float(ai.ohlcv.close[-1])
        roll = self.rng.random()
        if roll < 0.25:
            self.act("market buy", "market_order", SYM, 100.0, side="buy", waitfor=1.0)
        elif roll < 0.5:
            if ai.free_balance > 1000:
                self.act("market sell", "market_order", SYM, 100.0, side="sell",
                         waitfor=0 if self.rng.random() < 0.3 else 1.0, synced=False)
        elif roll < 0.7:
            self.act("near bid", "limit_order", SYM, 100.0, round(price * 0.999, 8),
                     side="buy", waitfor=0.2)
        elif roll < 0.82:
            self.act("far bid", "limit_order", SYM, 100.0, round(price * 0.5, 8), side="buy",
                     waitfor=0, synced=False)
        elif roll < 0.97:
            self.act("cancel", "cancel_orders", SYM, waitfor=0.5)

    def act(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name != "cancel" and self.free_cash < 2.0:
            return
        call(self, *args, **kwargs)
        self.actions[name] += 1


def faults(lx: Any, rng: random.Random) -> list[tuple[str, Callable[[], None]]]:
    """Each fault the local exchange has, as (name, switch it on); all are cleared after."""
    f = lx.faults.update
    other = counterparty(lx)
    return [
        ("5xx on the order, not executed", lambda: f(
            {"http_status": rng.choice([500, 502, 503, 504]), "http_path": "POST /api/v3/order",
             "http_count": 1})),
        ("5xx on the order, executed", lambda: f(
            {"http_status": 503, "http_path": "POST /api/v3/order", "http_count": 1,
             "http_processed": True})),
        ("5xx everywhere", lambda: f({"http_status": 503, "http_count": rng.randint(2, 8)})),
        ("429", lambda: f({"http_status": 429, "http_count": 1, "retry_after": 0})),
        ("418", lambda: f({"http_status": 418, "http_count": 1, "retry_after": 0})),
        ("order stalls past the timeout, lookups 503", lambda: f(
            {"delay_ms": 800, "delay_path": "POST /api/v3/order", "delay_count": 1,
             "http_status": 503, "http_path": "GET /api/v3/order"})),
        ("slow exchange", lambda: f({"delay_ms": rng.choice([50, 200, 700])})),
        ("slow websockets", lambda: f({"ws_delay_ms": rng.choice([20, 100])})),
        ("user data after the answers", lambda: f({"user_lag_ms": rng.choice([10, 80])})),
        ("clock skew", lambda: f({"clock_skew_ms": rng.choice([-3000, 3000, 30_000])})),
        ("silent user stream", lambda: f({"stall_user": True})),
        ("silent market stream", lambda: f({"stall_public": True})),
        ("user data withheld", lambda: f({"withhold_user": True})),
        ("user data twice", lambda: f({"duplicate_user": True})),
        ("user data reordered", lambda: f({"reorder_user": True})),
        ("websockets refused and dropped", lambda: (f({"refuse_ws": True}),
                                                   lx.faults.drop_websockets("user"))),
        ("websockets dropped", lambda: lx.faults.drop_websockets()),
        ("order placed by hand", lambda: lx.place_by_hand(
            "XRPETH", "buy", 100, round(_bid(other) * 0.5, 8))),
        ("someone trades", lambda: other.create_order(SYM, "market", rng.choice(["buy", "sell"]),
                                                      100.0)),
    ]


def _bid(client: Any) -> float:
    return client.fetch_order_book(SYM)["bids"][0][0]


def schedule(lx: Any, seconds: float, stop: threading.Event) -> Counter[str]:
    """Switch random faults on and off (and move the market) for `seconds`."""
    rng = random.Random(SEED)
    table = faults(lx, rng)
    other = counterparty(lx, "seller")
    applied: Counter[str] = Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        name, switch = rng.choice(table)
        try:
            switch()
        except Exception as e:  # a fault that could not be switched on counts as none
            name = f"(failed: {type(e).__name__}) {name}"
        applied[name] += 1
        stop.wait(rng.uniform(0.1, 0.8))
        lx.faults.clear()
        if rng.random() < 0.3:
            lx.step(rng.choice([1000, 5000, 30_000]))  # the market moves: resting bids fill
        if rng.random() < 0.3:
            other.create_order(SYM, "market", "sell", 100.0)  # and someone sells into them
        stop.wait(rng.uniform(0.05, 0.3))
    lx.faults.clear()
    return applied


def created(path: Any) -> dict[str, dict[str, Any]]:
    """Every order the run created (not adopted), with its last state in the trace."""
    out: dict[str, dict[str, Any]] = {}
    for e in trace_tail(path, n=10_000_000):
        p = e["payload"]
        if e["kind"] == "order_created" and not p.get("exchange_id"):
            out[p["id"]] = {"status": "open", "amount": p["amount"], "filled": 0.0}
        elif p.get("id") in out and e["kind"] in ("order_closed", "order_updated"):
            out[p["id"]]["status"] = p["status"]
        elif p.get("order_id") in out and e["kind"] in ("trade_created", "trade_emulated"):
            o = out[p["order_id"]]
            o["filled"] += p["amount"]
            if o["filled"] >= o["amount"] * (1 - 1e-9):
                o["status"] = "closed"
    return out


def soak(lx: Any, tmp_path: Any, seconds: float) -> str:
    lx.step(3_600_000)
    path = tmp_path / "t"
    stop = threading.Event()
    started = time.monotonic()
    with EventTrace.open(path, strategy="Flow", exchange="binance") as trace:
        with live(lx, Flow, trace=trace, settings=SETTINGS, tick_interval=0.05,
                  adopt_every=0.5, stall_after=1.0) as run:
            run.strategy.running = True
            try:
                applied = schedule(lx, seconds, stop)
            finally:
                run.strategy.running = False
            eventually(lambda: not run.session.flights.unknown(), timeout=30)
            eventually(lambda: run.call("cancel_orders", SYM) and
                       not run.state()["assets"][SYM]["orders"], timeout=30)
            last: list[list[str]] = []
            try:
                eventually(lambda: not last.append(in_step(run, lx)) and last[-1] == [], timeout=30)
            except AssertionError:
                raise AssertionError(f"not in step ({path}): {last[-1]}") from None
            actions = dict(run.strategy.actions)
        trace.flush()
    replayed(run.strategy, path)
    mine = created(path)
    theirs = [o for o in raw_client(lx).fetch_orders(SYM, limit=ALL)
              if run.session.fills.owner(o["clientOrderId"]) == "mine"]
    ids = Counter(o["clientOrderId"] for o in theirs)
    assert all(n == 1 for n in ids.values()), "an order was placed twice"
    assert set(ids) <= set(mine), "an order the run does not know of"
    exchange = {o["clientOrderId"]: o for o in theirs}
    for cid, o in mine.items():
        assert o["status"] != "unknown", cid
        if cid not in exchange:
            assert o["status"] in ("rejected", "not_placed"), (cid, o)
        else:
            assert o["filled"] == pytest.approx(exchange[cid]["filled"]), (cid, o)
            assert o["status"] == {"canceled": "canceled", "expired": "canceled"}.get(
                exchange[cid]["status"], exchange[cid]["status"]), (cid, o, exchange[cid])
    statuses = Counter(o["status"] for o in mine.values())
    return (f"soak seed {SEED}: {sum(applied.values())} faults in "
            f"{(time.monotonic() - started) / 60:.1f} min, {len(mine)} orders "
            f"({dict(statuses)}), actions {actions}; faults {dict(applied)}")


def test_soak_short(local_exchange, tmp_path):
    """25 s of random faults over continuous order flow: nothing lost, all equal."""
    print(soak(local_exchange, tmp_path, 25.0))


@pytest.mark.timeout(0)  # as long as PLANARPY_SOAK_MINUTES says
@pytest.mark.skipif(not os.environ.get("PLANARPY_SOAK_MINUTES"),
                    reason="set PLANARPY_SOAK_MINUTES to run the long soak")
def test_soak_long(local_exchange, tmp_path):
    """The same for PLANARPY_SOAK_MINUTES minutes."""
    print(soak(local_exchange, tmp_path, 60.0 * float(os.environ["PLANARPY_SOAK_MINUTES"])))
