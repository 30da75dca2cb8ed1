"""The rolling mean `planarpy.indicators.sma` against the cumulative-sum mean it replaced and
pandas' rolling mean: speed on a million prices, and distance from the exact mean.

For each window length: milliseconds per call (best of `--repeat`), the largest and the
median distance in ulps from the exact mean (rational arithmetic, over `--sample` random
windows), and whether the means of the last windows stay the same float when the series
starts later (a live run's window against a backtest's history). Prints figures only.
Run: python bench/indicators.py [--values N] [--sample K]
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from typing import Callable

import numpy as np

from planarpy.indicators import sma


def cumsum_sma(values: np.ndarray, n: int) -> np.ndarray:
    """planarpy's sma before issue 19: differences of one cumulative sum."""
    out = np.full(len(values), np.nan)
    c = np.cumsum(np.r_[0.0, values])
    out[n - 1:] = (c[n:] - c[:-n]) / n
    return out


def pandas_sma(values: np.ndarray, n: int) -> np.ndarray:
    import pandas as pd
    return pd.Series(values).rolling(n).mean().to_numpy()


def prices(n: int, seed: int = 1) -> np.ndarray:
    """A random walk around 0.05 on an 8-decimal grid, like a crypto pair's closes."""
    rng = np.random.default_rng(seed)
    return (0.05 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))).round(8)


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def ulps(values: np.ndarray, means: np.ndarray, n: int, at: np.ndarray) -> np.ndarray:
    """Distance of means[i] from the exact mean of values[i-n+1 .. i], in ulps of the latter."""
    out = []
    for i in at.tolist():
        exact = float(sum(Fraction(v) for v in values[i - n + 1:i + 1].tolist()) / n)
        out.append(abs(means[i] - exact) / np.spacing(abs(exact)))
    return np.asarray(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    x = prices(args.values)
    rng = np.random.default_rng(2)
    peers = {"planarpy sma": sma, "cumsum (old)": cumsum_sma}
    try:
        import pandas  # noqa: F401
        peers["pandas rolling"] = pandas_sma
    except ImportError:
        pass
    print(f"{args.values:,} prices; ulps from the exact mean over {args.sample:,} random windows")
    print(f"{'window':>6}  {'method':<15} {'ms':>8} {'x sma':>6} {'max ulps':>9} "
          f"{'median':>7}  same when started later")
    later = args.values // 2 + 12_345
    for n in (5, 15, 30, 200):
        at = rng.integers(n - 1, args.values, args.sample)
        base = None
        for name, fn in peers.items():
            ms = best_ms(lambda: fn(x, n), args.repeat)
            base = base or ms
            means = fn(x, n)
            err = ulps(x, means, n, at)
            tail = fn(x[later:], n)
            same = np.array_equal(means[later + n - 1:], tail[n - 1:])
            print(f"{n:>6}  {name:<15} {ms:>8.1f} {ms / base:>6.2f} {err.max():>9.0f} "
                  f"{np.median(err):>7.1f}  {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
