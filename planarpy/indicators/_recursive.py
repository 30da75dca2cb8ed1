"""Recursive indicators, computed by TA-Lib: EMA, MACD, and Wilder's RSI, ATR and ADX.

Each value depends on every candle before it, less and less: a candle k steps back
weighs (1 - a)^k, where a = 2 / (n + 1) for an EMA and 1 / n for Wilder's smoothing. In
floating point the dependence ends: two runs of TA-Lib's recursion started at different
candles reach the same float, and from there they stay the same (the same state meets
the same inputs). On every series we measured (random walks, a strong trend with a 90%
crash, the bundled candles) that happened within 45 / a candles (bench/indicators.py
prints it; for MACD, 1 / a of its slow EMA and of its signal line added). So with a
`Strategy.lookback` of 60 / a candles (each function's docstring says how many),
the values a live run computes from its last candles equal, bit for bit, those of a
backtest over years, and the backtest checks it on its own data (LookbackError
otherwise). Without a lookback they equal the backtest's once a run has that many
candles.

TA-Lib is an optional dependency (`pip install 'planarpy[talib]'`): its wheels bundle
the C library for Linux, Windows and recent macOS, but pip must build it from source
elsewhere, which needs the C library installed first.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..core.errors import PlanarError
from ._inputs import LONGEST, Candles, columns, period, series

class MissingTalib(PlanarError, ImportError):
    """An indicator computed by TA-Lib was called, and TA-Lib is not installed."""


class Macd(NamedTuple):
    """MACD: the fast EMA minus the slow one, its EMA (the signal line), and the
    difference of the two (the histogram)."""

    macd: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


class Dmi(NamedTuple):
    """Wilder's directional movement: +DI, -DI (0 to 100) and the ADX."""

    plus: np.ndarray
    minus: np.ndarray
    adx: np.ndarray


def _talib(name: str) -> Any:
    try:
        import talib
    except ImportError:
        raise MissingTalib(
            f"{name} is computed by TA-Lib, which is not installed: pip install "
            "'planarpy[talib]' (or pip install ta-lib). Its wheels bundle the C library "
            "for Linux, Windows and recent macOS; elsewhere install the C library first "
            "(https://ta-lib.org/install/, or brew install ta-lib). sma, wma, stddev, "
            "bbands, rolling_sum, rolling_max, rolling_min, donchian, stoch, vwap, obv "
            "and crossings need no TA-Lib.") from None
    return talib


def _n(n: object, name: str, what: str = "n", least: int = 2) -> int:
    return period(n, name, what, least=least, most=LONGEST)


def ema(values: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average with a = 2 / (n + 1) (TA-Lib's EMA): NaN for the first
    n - 1 values, then the mean of the first n, then each value moves a of the way to
    the new one. Lookback: 30 * (n + 1) candles."""
    n = _n(n, "ema")
    return _talib("ema").EMA(series(values, "ema"), n)


def rsi(values: np.ndarray, n: int = 14) -> np.ndarray:
    """Wilder's relative strength index, 0 to 100 (TA-Lib's RSI); NaN for the first n
    values. Lookback: 60 * n candles."""
    n = _n(n, "rsi")
    return _talib("rsi").RSI(series(values, "rsi"), n)


def macd(values: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD (TA-Lib's): EMA(fast) - EMA(slow), its EMA over `signal` values, and their
    difference; NaN for the first slow + signal - 2 values. Lookback: 30 * (slow + 1)
    + 30 * (signal + 1) candles."""
    fast, slow = _n(fast, "macd", "fast"), _n(slow, "macd", "slow")
    signal = _n(signal, "macd", "signal", least=1)
    if fast >= slow:
        raise ValueError(f"macd: fast ({fast}) must be shorter than slow ({slow})")
    return Macd(*_talib("macd").MACD(series(values, "macd"), fast, slow, signal))


def atr(candles: Candles, n: int = 14) -> np.ndarray:
    """Wilder's average true range (TA-Lib's ATR): the true range of each candle (its
    high - low, widened to the previous close) smoothed over n; NaN for the first n
    candles. Lookback: 60 * n candles."""
    n = _n(n, "atr", least=1)
    return _talib("atr").ATR(*columns(candles, "atr", "high", "low", "close"), n)


def adx(candles: Candles, n: int = 14) -> np.ndarray:
    """Wilder's average directional index, 0 to 100 (TA-Lib's ADX): the strength of a
    trend, either way; NaN for the first 2n - 1 candles. Lookback: 60 * n candles."""
    n = _n(n, "adx")
    return _talib("adx").ADX(*columns(candles, "adx", "high", "low", "close"), n)


def dmi(candles: Candles, n: int = 14) -> Dmi:
    """Wilder's +DI and -DI (TA-Lib's PLUS_DI, MINUS_DI), with the ADX made of them.
    Lookback: 60 * n candles."""
    n = _n(n, "dmi")
    talib = _talib("dmi")
    hlc = columns(candles, "dmi", "high", "low", "close")
    return Dmi(talib.PLUS_DI(*hlc, n), talib.MINUS_DI(*hlc, n), talib.ADX(*hlc, n))
