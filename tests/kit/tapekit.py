"""A local exchange replaying a scripted tape of XRP/ETH trades, and a trace in memory:
for paper and live tests that need to know every price the market will trade at."""

from __future__ import annotations

import copy
from typing import Any, Iterable

import numpy as np

from planarpy.data.sample import sample_markets
from planarpy.localexchange import Clock, Feed

SYM = "XRP/ETH"
T0 = 1_700_000_400_000 // 3_600_000 * 3_600_000
STEP = 10_000  # ms between two trades of the tape


def tape(path: Iterable[float]) -> Feed:
    """An hour of trades at 0.0015 every 10 s before T0, then `path`, one every 10 s."""
    hist = [0.0015] * 360
    prices = hist + list(path)
    ts = T0 + STEP * (np.arange(len(prices), dtype=np.int64) - len(hist) + 1)
    return Feed(ts, np.array(prices), np.full(len(prices), 400.0), np.zeros(len(prices), bool))


def by_minute(prices: Iterable[float], qty: float) -> Feed:
    """One trade of `qty` a minute: the first at T0 - 1 min (history), then one a minute
    from T0 on."""
    prices = list(prices)
    ts = np.array([T0 + (i * 60_000 if i else -60_000) for i in range(len(prices))],
                  dtype=np.int64)
    return Feed(ts, np.array(prices), np.full(len(prices), qty), np.zeros(len(prices), bool))


def scripted_exchange(factory: Any, path: Iterable[float], min_cost: float | None = None) -> Any:
    """A local exchange (from the `local_exchange_factory` fixture) whose XRP/ETH replays
    `tape(path)` on a clock stepped by the test, starting at T0; `min_cost`: its orders'
    smallest value in ETH (Binance's NOTIONAL filter), else the sample market's."""
    m = copy.deepcopy(sample_markets("binance")[SYM])
    if min_cost is not None:
        m["limits"]["cost"]["min"] = min_cost
    return factory(markets=[m], clock=Clock(start=T0), origin=T0, data={SYM: tape(path)})


def step_until(lx: Any, done: Any, steps: int = 40) -> None:
    """Step `lx`'s tape one trade at a time until `done()` (waited for after each step,
    briefly: most steps change nothing), then wait for it with a deadline."""
    from livekit import eventually
    for _ in range(steps):
        if done():
            return
        lx.step(STEP)
        try:
            eventually(done, timeout=0.3)
        except AssertionError:
            pass
    eventually(done, timeout=10)


def exchange_log(lx):
    """The exchange's own order log: every executionReport it sends, in order."""
    log = []
    lx.engine.listeners.append(lambda ev: log.append(ev.payload)
                               if getattr(ev, "payload", {}).get("e") == "executionReport"
                               else None)
    return log


class Events:
    """A trace that keeps the events a run records in a list, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def record(self, kind: str, payload: Any, symbol: str | None = None,
               ts: int | None = None) -> None:
        self.events.append((kind, payload))

    def close(self) -> None:
        pass

    def of(self, kind: str) -> list[Any]:
        return [p for k, p in self.events if k == kind]
