import sys

import numpy as np
import pytest

from planarpy import indicators as ind
from planarpy.indicators import crossings, ema, sma


def test_sma_values_and_warmup():
    """sma is NaN until n values exist, then the mean of the last n."""
    out = sma(np.array([1.0, 2, 3, 4, 5]), 3)
    assert np.isnan(out[:2]).all() and out[2:].tolist() == [2.0, 3.0, 4.0]


def test_ema_recurrence():
    """ema starts at the mean of the first n values (TA-Lib's EMA) and moves
    alpha = 2/(n+1) of the way to each new one."""
    pytest.importorskip("talib")
    out = ema(np.array([10.0, 20.0, 30.0, 10.0]), 3)
    assert np.isnan(out[:2]).all() and out[2:].tolist() == [20.0, 15.0]


def test_crossings_marks_only_the_crossing_candle():
    """+1 where fast goes above slow, -1 where it goes below, NaN counts as no side."""
    fast = np.array([np.nan, 1.0, 3.0, 4.0, 1.0, 1.0])
    slow = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    assert crossings(fast, slow).tolist() == [0.0, -1.0, 1.0, 0.0, -1.0, 0.0]


@pytest.mark.parametrize("fn", [lambda x: sma(x, 5), lambda x: ema(x, 5),
                                lambda x: crossings(sma(x, 2), sma(x, 5))])
def test_indicators_are_causal(fn):
    """Each value depends only on inputs up to its own: a prefix gives the same values."""
    x = np.random.default_rng(3).normal(100, 1, 200)
    full, prefix = fn(x), fn(x[:120])
    assert np.array_equal(full[:120], prefix, equal_nan=True)


def _exact_means(x, n):
    from fractions import Fraction
    return [float(sum(Fraction(v) for v in x[i - n + 1:i + 1].tolist()) / n)
            for i in range(n - 1, len(x))]


@pytest.mark.parametrize("n", [2, 5, 15, 33])
def test_sma_is_the_exactly_rounded_mean(n):
    """Each value is the exact mean of its window rounded once, for prices and for
    signed values of very different sizes (where a running sum loses digits)."""
    rng = np.random.default_rng(n)
    prices = (0.05 * np.exp(np.cumsum(rng.normal(0, 0.001, 3000)))).round(8)
    signed = rng.normal(0, 1, 3000) * 10.0 ** rng.integers(-6, 6, 3000)
    for x in (prices, signed):
        assert sma(x, n)[n - 1:].tolist() == _exact_means(x, n)


def test_sma_does_not_depend_on_where_the_series_starts():
    """The same window gives the same float in a long backtest history and in a live run's
    last few hundred candles (a cumulative sum rounds each window by all before it)."""
    x = (0.05 * np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.001, 200_000)))).round(8)
    for n in (5, 15):
        full, tail = sma(x, n), sma(x[-500:], n)
        assert np.array_equal(full[-500 + n - 1:], tail[n - 1:])


def test_sma_of_equal_values_is_that_value():
    """Flat prices average to themselves: SMA(5) - SMA(15) is exactly 0, no false cross."""
    x = np.full(40, 0.00123457)
    assert (sma(x, 5)[14:] - sma(x, 15)[14:] == 0).all()
    assert crossings(sma(x, 5), sma(x, 15)).tolist() == [0.0] * 40


def test_sma_non_finite_windows_and_bad_window():
    """A window holding inf or NaN gives what its plain sum gives; others are unaffected;
    a window length that is not a whole number >= 1 is refused."""
    x = np.arange(1.0, 11.0)
    x[4], x[8] = np.inf, np.nan
    out = sma(x, 2)
    assert out[1:4].tolist() == [1.5, 2.5, 3.5] and np.isinf(out[4:6]).all()
    assert out[6:8].tolist() == [6.5, 7.5] and np.isnan(out[8:10]).all()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="whole number >= 1"):
            sma(x, bad)


def _candles(n=50):
    from planarpy import OHLCV
    x = 100 + np.sin(np.arange(n) / 3)
    return OHLCV(np.arange(n, dtype=np.int64) * 60_000, x, x + 1, x - 1, x, np.full(n, 10.0))


@pytest.mark.parametrize("call, message", [
    (lambda o: ind.wma(o.close, 0), "wma: the window n must be a whole number >= 1, got 0"),
    (lambda o: ind.stddev(o.close, 5, ddof=5), "stddev: ddof must be a whole number >= 0 "
                                               "and <= 4, got 5"),
    (lambda o: ind.rolling_max(o.close, 2.0), "whole number >= 1, got 2.0"),
    (lambda o: ind.stoch(o, 14, 0), "stoch: smooth_k must be a whole number >= 1, got 0"),
    (lambda o: ind.vwap(o, None), "vwap: the window n must be a whole number >= 1, got None"),
    (lambda o: ind.sma(np.ones((3, 2)), 2), r"sma: values must be one-dimensional \(one per "
                                             r"candle\), got shape \(3, 2\)"),
    (lambda o: ind.ema(o.close, 1), "ema: n must be a whole number >= 2 and <= 100,000, got 1"),
    (lambda o: ind.rsi(o.close, 100_001), "rsi: n must be a whole number >= 2 and <= 100,000"),
    (lambda o: ind.macd(o.close, 26, 12), r"macd: fast \(26\) must be shorter than slow \(12\)"),
    (lambda o: ind.macd(o.close, 12, 26, 0), "macd: signal must be a whole number >= 1"),
])
def test_bad_arguments_get_a_clear_error(call, message):
    """A period that is not a whole number in range, or values that are not one series,
    are refused with the function, the argument, its value and what is allowed."""
    with pytest.raises(ValueError, match=message):
        call(_candles())


@pytest.mark.parametrize("fn", [ind.atr, ind.donchian, ind.stoch, ind.vwap, ind.obv])
def test_candle_indicators_want_candles(fn):
    """A bare array where candles are needed: a TypeError naming the columns."""
    args = (20,) if fn is ind.vwap else ()
    with pytest.raises(TypeError, match="needs candles with .*high|needs candles with close"):
        fn(np.ones(30), *args)


def test_short_and_empty_series_are_all_nan():
    """Fewer values than a window give NaN for each (TA-Lib's as well); none gives none."""
    pytest.importorskip("talib")
    short, empty = _candles(5), _candles(0)
    for o in (short, empty):
        for out in (ind.sma(o.close, 10), ind.wma(o.close, 10), ind.stddev(o.close, 10),
                    ind.rolling_max(o.close, 10), ind.ema(o.close, 10), ind.rsi(o.close, 10),
                    ind.atr(o, 10), ind.adx(o, 10), ind.vwap(o, 10), ind.stoch(o, 10).d,
                    ind.macd(o.close).hist, ind.donchian(o, 10).middle):
            assert len(out) == len(o) and np.isnan(out).all()


def test_without_talib_the_recursive_indicators_say_how_to_install_it(monkeypatch):
    """With TA-Lib missing, ema, rsi, macd, atr, adx and dmi raise MissingTalib (an
    ImportError and a PlanarError, so the CLI prints it on one line) naming the install;
    every other indicator works without it."""
    from planarpy.core.errors import PlanarError
    monkeypatch.setitem(sys.modules, "talib", None)  # `import talib` now fails
    o = _candles()
    for call in (lambda: ind.ema(o.close, 5), lambda: ind.rsi(o.close), lambda: ind.macd(o.close),
                 lambda: ind.atr(o), lambda: ind.adx(o), lambda: ind.dmi(o)):
        with pytest.raises(ind.MissingTalib, match=r"is computed by TA-Lib, which is not "
                                                    r"installed: pip install 'planarpy\[talib\]'"):
            call()
    assert issubclass(ind.MissingTalib, ImportError) and issubclass(ind.MissingTalib, PlanarError)
    for out in (ind.sma(o.close, 5), ind.wma(o.close, 5), ind.bbands(o.close).upper,
                ind.stoch(o).d, ind.donchian(o).lower, ind.vwap(o, 5), ind.obv(o, 5),
                ind.rolling_sum(o.volume, 5), ind.crossings(o.close, 100.0)):
        assert np.isfinite(out[-1])


def test_the_cli_names_the_install_when_talib_is_missing(repo_root, monkeypatch, capsys):
    """`planarpy sim margin_trend` (it uses ema) without TA-Lib: one line, exit 2."""
    from planarpy.cli.main import main
    monkeypatch.chdir(repo_root)
    monkeypatch.setitem(sys.modules, "talib", None)
    assert main(["sim", "margin_trend"]) == 2
    err = capsys.readouterr().err
    assert "ema is computed by TA-Lib" in err and "Traceback" not in err


def test_crossings_are_whole_numbers():
    """+1/-1/0 as int64: the engine's per-candle list holds Python ints (built fast)."""
    x = np.array([1.0, 3.0, 1.0, np.nan, 3.0])
    out = crossings(x, 2.0)
    assert out.dtype == np.int64 and out.tolist() == [0, 1, -1, 0, 1]
