import numpy as np
import pytest

from planarpy.indicators import crossings, ema, sma


def test_sma_values_and_warmup():
    """sma is NaN until n values exist, then the mean of the last n."""
    out = sma(np.array([1.0, 2, 3, 4, 5]), 3)
    assert np.isnan(out[:2]).all() and out[2:].tolist() == [2.0, 3.0, 4.0]


def test_ema_recurrence():
    """ema starts at the first value and moves alpha = 2/(n+1) of the way to each new one."""
    out = ema(np.array([10.0, 20.0, 20.0]), 3)
    assert out.tolist() == [10.0, 15.0, 17.5]


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
