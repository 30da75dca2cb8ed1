"""EventTrace rates: record+flush, tail(1000) on a 1M-event trace, streaming reads, and the
price of checksums.

Run: python bench/trace.py [events]

Each figure is given by the wall clock and by the process's CPU time (all threads): on a
shared machine the wall clock measures the neighbours too, CPU time mostly does not. Peers
run in the same process: a JSON-lines file appended and closed at every flush (the floor
for any durable log), and the same chunk writes and reads through zarr with each checksum
choice (CRC-32C codec, zstd's frame checksum, none).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import argparse
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.core.sync import sync as zarr_sync

from planarpy.trace import EventTrace, iter_events, trace_tail

PAYLOAD = {"id": "123456789", "clientOrderId": "pp-abc-1", "symbol": "ETH/BTC", "side": "buy",
           "type": "limit", "price": 0.05123, "amount": 1.5, "filled": 0.5, "status": "open",
           "timestamp": 1714567890123, "fee": {"cost": 0.0001, "currency": "BNB"}}


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def rate(n: int, start: tuple[float, float]) -> str:
    wall, cpu = (b - a for a, b in zip(start, clocks()))
    return f"{n / wall:>9,.0f} events/s ({n / cpu:>9,.0f} per CPU-second)"


def write(path: Path, n: int, batch: int) -> str:
    """Record n events, flushing every `batch`; the rate."""
    trace = EventTrace.open(path, strategy="bench", exchange="x", flush_interval=3600,
                            flush_events=10**12)
    start = clocks()
    for lo in range(0, n, batch):
        for _ in range(lo, min(n, lo + batch)):
            trace.record("order_updated", PAYLOAD, symbol="ETH/BTC")
        trace.flush()
    text = rate(n, start)
    trace.close()
    return text


def jsonl(path: Path, n: int, batch: int) -> str:
    """The peer: the same events as JSON lines, appended and closed at every flush."""
    start = clocks()
    for lo in range(0, n, batch):
        lines = [json.dumps({"ts": time.time_ns(), "kind": "order_updated", "symbol": "ETH/BTC",
                             "payload": PAYLOAD}) for _ in range(lo, min(n, lo + batch))]
        with open(path, "a") as f:
            f.write("\n".join(lines) + "\n")
    return rate(n, start)


def median_ms(fn: Callable[[], Any], times: int = 10) -> str:
    walls, cpus = [], []
    for _ in range(times):
        start = clocks()
        fn()
        end = clocks()
        walls.append(end[0] - start[0])
        cpus.append(end[1] - start[1])
    return (f"median {statistics.median(walls) * 1000:.1f} ms, best {min(walls) * 1000:.1f} ms "
            f"(CPU {statistics.median(cpus) * 1000:.1f} ms)")


def codecs(root: Path, rounds: int = 30) -> None:
    """One flush's chunk writes (a 16384x6 index chunk and a 1 MiB heap chunk), and reading
    them back, with each checksum choice, taking turns so that each sees the same load."""
    index = np.full((16384, 6), np.iinfo(np.int64).min, np.int64)
    index[:8000] = np.arange(8000)[:, None] * 1000
    text = json.dumps(PAYLOAD).encode() * 5000
    heap = np.zeros(1 << 20, np.uint8)
    heap[:600_000] = np.frombuffer(text[:600_000], np.uint8)
    choices = {"crc32c (used)": [ZstdCodec(level=1), Crc32cCodec()],
               "zstd checksum": [ZstdCodec(level=1, checksum=True)],
               "no checksum": [ZstdCodec(level=1)]}
    arrays = {name: [zarr.create_array(str(root / name / k), shape=v.shape, chunks=v.shape,
                                       dtype=v.dtype, fill_value=0, compressors=chain)
                     for k, v in (("i", index), ("h", heap))] for name, chain in choices.items()}
    cpu: dict[str, dict[str, list[float]]] = {n: {"write": [], "read": []} for n in choices}
    for _ in range(rounds):
        for name, (a, h) in arrays.items():
            t = time.process_time()
            zarr_sync(_together([a.async_array.setitem(slice(None), index),
                                 h.async_array.setitem(slice(None), heap)]))
            cpu[name]["write"].append(time.process_time() - t)
            t = time.process_time()
            a[:], h[:]
            cpu[name]["read"].append(time.process_time() - t)
    base = {k: statistics.median(v) for k, v in cpu["no checksum"].items()}
    for name, times in cpu.items():
        w, r = (statistics.median(times[k]) for k in ("write", "read"))
        print(f"  {name:<14} write {w * 1000:.2f} ms CPU ({w / base['write']:.2f}x), "
              f"read {r * 1000:.2f} ms CPU ({r / base['read']:.2f}x)")


async def _together(writes: list[Any]) -> None:
    await asyncio.gather(*writes)


def main(n: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for batch, count in ((1000, 100_000), (10_000, 300_000)):
            print(f"record+flush, {batch:>6}-event flushes: {write(root / f'b{batch}', count, batch)}")
            print(f"  peer: JSON lines appended per flush: {jsonl(root / f'j{batch}', count, batch)}")
        print("checksums, one flush's two chunks (index 16384x6 int64, heap 1 MiB):")
        codecs(root / "codecs")
        path = root / "big"
        start = clocks()
        write(path, n, 50_000)
        print(f"wrote {n:,} events in {time.perf_counter() - start[0]:.1f} s (50k-event flushes)")
        for label, kw in (("tail(1000)", {}), ("tail(1000, kinds=order_updated)",
                                               {"kinds": "order_updated"})):
            assert len(trace_tail(path, 1000, **kw)) == 1000
            print(f"{label} on {n:,} events: {median_ms(lambda: trace_tail(path, 1000, **kw))}")
        start = clocks()
        count = sum(1 for _ in iter_events(path))
        print(f"streaming read (iter_events): {rate(count, start)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("events", nargs="?", type=int, default=1_000_000)
    main(ap.parse_args().events)
