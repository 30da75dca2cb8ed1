"""Candles per second of the sim on one million generated one-minute candles.

Prints, for the same data in the same process: a bare Python loop calling a trivial
function per candle (the floor any Python engine pays), (a) a strategy whose tick does
nothing, and (b) the spot example (SMA cross). Run: python bench/sim.py [--candles N]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from planarpy import OHLCV, Strategy, backtest
from planarpy.modes.sim import SimConfig

# low fees keep the random walk from eating the account, so trades go on all run
CONFIG = SimConfig(seed=1, maker=0.0001, taker=0.0002)
ROOT = Path(__file__).resolve().parent.parent


def generated_candles(n: int, seed: int = 1) -> OHLCV:
    """A random walk of `n` one-minute candles with realistic volume."""
    rng = np.random.default_rng(seed)
    close = 0.05 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.0005, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.uniform(500, 5000, n)
    ts = 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    return OHLCV(ts, open_.round(8), high.round(8), low.round(8), close.round(8), volume)


class Idle(Strategy):
    exchange = "binance"
    quote = "BTC"
    timeframe = "1m"
    universe = ("ETH/BTC",)
    initial_cash = 1.0

    def tick(self, ts):
        pass


def load_example():
    spec = importlib.util.spec_from_file_location("sma_cross", ROOT / "strategies" / "sma_cross.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SmaCross


class _Bare:
    i = 0

    def tick(self, ts):
        pass


def bare_loop(n: int) -> float:
    """A loop that sets an index and calls a trivial method per candle: the floor."""
    s = _Bare()
    tick = s.tick
    t = time.perf_counter()
    for i, ts in zip(range(n), range(0, 60_000 * n, 60_000)):
        s.i = i
        tick(ts)
    return n / (time.perf_counter() - t)


def rate(cls, data: OHLCV, repeat: int) -> tuple[float, int]:
    best = 0.0
    trades = 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = backtest(cls, data={"ETH/BTC": data}, config=CONFIG, settings={})
        best = max(best, len(data) / (time.perf_counter() - t))
        trades = len(r.trades)
    return best, trades


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = generated_candles(args.candles)
    sma = load_example()
    sma = type("SmaCross1m", (sma,), {"timeframe": "1m"})
    floor = max(bare_loop(args.candles) for _ in range(args.repeat))
    idle, _ = rate(Idle, data, args.repeat)
    spot, trades = rate(sma, data, args.repeat)
    print(f"python {sys.version.split()[0]}, {args.candles:,} one-minute candles, best of {args.repeat}")
    print(f"bare loop, trivial call per candle: {floor:>12,.0f} candles/s")
    print(f"(a) idle strategy:                  {idle:>12,.0f} candles/s  ({idle / floor:.2f} x bare loop)")
    print(f"(b) SMA cross example:              {spot:>12,.0f} candles/s  ({spot / floor:.2f} x bare loop, {trades:,} trades)")
    print("targets: (a) >= 1,500,000/s, (b) >= 700,000/s")


if __name__ == "__main__":
    main()
