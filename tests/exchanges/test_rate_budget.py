"""One rate budget per account: ccxt's leaky bucket, shared by clients on any thread or loop."""

import asyncio
import threading
import time

import pytest

from planarpy.core.errors import ConfigError
from planarpy.exchanges import ApiKeys, close_client, exchange_config, open_client
from planarpy.exchanges.ratelimit import RateBudget, shared_budget


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_bucket_spaces_requests_by_their_cost():
    """The first request goes at once; each next one waits cost x rate_limit_ms behind the
    last; idle time refills the bucket, but never beyond its capacity."""
    clock = Clock()
    b = RateBudget(50.0, clock=clock)
    assert b.reserve() == 0.0
    assert b.reserve() == pytest.approx(0.050)
    assert b.reserve(4) == pytest.approx(0.100)  # behind the two before it
    assert b.reserve() == pytest.approx(0.300)  # the cost-4 request pushed it back
    clock.t += 10.0  # a long idle: full again, but only up to capacity
    assert b.reserve() == 0.0
    assert b.reserve() == 0.0  # the one token of capacity
    assert b.reserve() == pytest.approx(0.050)


def test_reservations_from_many_threads_queue_up():
    """Requests reserved at one instant from eight threads get eight distinct turns."""
    b = RateBudget(10.0, clock=Clock())
    waits: list[float] = []
    lock = threading.Lock()

    def ask() -> None:
        for _ in range(25):
            w = b.reserve()
            with lock:
                waits.append(w)
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(round(w, 6) for w in waits) == [round(k * 0.010, 6) for k in range(200)]


def test_clients_of_one_key_share_a_budget_across_loops(local_exchange):
    """Two clients of one key, each on its own thread and loop (as two live strategies
    are), spend one budget: ten requests 100 ms apart take about a second, not half.
    (fetch_time costs 0.2 on binance: 100 ms at 500 ms a unit.)"""
    cfg = exchange_config("binance", {"exchanges": {"binance": {"rate_limit_ms": 500}}},
                          url=local_exchange.url)
    keys = ApiKeys(local_exchange.api_key, local_exchange.secret)
    clients: list = []
    times: list[float] = []

    async def five() -> None:
        ex = open_client(cfg, keys)
        clients.append(ex)
        try:
            start.wait()
            times.append(time.monotonic())
            for _ in range(5):
                await ex.fetch_time()
            times.append(time.monotonic())
        finally:
            await close_client(ex)
    start = threading.Barrier(2)
    threads = [threading.Thread(target=asyncio.run, args=(five(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    elapsed = max(times) - min(times)
    assert elapsed >= 0.85  # ten turns, 100 ms apart; separate budgets would take ~0.45 s
    a, b = clients
    assert a is not b and a.throttle.__self__ is b.throttle.__self__
    assert a.throttle.__self__ is shared_budget("binance", local_exchange.url,
                                                local_exchange.api_key, 500)


@pytest.mark.parametrize("value", [0, -5, "fast", True])
def test_a_bad_rate_limit_ms_is_refused(value):
    with pytest.raises(ConfigError, match="rate_limit_ms must be a number > 0"):
        exchange_config("binance", {"exchanges": {"binance": {"rate_limit_ms": value}}})


def test_a_cancelled_request_gives_its_turn_back():
    """A request cancelled while it waits (a timed-out call) does not delay the next one
    by its cost."""
    clock = Clock()
    b = RateBudget(100.0, clock=clock)

    async def main() -> float:
        b.reserve()  # the bucket is now empty: the next request waits
        waiter = asyncio.ensure_future(b.take(5))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return b.reserve()
    assert asyncio.run(main()) == pytest.approx(0.100)  # not 0.600
