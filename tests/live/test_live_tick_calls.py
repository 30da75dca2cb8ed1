"""`call` from the strategy's own code on the engine's loop (here `on_interval`, which runs
as `tick` does): what a slow exchange and an idle stop racing a new order leave behind."""

import asyncio
import time

import planarpy.modes.live.executor as executor
from planarpy import call, missing

from livekit import Quiet, eventually, live, raw_client

SYM = "XRP/ETH"


class OneOrder(Quiet):
    """Sends one resting limit buy from `on_interval` once armed; keeps what call returned."""

    def reset(self) -> None:
        super().reset()
        self.price = 0.0
        self.armed = False
        self.out: object = None
        self.kwargs: dict = {}

    def on_interval(self, ts: int) -> None:
        if self.armed and self.out is None:
            try:
                self.out = call(self, "limit_order", SYM, 100.0, self.price, side="buy",
                                **self.kwargs)
            except Exception as e:  # what the strategy sees
                self.out = e


def far_bid(lx) -> float:
    return round(raw_client(lx).fetch_order_book(SYM)["bids"][0][0] * 0.5, 8)


def test_a_tick_call_whose_order_gets_no_answer_leaves_no_order_behind(lx):
    """The exchange answers 503 to the order and to every lookup: the tick gets `missing`
    (the order's outcome is unknown: it holds its funds) and on_error hears why. Once the
    lookups work again and the submit window has passed, the exchange's "does not exist"
    closes the order as never placed, its funds free (nothing left open locally)."""
    settings = {"exchanges": {"binance": {"rate_limit": False, "options": {"recvWindow": 1000}}}}
    with live(lx, OneOrder, tick_interval=0.05, settings=settings) as run:
        s = run.strategy
        s.price, s.kwargs = far_bid(lx), {"waitfor": 0.2}
        lx.faults.update({"http_status": 503, "http_path": "order"})
        s.armed = True
        eventually(lambda: s.out is not None, timeout=5)
        assert s.out is missing
        assert any(w == "create_order" and "ExchangeNotAvailable" in m for w, m in s.seen_errors)
        (order,) = s.assets[0].orders.values()
        assert order.status.value == "unknown" and run.state()["committed"] > 0
        lx.faults.clear()
        eventually(lambda: run.state()["assets"][SYM]["orders"] == [], timeout=10)
        assert order.status.value == "not_placed" and run.state()["committed"] == 0
        assert "never placed" in s.errors[-1]
        assert eventually(lambda: run.reconcile() == [], timeout=5)


class FireAndForget(OneOrder):
    """Arms itself to fire exactly when the idle stop of the orders watchers is due."""

    def on_interval(self, ts: int) -> None:
        session = self.engine.executor.session  # the run (a test looks at its watchers)
        w = session.watchers.get("orders")
        if (self.armed and w is not None and w.running and not self.assets[0].orders
                and time.monotonic() - session.order_activity >= session.idle_stop):
            super().on_interval(ts)


def test_an_order_sent_as_the_idle_stop_runs_keeps_its_watchers(lx):
    """A fire-and-forget order from the tick that runs just before the idle stop: the
    orders and trades watchers end up running (one of each), not stopped or orphaned."""
    with live(lx, FireAndForget, idle_stop=0.3, tick_interval=0.05) as run:
        s = run.strategy
        s.price, s.kwargs = far_bid(lx), {"waitfor": 0, "synced": False}
        run.call("market_order", SYM, 100.0, side="buy")  # starts the watchers
        s.armed = True
        eventually(lambda: s.out is not None and run.state()["assets"][SYM]["orders"], timeout=5)
        time.sleep(0.5)  # well past idle_stop: an orphaned or stopped watcher would show
        ws = run.session.watchers
        assert ws["orders"].running and ws["trades"].running

        async def watcher_tasks() -> list[str]:
            return sorted(t.get_name() for t in asyncio.all_tasks()
                          if t.get_name() in ("orders", "trades") and not t.done())
        names = asyncio.run_coroutine_threadsafe(watcher_tasks(), run.session.engine.loop).result(5)
        assert names == ["orders", "trades"]


def test_a_script_call_that_times_out_returns_missing(lx, monkeypatch):
    """The same from a script's thread: `missing` once waitfor and the grace have passed,
    not an exception; a cancel that cannot be confirmed in time is False."""
    monkeypatch.setattr(executor, "GRACE", 0.1)
    with live(lx) as run:
        price = far_bid(lx)
        lx.faults.update({"delay_ms": 1500})
        t0 = time.monotonic()
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.2) is missing
        assert time.monotonic() - t0 < 1.0
        lx.faults.clear()
        eventually(lambda: run.state()["assets"][SYM]["orders"], timeout=5)  # it did go on
        lx.faults.update({"delay_ms": 1500})
        assert run.call("cancel_orders", SYM, waitfor=0.2) is False
        lx.faults.clear()
        assert eventually(lambda: run.state()["assets"][SYM]["orders"] == [], timeout=10)
        assert eventually(lambda: run.reconcile() == [], timeout=5)
