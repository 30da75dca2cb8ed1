"""Vectorised, causal indicators for `Strategy.indicators`: value i uses inputs <= i only."""

from __future__ import annotations

import numpy as np


def sma(values: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over `n` values; NaN until `n` values exist."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(len(values), np.nan)
    if n >= 1 and len(values) >= n:
        c = np.cumsum(np.r_[0.0, values])
        out[n - 1:] = (c[n:] - c[:-n]) / n
    return out


def ema(values: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average with alpha = 2 / (n + 1), started at the first value."""
    alpha = 2.0 / (n + 1)
    out = np.empty(len(values))
    acc = float(values[0]) if len(values) else 0.0
    for k, x in enumerate(np.asarray(values, dtype=np.float64).tolist()):
        acc = alpha * x + (1 - alpha) * acc
        out[k] = acc
    return out


def crossings(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """+1 where `fast` goes above `slow`, -1 where it goes below, 0 elsewhere (and where
    either is NaN)."""
    above = np.nan_to_num(np.sign(np.asarray(fast) - np.asarray(slow)))
    out = np.zeros(len(above))
    out[1:] = np.where(above[1:] != above[:-1], above[1:], 0.0)
    return out
