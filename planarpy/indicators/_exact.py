"""Exact rolling sums and means: `sma` and `rolling_sum`.

They are written here by hand because no library computes a rolling mean that is both
exact and independent of where the series starts: a cumulative sum (numpy) rounds each
window by the size of everything before it (hundreds of thousands of ulps off on a
million prices), and a running add-and-remove total (pandas, TA-Lib) carries its
rounding from the first value on. Either way, the same candles give a different mean in
a backtest over years and in a live run over its last few hundred candles, and a cross
that exists in one is missing in the other. Here each window's sum is formed from the
window's values alone, in a fixed order, in double-double arithmetic (error-free
transformations), and divided by n with the remainder folded back in: the mean of the
same n values is the same float wherever the series starts, and it is the exactly
rounded mean (bench/indicators.py measures both against exact rational arithmetic);
`rolling_sum` rounds the double-double sum once.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._inputs import period, series

_SPLIT = 134217729.0  # 2**27 + 1: Dekker's split of a double into halves of 26 bits
_CHUNK = 1 << 15  # windows per pass: the temporaries of a pass stay in the CPU cache


def sma(values: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over `n` values; NaN until `n` values exist.

    Each mean is the exactly rounded mean of its n values (a window holding a NaN or an
    infinity gives what summing it does), so it does not depend on where `values` starts.
    """
    n = period(n, "sma", "the window n")
    return _rolling(series(values, "sma"), n, lambda hi, lo: _divide(hi, lo, n),
                    lambda windows: windows.sum(axis=1) / n)


def rolling_sum(values: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last `n` values; NaN until `n` values exist.

    Each sum is formed from its window alone in double-double arithmetic and rounded once,
    so it does not depend on where `values` starts (a running total does).
    """
    n = period(n, "rolling_sum", "the window n")
    return _rolling(series(values, "rolling_sum"), n, lambda hi, lo: hi + lo,
                    lambda windows: windows.sum(axis=1))


def _rolling(x: np.ndarray, n: int, finish: Callable[[np.ndarray, np.ndarray], np.ndarray],
             plain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`finish(hi, lo)` of every window's error-free sum; `plain(windows)` for windows
    holding a NaN or an infinity (the error-free sums are undefined there)."""
    m = len(x)
    out = np.full(m, np.nan)
    if m < n:
        return out
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite windows: redone below
        for start in range(0, m - n + 1, _CHUNK):
            stop = min(start + _CHUNK, m - n + 1)  # windows starting in [start, stop)
            hi, lo = _window_sums(x[start:stop + n - 1], n)
            out[start + n - 1:stop + n - 1] = finish(hi, lo)
    bad = ~np.isfinite(x)
    if bad.any():  # plain sums, as IEEE has them
        count = np.cumsum(np.r_[0, bad])
        at = np.flatnonzero(count[n:] - count[:-n])
        windows = np.lib.stride_tricks.sliding_window_view(x, n)[at]
        with np.errstate(invalid="ignore", over="ignore"):
            out[at + n - 1] = plain(windows)
    return out


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s, e) with s = fl(a + b) and s + e == a + b exactly (Knuth's TwoSum)."""
    s = a + b
    t = s - a
    e = b - t
    t = s - t
    t = a - t
    e += t
    return s, e


def _window_sums(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of every window of `n` consecutive values as (hi, lo) pairs.

    Blocks of 1, 2, 4... values are summed pairwise (each block from the two halves
    before it), and a window is the blocks of the binary digits of `n` side by side, so
    every window is summed from its own values in the same order. Each addition keeps
    its rounding error; the errors are summed in `lo`.
    """
    count = len(x) - n + 1
    acc_h = acc_l = None
    h, l = x, None  # blocks of `size` values, block t covering x[t:t + size]
    size, off = 1, 0
    while True:
        if n & size:
            bh = h[off:off + count]
            bl = l[off:off + count] if l is not None else None
            if acc_h is None:
                acc_h, acc_l = bh.copy(), (bl.copy() if bl is not None else np.zeros(count))
            else:
                acc_h, e = _two_sum(acc_h, bh)
                e += acc_l
                if bl is not None:
                    e += bl
                acc_l = e
            off += size
        if size * 2 > n:
            return acc_h, acc_l
        k = len(h) - size
        s, e = _two_sum(h[:k], h[size:])
        if l is not None:
            e += l[:k]
            e += l[size:]
        h, l = s, e
        size *= 2


def _divide(hi: np.ndarray, lo: np.ndarray, n: int) -> np.ndarray:
    """(hi + lo) / n rounded once: the quotient of hi, corrected by the exact remainder."""
    s = hi + lo
    lo = lo - (s - hi)
    hi = s
    q = hi / n
    if n >= 1 << 26:  # q * n would not split exactly: one rounding more
        return (hi + lo) / n
    p = q * n
    t = _SPLIT * q
    qh = t - (t - q)
    ql = q - qh
    e = (qh * n - p) + ql * n  # q * n - p, exactly (Dekker's product with n unsplit)
    r = ((hi - p) - e) + lo  # what q * n misses of hi + lo
    return q + r / n
