"""One rate budget per exchange account, shared by every client that uses its key.

ccxt throttles each client on its own, on the event loop it was made on; live runs each
have an engine thread and loop, so two strategies on one key would each spend the
account's whole budget. `RateBudget` is ccxt's leaky bucket made thread-safe and
loop-free: a request reserves its cost at once and sleeps, on its own loop, until the
bucket has refilled to where it may go, so requests from all threads go in the order
they asked.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

import attrs


@attrs.define(slots=True, eq=False)
class RateBudget:
    """A leaky bucket: `1 / rate_limit_ms` tokens a millisecond, up to `capacity`; a
    request may go once the level is at or above zero, and takes its cost from it (as
    ccxt's own throttler does)."""

    rate_limit_ms: float
    capacity: float = 1.0
    clock: Callable[[], float] = time.monotonic  # seconds
    _tokens: float = 0.0
    _stamp: float | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def reserve(self, cost: float | None = None) -> float:
        """Take `cost` (default 1) from the bucket; the seconds to wait before sending."""
        with self._lock:
            now = self.clock()
            if self._stamp is not None:
                refill = (now - self._stamp) * 1000 / self.rate_limit_ms
                self._tokens = min(self._tokens + refill, self.capacity)
            self._stamp = now
            wait = 0.0 if self._tokens >= 0 else -self._tokens * self.rate_limit_ms / 1000
            self._tokens -= 1.0 if cost is None else float(cost)
            return wait

    async def take(self, cost: float | None = None) -> None:
        """Wait for this request's turn; what ccxt awaits before each REST request. A
        request cancelled while it waits gives its cost back."""
        wait = self.reserve(cost)
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                self.refund(cost)
                raise

    def refund(self, cost: float | None = None) -> None:
        """Give back what a request that was never sent reserved."""
        with self._lock:
            self._tokens += 1.0 if cost is None else float(cost)


_BUDGETS: dict[tuple[str, str, str], RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(exchange_id: str, url: str, api_key: str, rate_limit_ms: float) -> RateBudget:
    """The budget of one account (exchange, endpoint, key), made on first use."""
    key = (exchange_id, url, api_key)
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = _BUDGETS[key] = RateBudget(rate_limit_ms)
        return budget
