"""EventTrace rates: record+flush, tail(1000) on a 1M-event trace, streaming reads.

Run: python bench/trace.py [events]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from planarpy.trace import EventTrace, iter_events, trace_tail

PAYLOAD = {"id": "123456789", "clientOrderId": "pp-abc-1", "symbol": "ETH/BTC", "side": "buy",
           "type": "limit", "price": 0.05123, "amount": 1.5, "filled": 0.5, "status": "open",
           "timestamp": 1714567890123, "fee": {"cost": 0.0001, "currency": "BNB"}}


def write(path: Path, n: int, batch: int) -> tuple[float, float]:
    """Record n events, flushing every `batch`; (record-only seconds, total seconds)."""
    trace = EventTrace.open(path, strategy="bench", exchange="x", flush_interval=3600,
                            flush_events=10**12)
    recording = 0.0
    t = time.perf_counter()
    for start in range(0, n, batch):
        r = time.perf_counter()
        for i in range(start, min(n, start + batch)):
            trace.record("order_updated", PAYLOAD, symbol="ETH/BTC")
        recording += time.perf_counter() - r
        trace.flush()
    total = time.perf_counter() - t
    trace.close()
    return recording, total


def main(n: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for batch, count in ((1000, 100_000), (10_000, 300_000)):
            recording, total = write(root / f"b{batch}", count, batch)
            print(f"record+flush, {batch:>6}-event flushes: {count / total:>9,.0f} events/s "
                  f"({total / (count / batch) * 1000:5.1f} ms per flush; record alone "
                  f"{recording / count * 1e6:.2f} us/event)")
        path = root / "big"
        t = time.perf_counter()
        write(path, n, 50_000)
        print(f"wrote {n:,} events in {time.perf_counter() - t:.1f} s "
              f"(50k-event flushes)")
        for label, kw in (("tail(1000)", {}), ("tail(1000, kinds=order_updated)",
                                               {"kinds": "order_updated"})):
            times = []
            for _ in range(10):
                t = time.perf_counter()
                events = trace_tail(path, 1000, **kw)
                times.append(time.perf_counter() - t)
            assert len(events) == 1000
            print(f"{label} on {n:,} events: median {statistics.median(times) * 1000:.1f} ms, "
                  f"best {min(times) * 1000:.1f} ms")
        t = time.perf_counter()
        count = sum(1 for _ in iter_events(path))
        dt = time.perf_counter() - t
        print(f"streaming read (iter_events): {count / dt:,.0f} events/s ({dt:.1f} s)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
