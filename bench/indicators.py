"""planarpy.indicators on a million candles: the speed of every indicator beside TA-Lib's
own function and the same indicator in pandas, and how exact `sma` is.

Speed: milliseconds per call (best of `--repeat`) on `--values` generated one-minute
candles, for planarpy, TA-Lib's function of the same definition (what the recursive ones
call; the window ones are computed here from each window alone, see the module
docstrings) and pandas (rolling windows, ewm for the recursive ones), and planarpy's time
over pandas'. Missing peers print "-".

Memory of the recursive ones (TA-Lib's): over runs started every `--every` candles of a
volatile walk and of the bundled ETH/BTC candles, the most candles a run took before its
values were those over all the candles, bit for bit (from then on they stay so), beside
the lookback their docstrings give.

Exactness of `sma`, against the cumulative-sum mean it replaced and pandas' rolling mean:
for each window length, milliseconds, the largest and the median distance in ulps from
the exact mean (rational arithmetic, over `--sample` random windows), and whether the
means of the last windows stay the same float when the series starts later (a live
run's window against a backtest's history). Prints figures only.
Run: python bench/indicators.py [--values N] [--sample K] [--repeat R] [--every E]
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from planarpy import OHLCV
from planarpy import indicators as ind
from planarpy.indicators import sma

try:
    import talib
except ImportError:
    talib = None
try:
    import pandas as pd
except ImportError:
    pd = None


def cumsum_sma(values: np.ndarray, n: int) -> np.ndarray:
    """planarpy's sma before issue 19: differences of one cumulative sum."""
    out = np.full(len(values), np.nan)
    c = np.cumsum(np.r_[0.0, values])
    out[n - 1:] = (c[n:] - c[:-n]) / n
    return out


def pandas_sma(values: np.ndarray, n: int) -> np.ndarray:
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


def candles(n: int, seed: int = 1) -> OHLCV:
    """`n` one-minute candles around the random walk of `prices`."""
    rng = np.random.default_rng(seed)
    close = prices(n, seed)
    open_ = np.r_[close[0], close[:-1]]
    spread = np.round(np.abs(rng.normal(0, 0.0005, n)) * close, 8)
    high, low = np.maximum(open_, close) + spread, np.minimum(open_, close) - spread
    ts = 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    return OHLCV(ts, open_, high, low, close, rng.uniform(500, 5000, n).round(3))


def pandas_peers(o: OHLCV) -> dict[str, Callable[[], Any]]:
    """Each indicator as a pandas user writes it."""
    c, h, l, v = (pd.Series(a) for a in (o.close, o.high, o.low, o.volume))
    prev = c.shift()
    tr = pd.concat([h - l, (h - prev).abs(), (l - prev).abs()], axis=1).max(axis=1)

    def wilder(x: Any, n: int) -> Any:
        return x.ewm(alpha=1 / n, adjust=False).mean()

    def rsi() -> Any:
        d = c.diff()
        up, down = wilder(d.clip(lower=0), 14), wilder(-d.clip(upper=0), 14)
        return 100 * up / (up + down)

    def adx() -> Any:
        up, down = h.diff(), -l.diff()
        plus = up.where((up > down) & (up > 0), 0.0)
        minus = down.where((down > up) & (down > 0), 0.0)
        atr = wilder(tr, 14)
        pdi, mdi = 100 * wilder(plus, 14) / atr, 100 * wilder(minus, 14) / atr
        return wilder(100 * (pdi - mdi).abs() / (pdi + mdi), 14)

    def macd() -> Any:
        line = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
        return line - line.ewm(span=9, adjust=False).mean()

    def stoch() -> Any:
        lo, hi = l.rolling(14).min(), h.rolling(14).max()
        return (100 * (c - lo) / (hi - lo)).rolling(3).mean().rolling(3).mean()

    def bbands() -> Any:
        mean, std = c.rolling(20).mean(), c.rolling(20).std(ddof=0)
        return mean + 2 * std, mean, mean - 2 * std

    return {
        "sma(20)": lambda: c.rolling(20).mean(),
        "ema(20)": lambda: c.ewm(span=20, adjust=False).mean(),
        "rsi(14)": rsi,
        "macd(12,26,9)": macd,
        "bbands(20)": bbands,
        "stddev(20)": lambda: c.rolling(20).std(ddof=0),
        "atr(14)": lambda: wilder(tr, 14),
        "adx(14)": adx,
        "stoch(14,3,3)": stoch,
        "donchian(20)": lambda: (h.rolling(20).max(), l.rolling(20).min()),
        "rolling_max(20)": lambda: c.rolling(20).max(),
        "rolling_sum(20)": lambda: v.rolling(20).sum(),
        "vwap(20)": lambda: ((h + l + c) / 3 * v).rolling(20).sum() / v.rolling(20).sum(),
        "obv": lambda: (np.sign(c.diff()).fillna(1) * v).cumsum(),
        "obv(20)": lambda: (np.sign(c.diff()) * v).rolling(20).sum(),
    }


def talib_peers(o: OHLCV) -> dict[str, Callable[[], Any]]:
    c, h, l, v = o.close, o.high, o.low, o.volume
    return {
        "sma(20)": lambda: talib.SMA(c, 20), "ema(20)": lambda: talib.EMA(c, 20),
        "wma(20)": lambda: talib.WMA(c, 20), "rsi(14)": lambda: talib.RSI(c, 14),
        "macd(12,26,9)": lambda: talib.MACD(c, 12, 26, 9),
        "bbands(20)": lambda: talib.BBANDS(c, 20, 2.0, 2.0),
        "stddev(20)": lambda: talib.STDDEV(c, 20), "atr(14)": lambda: talib.ATR(h, l, c, 14),
        "adx(14)": lambda: talib.ADX(h, l, c, 14),
        "stoch(14,3,3)": lambda: talib.STOCH(h, l, c, 14, 3, 0, 3, 0),
        "donchian(20)": lambda: (talib.MAX(h, 20), talib.MIN(l, 20)),
        "rolling_max(20)": lambda: talib.MAX(c, 20), "rolling_sum(20)": lambda: talib.SUM(v, 20),
        "obv": lambda: talib.OBV(c, v),
    }


def planarpy_calls(o: OHLCV) -> dict[str, Callable[[], Any]]:
    c = o.close
    calls = {
        "sma(20)": lambda: ind.sma(c, 20), "ema(20)": lambda: ind.ema(c, 20),
        "wma(20)": lambda: ind.wma(c, 20), "rsi(14)": lambda: ind.rsi(c, 14),
        "macd(12,26,9)": lambda: ind.macd(c, 12, 26, 9),
        "bbands(20)": lambda: ind.bbands(c, 20, 2.0), "stddev(20)": lambda: ind.stddev(c, 20),
        "atr(14)": lambda: ind.atr(o, 14), "adx(14)": lambda: ind.adx(o, 14),
        "stoch(14,3,3)": lambda: ind.stoch(o, 14, 3, 3), "donchian(20)": lambda: ind.donchian(o, 20),
        "rolling_max(20)": lambda: ind.rolling_max(c, 20),
        "rolling_sum(20)": lambda: ind.rolling_sum(o.volume, 20),
        "vwap(20)": lambda: ind.vwap(o, 20), "obv": lambda: ind.obv(o),
        "obv(20)": lambda: ind.obv(o, 20),
        "crossings": lambda: ind.crossings(c, ind.sma(c, 20)),
    }
    if talib is None:  # the recursive ones need it
        for name in ("ema(20)", "rsi(14)", "macd(12,26,9)", "atr(14)", "adx(14)"):
            del calls[name]
    return calls


def speed_table(n: int, repeat: int) -> None:
    o = candles(n)
    others = [("TA-Lib", talib_peers(o) if talib is not None else {}),
              ("pandas", pandas_peers(o) if pd is not None else {})]
    print(f"{n:,} candles: milliseconds per call, best of {repeat}")
    print(f"{'indicator':<16} {'planarpy':>9} {'TA-Lib':>8} {'pandas':>8} {'x pandas':>9}")
    for name, fn in planarpy_calls(o).items():
        ms = best_ms(fn, repeat)
        peer = [best_ms(p[name], repeat) if name in p else None for _, p in others]
        cells = [f"{t:>8.1f}" if t is not None else f"{'-':>8}" for t in peer]
        ratio = f"{ms / peer[1]:>9.2f}" if peer[1] else f"{'-':>9}"
        print(f"{name:<16} {ms:>9.1f} {cells[0]} {cells[1]} {ratio}")
    print()


def harsh(n: int, seed: int = 9) -> OHLCV:
    """A volatile walk with a strong trend and a 90% crash in the middle."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0002, 0.01, n)
    r[n // 2] = -0.9
    close = np.exp(np.cumsum(r)).round(10)
    high = close * (1 + np.abs(rng.normal(0, 0.005, n)))
    low = close * (1 - np.abs(rng.normal(0, 0.005, n)))
    ts = 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    return OHLCV(ts, close, high, low, close, np.ones(n))


def forgetting(fn: Callable[[OHLCV], Any], o: OHLCV, every: int) -> int:
    """The most candles, over starts every `every` candles, after which the values
    computed from a start on are those over all the candles, bit for bit, for good."""
    full = [np.asarray(a) for a in np.atleast_2d(fn(o))]
    worst = 0
    for start in range(0, len(o) // 2, every):
        part = np.atleast_2d(fn(o[start:]))
        last = -1
        for a, b in zip(part, full):
            b = b[start:]
            d = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
            last = max(last, int(d[-1]) if len(d) else -1)
        worst = max(worst, last + 1)
    return worst


def memory_table(every: int) -> None:
    """How soon TA-Lib's recursive indicators forget where they started, in units of
    1 / a (a = 2 / (n + 1) for an EMA, 1 / n for Wilder's), beside the lookback the
    docstrings give (60 / a; MACD: its slow EMA's and its signal's added)."""
    from planarpy.data.sources import load_ohlcv
    data = {"harsh walk": harsh(20_000), "ETH/BTC 5m": load_ohlcv("binance", "ETH/BTC", "5m")}
    rows = [("ema(5)", lambda o: ind.ema(o.close, 5), 3.0, 180),
            ("ema(30)", lambda o: ind.ema(o.close, 30), 15.5, 930),
            ("rsi(14)", lambda o: ind.rsi(o.close, 14), 14, 840),
            ("atr(14)", lambda o: ind.atr(o, 14), 14, 840),
            ("adx(14)", lambda o: ind.adx(o, 14), 14, 840),
            ("dmi(5)", lambda o: ind.dmi(o, 5), 5, 300),
            ("macd(12,26,9)", lambda o: ind.macd(o.close, 12, 26, 9), 13.5 + 5, 1110),
            ("macd(3,6,9)", lambda o: ind.macd(o.close, 3, 6, 9), 3.5 + 5, 510)]
    print(f"candles after which a run started anywhere gives the same floats (starts every "
          f"{every}); in units of 1 / a")
    print(f"{'indicator':<14} " + " ".join(f"{k:>18}" for k in data) + f" {'lookback':>9}")
    for name, fn, unit, lookback in rows:
        cells = []
        for o in data.values():
            worst = forgetting(fn, o, every)
            cells.append(f"{worst:>7} ({worst / unit:>5.1f}/a)")
        print(f"{name:<14} " + " ".join(f"{c:>18}" for c in cells) + f" {lookback:>9}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--every", type=int, default=97, help="candles between starts (memory)")
    args = ap.parse_args()
    speed_table(args.values, args.repeat)
    if talib is not None:
        memory_table(args.every)
    x = prices(args.values)
    rng = np.random.default_rng(2)
    peers = {"planarpy sma": sma, "cumsum (old)": cumsum_sma}
    if pd is not None:
        peers["pandas rolling"] = pandas_sma
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
