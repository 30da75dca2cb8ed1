"""Checked inputs of the indicators: one float64 value per candle, whole-number periods,
and candles given as anything with `high`, `low`, `close` (and `volume`) columns."""

from __future__ import annotations

from typing import Protocol

import numpy as np

LONGEST = 100_000  # the largest period TA-Lib takes


class Candles(Protocol):
    """What the candle-based indicators read: `ai.ohlcv` (an OHLCV) is one."""

    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def series(values: object, name: str) -> np.ndarray:
    """`values` as a contiguous one-dimensional float64 array (TA-Lib reads no other)."""
    x = np.ascontiguousarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name}: values must be one-dimensional (one per candle), "
                         f"got shape {x.shape}")
    return x


def period(n: object, name: str, what: str = "n", least: int = 1,
           most: int | None = None) -> int:
    """`n` as an int, if it is a whole number >= `least` (and <= `most`)."""
    whole = not isinstance(n, bool) and isinstance(n, (int, np.integer))
    if not whole or n < least or (most is not None and n > most):
        bound = f" and <= {most:,}" if most is not None else ""
        raise ValueError(f"{name}: {what} must be a whole number >= {least}{bound}, got {n!r}")
    return int(n)


def columns(candles: object, name: str, *wanted: str) -> list[np.ndarray]:
    """The `wanted` columns of `candles`, checked as series of one length."""
    missing = [c for c in wanted if not hasattr(candles, c)]
    if missing:
        raise TypeError(f"{name} needs candles with {', '.join(wanted)} columns (such as "
                        f"ai.ohlcv), got {type(candles).__name__}")
    out = [series(getattr(candles, c), name) for c in wanted]
    if len({len(c) for c in out}) > 1:
        raise ValueError(f"{name}: the columns {', '.join(wanted)} differ in length "
                         f"({', '.join(str(len(c)) for c in out)})")
    return out
