"""Indicators over a finite window, each value computed from its window's values alone.

TA-Lib computes these with running totals (add the newest value, take off the oldest),
so its values carry rounding from the first candle on: the same candles give a value in
a backtest over years that differs in its last bits from a live run's over its last few
hundred candles, and a cross at a tie exists in one and not the other. Here every window
is reduced on its own, in the same order wherever it starts (means and sums exactly, by
`_exact`; weighted sums and squared deviations term by term; highs and lows exactly), so
with a `lookback` of at least the window a live run computes the same floats as a
backtest. Their definitions are TA-Lib's, and the tests hold them to TA-Lib's values.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ._exact import rolling_sum, sma
from ._inputs import Candles, columns, period, series

class Bands(NamedTuple):
    """An upper, a middle and a lower line (Bollinger bands, a Donchian channel)."""

    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray


class Stoch(NamedTuple):
    """The slow stochastic: %K and its average %D, from 0 to 100."""

    k: np.ndarray
    d: np.ndarray


def _window_terms(x: np.ndarray, n: int,
                  term: Callable[[int, np.ndarray, np.ndarray], None]) -> np.ndarray:
    """For each window of `n` values, the sum over k = 0..n-1 of a term of its k-th value,
    added in the order of k whatever the window's position; NaN for the first n - 1.
    `term(k, values, out)` writes into `out` the terms of the k-th values of all windows."""
    out = np.full(len(x), np.nan)
    m = len(x) - n + 1
    if m <= 0:
        return out
    total, terms = np.zeros(m), np.empty(m)
    with np.errstate(invalid="ignore", over="ignore"):
        for k in range(n):
            term(k, x[k:k + m], terms)
            total += terms
    out[n - 1:] = total
    return out


def wma(values: np.ndarray, n: int) -> np.ndarray:
    """Weighted moving average: weights 1 to n, the newest value heaviest (TA-Lib's WMA);
    NaN until `n` values exist."""
    n = period(n, "wma", "the window n")
    x = series(values, "wma")

    def weighted(k: int, values: np.ndarray, out: np.ndarray) -> None:
        np.multiply(values, k + 1.0, out=out)
    return _window_terms(x, n, weighted) / (n * (n + 1) / 2)


def stddev(values: np.ndarray, n: int, ddof: int = 0) -> np.ndarray:
    """Standard deviation of the last `n` values around their `sma` (divided by n - ddof:
    0, the default, is TA-Lib's STDDEV and Bollinger's; 1 is pandas'); NaN until `n`
    values exist."""
    n = period(n, "stddev", "the window n")
    ddof = period(ddof, "stddev", "ddof", least=0, most=n - 1)
    x = series(values, "stddev")
    mean = sma(x, n)[n - 1:]

    def squared(k: int, values: np.ndarray, out: np.ndarray) -> None:
        np.subtract(values, mean, out=out)
        np.multiply(out, out, out=out)
    with np.errstate(invalid="ignore"):
        return np.sqrt(_window_terms(x, n, squared) / (n - ddof))


def rolling_max(values: np.ndarray, n: int) -> np.ndarray:
    """Highest of the last `n` values (NaN if one is NaN); NaN until `n` values exist."""
    n = period(n, "rolling_max", "the window n")
    return _extreme(series(values, "rolling_max"), n, np.maximum, -np.inf)


def rolling_min(values: np.ndarray, n: int) -> np.ndarray:
    """Lowest of the last `n` values (NaN if one is NaN); NaN until `n` values exist."""
    n = period(n, "rolling_min", "the window n")
    return _extreme(series(values, "rolling_min"), n, np.minimum, np.inf)


def _extreme(x: np.ndarray, n: int, op: np.ufunc, neutral: float) -> np.ndarray:
    """Window extremes in O(len) (van Herk, Gil and Werman): in blocks of n values, each
    window is the suffix of one block and the prefix of the next."""
    m = len(x)
    out = np.full(m, np.nan)
    if m < n:
        return out
    blocks = np.r_[x, np.full(-m % n, neutral)].reshape(-1, n)
    prefix = op.accumulate(blocks, axis=1).ravel()
    suffix = op.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    out[n - 1:] = op(suffix[:m - n + 1], prefix[n - 1:m])
    return out


def bbands(values: np.ndarray, n: int = 20, k: float = 2.0) -> Bands:
    """Bollinger bands: the `sma` of `n` values, and `k` standard deviations (`stddev`)
    above and below it (TA-Lib's BBANDS with a simple mean)."""
    x = series(values, "bbands")
    middle = sma(x, period(n, "bbands", "the window n"))
    width = float(k) * stddev(x, n)
    return Bands(middle + width, middle, middle - width)


def donchian(candles: Candles, n: int = 20) -> Bands:
    """Donchian channel: the highest high and the lowest low of the last `n` candles, and
    their midpoint."""
    high, low = columns(candles, "donchian", "high", "low")
    upper, lower = rolling_max(high, n), rolling_min(low, n)
    return Bands(upper, (upper + lower) / 2, lower)


def stoch(candles: Candles, n: int = 14, smooth_k: int = 3, smooth_d: int = 3) -> Stoch:
    """Slow stochastic (TA-Lib's STOCH with simple means): where the close lies in the
    range of the last `n` candles (0 at the lowest low, 100 at the highest high, 0 when
    the range is empty), averaged over `smooth_k` candles for %K, and %K averaged over
    `smooth_d` for %D."""
    n = period(n, "stoch", "n")
    high, low, close = columns(candles, "stoch", "high", "low", "close")
    highest, lowest = rolling_max(high, n), rolling_min(low, n)
    span = highest - lowest
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = np.where(span != 0, (close - lowest) / span * 100.0, 0.0)  # NaN span: NaN
    k = sma(fast, period(smooth_k, "stoch", "smooth_k"))
    return Stoch(k, sma(k, period(smooth_d, "stoch", "smooth_d")))


def vwap(candles: Candles, n: int) -> np.ndarray:
    """Volume-weighted average of the typical price (high + low + close) / 3 over the last
    `n` candles; NaN until `n` candles exist, and where none of them traded."""
    high, low, close, volume = columns(candles, "vwap", "high", "low", "close", "volume")
    n = period(n, "vwap", "the window n")
    typical = (high + low + close) / 3
    with np.errstate(invalid="ignore", divide="ignore"):
        return rolling_sum(typical * volume, n) / rolling_sum(volume, n)


def obv(candles: Candles, n: int | None = None) -> np.ndarray:
    """On-balance volume: each candle's volume, added when it closed higher than the one
    before, taken off when lower.

    Without `n`, TA-Lib's OBV: the running total from the first candle (which counts as
    higher). Its level depends on where the candles start, so it cannot have a finite
    `Strategy.lookback`. With `n`, the total of the last `n` candles (the change of OBV
    over them), which depends on n + 1 candles only; NaN until those exist.
    """
    close, volume = columns(candles, "obv", "close", "volume")
    signed = np.empty(len(close))
    signed[1:] = np.sign(close[1:] - close[:-1]) * volume[1:]
    if n is None:
        signed[:1] = volume[:1]
        return np.cumsum(signed)
    signed[:1] = np.nan
    return rolling_sum(signed, period(n, "obv", "the window n"))


def crossings(fast: np.ndarray, slow: np.ndarray | float) -> np.ndarray:
    """+1 where `fast` goes above `slow` (a series or a level), -1 where it goes below, 0
    elsewhere (and where either is NaN), as whole numbers (int64: `ai.ind` holds them as
    Python ints, which the engine's list of a million candles builds several times faster
    than floats). Its value i reads candles i and i - 1: one more than its inputs."""
    diff = np.asarray(fast) - np.asarray(slow)
    side = (diff > 0).astype(np.int64) - (diff < 0)  # NaN compares false: no side
    out = np.zeros(len(side), dtype=np.int64)
    out[1:] = np.where(side[1:] != side[:-1], side[1:], 0)
    return out
