"""Traces for the tests: open one, record numbered events, check what reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planarpy.trace import EventTrace, iter_events
from planarpy.trace.layout import DAY_NS

T0 = DAY_NS * 19000


def open_trace(path: Path, **kw: Any) -> EventTrace:
    """The trace of strategy S on exchange x at `path`, flushed only when asked (by default)."""
    kw.setdefault("flush_interval", 60)
    return EventTrace.open(path, strategy="S", exchange="x", **kw)


def record(trace: EventTrace, lo: int, hi: int) -> None:
    """Events lo..hi-1: trades whose payload numbers them and carries a price."""
    for i in range(lo, hi):
        trace.record("trade_created", {"i": i, "price": 0.09080538 + i * 1e-8}, symbol="ETH/BTC",
                     ts=T0 + i)


def numbers(path: Path) -> list[int]:
    """The payload numbers read back, after checking that sequence numbers run 0, 1, 2..."""
    events = list(iter_events(path, errors="raise"))
    assert [e["seq"] for e in events] == list(range(len(events)))
    return [e["payload"]["i"] for e in events]


def check_exact(path: Path, n: int) -> None:
    """The trace holds events 0..n-1, each once, in order, with matching sequence numbers."""
    events = list(iter_events(path, errors="raise"))
    assert [e["payload"]["i"] for e in events] == list(range(n))
    assert [e["seq"] for e in events] == list(range(n))
    assert all(e["payload"]["price"] == 0.09080538 + i * 1e-8 for i, e in enumerate(events))
