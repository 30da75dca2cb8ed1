"""Save, append and load rates of the OHLCV store for 1M one-minute candles.

Run: python bench/store.py [candles]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from planarpy.data.ohlcv import OHLCV
from planarpy.data.store import OHLCVStore


def synthetic(n: int, start: int = 1_500_000_000_000) -> OHLCV:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 1e-3, n)) * close
    return OHLCV(start + 60_000 * np.arange(n, dtype=np.int64), open_,
                 np.maximum(open_, close) + spread, np.minimum(open_, close) - spread,
                 close, rng.uniform(1, 100, n))


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:6.2f}M candles/s ({seconds * 1000:7.1f} ms)"


def main(n: int = 1_000_000) -> None:
    data = synthetic(n)
    with tempfile.TemporaryDirectory() as root:
        store = OHLCVStore(root)
        t = time.perf_counter()
        store.save("bench", "BTC/USDT", "1m", data)
        print(f"save {n} candles      {rate(n, time.perf_counter() - t)}")
        t = time.perf_counter()
        out = store.load("bench", "BTC/USDT", "1m")
        print(f"load {n} candles      {rate(n, time.perf_counter() - t)}")
        assert np.array_equal(out.close, data.close)
        t = time.perf_counter()
        store.load("bench", "BTC/USDT", "1m", int(data.timestamp[n // 2]),
                   int(data.timestamp[n // 2 + 1440]))
        print(f"load one day         {(time.perf_counter() - t) * 1000:7.1f} ms")
        t = time.perf_counter()
        store.load("bench", "BTC/USDT", "1h")
        print(f"load resampled to 1h {rate(n, time.perf_counter() - t)}")
        more = synthetic(100 * 1000, int(data.timestamp[-1]) + 60_000)
        t = time.perf_counter()
        for i in range(100):
            store.append("bench", "BTC/USDT", "1m", more[i * 1000:(i + 1) * 1000])
        dt = time.perf_counter() - t
        print(f"append 100 x 1000    {dt * 10:7.1f} ms per append")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candles", nargs="?", type=int, default=1_000_000)
    main(ap.parse_args().candles)
