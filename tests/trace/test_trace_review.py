"""Findings of the adversarial review of trace format 2 (r12): each test failed before its fix."""

import asyncio
import errno
import threading

import pytest
from zarr.storage import LocalStore

from planarpy.trace import EventTrace, TraceError, iter_events, trace_info
from planarpy.trace.layout import DAY_NS

T0 = DAY_NS * 19000


def open_trace(path, **kw):
    kw.setdefault("flush_interval", 60)
    return EventTrace.open(path, strategy="S", exchange="x", **kw)


def record(trace, lo, hi):
    for i in range(lo, hi):
        trace.record("order_updated", {"i": i}, symbol="ETH/BTC", ts=T0 + i)


def events(path):
    return [(e["seq"], e["payload"]["i"]) for e in iter_events(path, errors="raise")]


def test_a_failed_flush_leaves_no_write_in_flight(tmp_path, monkeypatch):
    """One chunk write of a flush fails (a full disk) while the other is still running: the
    flush must wait for it before it reports the failure. Otherwise that late write lands
    after the retry has committed more rows to the same chunk, and takes them back (the
    committed events 5..9 read back as damaged)."""
    trace = open_trace(tmp_path / "t")
    record(trace, 0, 3)
    trace.flush()
    landed = threading.Event()
    real = LocalStore.set
    failing = [True]

    async def set_(self, key, value):
        if failing[0] and self.root.name == "heap":
            raise OSError(errno.ENOSPC, "No space left on device")
        if failing[0] and self.root.name == "index":
            await asyncio.sleep(0.3)  # this write of the failing flush is slow
            await real(self, key, value)
            landed.set()
            return
        await real(self, key, value)
    monkeypatch.setattr(LocalStore, "set", set_)
    record(trace, 3, 5)
    with pytest.raises(TraceError, match="No space left"):
        trace.flush()
    failing[0] = False
    record(trace, 5, 10)
    trace.flush()  # the retry commits events 3..9
    assert landed.wait(10)
    trace.close()
    assert events(trace.path) == [(i, i) for i in range(10)]
    assert trace_info(trace.path, check=True)["problems"] == []
