"""The one source of time. Every mode and every test reads time through a Clock."""

from __future__ import annotations

import time
from typing import ClassVar

import attrs

# the longest an action may wait for an answer or a fill (`waitfor`), in seconds: a day.
# Python's thread waits refuse more than about 292 years (threading.TIMEOUT_MAX), and a
# longer wait than a day is a unit mistake rather than a plan.
MAX_WAIT = 86_400.0


@attrs.define(slots=True)
class Clock:
    """A clock that a test (or the backtest loop) sets; time in epoch milliseconds."""

    speed: ClassVar[float | None] = None  # it has no rate: it moves only when set
    ms: int = 0

    def now(self) -> int:
        return self.ms

    def now_ns(self) -> int:
        return self.ms * 1_000_000

    def set(self, ms: int) -> None:
        self.ms = int(ms)

    def advance(self, ms: int) -> None:
        self.ms += int(ms)


@attrs.define(slots=True)
class WallClock:
    """Real time, optionally shifted by an offset (e.g. to match an exchange's clock)."""

    speed: ClassVar[float] = 1.0
    offset_ms: int = 0

    def now(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def now_ns(self) -> int:
        return time.time_ns() + self.offset_ms * 1_000_000
