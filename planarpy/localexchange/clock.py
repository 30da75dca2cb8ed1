"""Market time of the local exchange: real time, accelerated, or stepped by a test.

Two clocks exist on purpose. *Market time* (this module) drives the replay and stamps
orders, trades and events. *Server time* is what `/time` answers and what signed
requests are checked against, plus the skew fault: the wall clock, because ccxt signs
with the wall clock whatever a stepped or accelerated replay is doing. A clock made by
`Clock.wall(offset_ms)` is the one clock of an exchange whose time is ahead of (or
behind) the local machine's, as a real exchange's is: it runs in real time from the wall
clock plus the offset, and server time follows it (`serves_time`).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import attrs

MINUTE_MS = 60_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.define(slots=True, eq=False)
class Clock:
    """Market time in epoch ms.

    `speed=None` is a stepped clock that moves only on `step`/`set`; `speed=1.0` follows the
    wall clock; `speed=k` runs k times faster than the wall clock from `start`.
    `serves_time` makes server time follow it (see `Clock.wall`).
    """

    start: int = attrs.field(factory=lambda: wall_ms() // MINUTE_MS * MINUTE_MS)
    speed: float | None = None
    _stepped: int = 0
    _wall0: int = attrs.field(factory=wall_ms)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)
    on_change: Callable[[], None] | None = attrs.field(default=None, repr=False)
    serves_time: bool = False

    @classmethod
    def wall(cls, offset_ms: int = 0) -> "Clock":
        """The exchange's one clock, `offset_ms` ahead of the wall clock (behind if
        negative): market time and server time alike, as on a real exchange."""
        w = wall_ms()
        return cls(start=w + int(offset_ms), speed=1.0, wall0=w, serves_time=True)

    @property
    def stepped(self) -> bool:
        return self.speed is None

    def now(self) -> int:
        if self.speed is None:
            return self.start + self._stepped
        return self.start + int((wall_ms() - self._wall0) * self.speed)

    def now_ns(self) -> int:
        return self.now() * 1_000_000

    def step(self, ms: int) -> int:
        """Move a stepped clock forward by `ms`; returns the new time."""
        if self.speed is not None:
            raise RuntimeError("step() needs a stepped clock (speed=None)")
        if ms < 0:
            raise ValueError("a clock never goes back")
        with self._lock:
            self._stepped += int(ms)
        if self.on_change is not None:
            self.on_change()
        return self.now()

    def set(self, ts: int) -> int:
        """Move a stepped clock forward to `ts` (no-op if already past it)."""
        return self.step(max(0, int(ts) - self.now()))
