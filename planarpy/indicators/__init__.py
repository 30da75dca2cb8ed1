"""Vectorised, causal indicators for `Strategy.indicators`: value i uses inputs <= i only.

Two kinds, by what a value depends on:

- Over a window (`sma`, `wma`, `stddev`, `bbands`, `rolling_sum`, `rolling_max`,
  `rolling_min`, `donchian`, `stoch`, `vwap`, `obv` with a window, `crossings`): each
  value is computed from its window's candles alone, the same floats wherever the
  series starts. A `Strategy.lookback` of the longest window (plus one for `crossings`)
  makes a live run's values equal a backtest's, bit for bit. Written here with numpy.
- Recursive (`ema`, `macd`, `rsi`, `atr`, `adx`, `dmi`): computed by TA-Lib. Each value
  depends on every earlier candle, but TA-Lib's arithmetic forgets where it started
  after a number of candles each docstring gives (30 * (n + 1) for an EMA, 60 * n for
  Wilder's RSI, ATR and ADX); with that lookback they are equal bit for bit too. They
  need TA-Lib: `pip install 'planarpy[talib]'` (MissingTalib says so when it is absent).

Candle-based indicators take anything with `high`, `low`, `close` (and `volume`)
columns, such as `ai.ohlcv`. Several lines come as named tuples (`Bands`, `Macd`,
`Stoch`, `Dmi`). Any other function of the candles works in `indicators` too (TA-Lib's
own, pandas); the backtest checks that it is causal and keeps to the lookback.
"""

from ._exact import rolling_sum, sma
from ._recursive import Dmi, Macd, MissingTalib, adx, atr, dmi, ema, macd, rsi
from ._windows import (Bands, Stoch, bbands, crossings, donchian, obv, rolling_max,
                       rolling_min, stddev, stoch, vwap, wma)
from ._inputs import Candles

__all__ = [
    "sma", "ema", "wma", "rsi", "macd", "bbands", "stddev", "atr", "adx", "dmi", "stoch",
    "donchian", "obv", "vwap", "rolling_sum", "rolling_max", "rolling_min", "crossings",
    "Bands", "Macd", "Stoch", "Dmi", "Candles", "MissingTalib",
]
