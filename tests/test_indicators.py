import numpy as np
import pytest

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
