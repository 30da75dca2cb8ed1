"""Indicators computed as candles close in paper and live equal, bit for bit, the ones a
backtest computes at once over the same candles, whatever the live window's start."""

from __future__ import annotations

import numpy as np
import pytest

from planarpy import backtest
from planarpy.core.errors import LookbackError
from planarpy.indicators import crossings, ema, sma
from planarpy.modes.sim import SimConfig

from fidelitykit import CANDLES, SYM, Cross, sim_ticks, step_minutes, wait_for


def test_live_indicators_equal_the_sims(lx, start):
    """A run whose history starts only 30 candles back ticks 45 minutes (empty ones among
    them): at each tick the strategy reads the same means and crosses as the backtest
    over four hours of candles; and the values it kept equal the vectorised ones over its
    own candles."""
    run = start(lx, candles=30)
    s = run.strategy
    wait_for(lambda: run.session.ticks)
    step_minutes(lx, run, 45)
    run.stop()
    sim = sim_ticks()
    assert [x[:1] + x[2:] for x in s.seen] == [sim[x[0]] for x in s.seen]
    ai = s.assets[0]
    for name, values in s.indicators(ai).items():
        assert np.array_equal(np.asarray(ai.ind[name]), values, equal_nan=True)


class NoLookback(Cross):
    lookback = None


@pytest.mark.parametrize("cls", [Cross, NoLookback])
def test_update_indicators_appends_what_a_full_computation_gives(cls):
    """Appending candles one, then several at a time gives the lists a computation over all
    the candles gives, with a lookback (from the last candles) or without (from all)."""
    s = cls({SYM: backtest(Cross, data={SYM: CANDLES}, settings={}).strategy.assets[0].market})
    ai = s.assets[0]
    full = backtest(Cross, data={SYM: CANDLES}, settings={}).strategy.assets[0].ohlcv
    ai.ohlcv = full[:50]
    s.engine.prepare_indicators([ai])
    lists = dict(ai.ind)
    for stop in (51, 52, 60, 61, len(full)):
        known = len(ai.ohlcv)
        ai.ohlcv = full[:stop]
        s.engine.update_indicators(ai, known)
    assert all(ai.ind[k] is lists[k] for k in lists)  # in place: a strategy may hold them
    expected = s.indicators(ai)
    for name, values in expected.items():
        assert np.array_equal(np.asarray(ai.ind[name]), values, equal_nan=True)


def _cumsum_sma(values, n):
    out = np.full(len(values), np.nan)
    c = np.cumsum(np.r_[0.0, values])
    out[n - 1:] = (c[n:] - c[:-n]) / n
    return out


class CumsumCross(Cross):
    def indicators(self, ai):
        close = ai.ohlcv.close * 1e4  # on larger numbers the rounding of a cumsum shows
        f, s = _cumsum_sma(close, self.fast), _cumsum_sma(close, self.slow)
        return {"fast": f, "slow": s, "cross": crossings(f, s)}


class EmaCross(Cross):
    def indicators(self, ai):
        close = ai.ohlcv.close
        f, s = ema(close, self.fast), ema(close, self.slow)
        return {"fast": f, "slow": s, "cross": crossings(f, s)}


class ShortLookback(Cross):
    lookback = 15  # the cross at i also reads the slow mean at i - 1: 16 candles


@pytest.mark.parametrize("cls, name", [(CumsumCross, "fast"), (EmaCross, "fast"),
                                       (ShortLookback, "cross")])
def test_a_backtest_refuses_indicators_that_depend_on_more_than_their_lookback(cls, name):
    """A cumulative-sum mean (rounded by all values before its window), an EMA (every
    candle counts) or a lookback one too short: the backtest says which indicator and
    candle would differ in a live run, instead of trading on it."""
    with pytest.raises(LookbackError, match=f"indicator {name!r} of XRP/ETH depends on more"):
        backtest(cls, data={SYM: CANDLES}, settings={}, config=SimConfig(slippage=0.0))


def test_exact_means_pass_the_lookback_check():
    backtest(Cross, data={SYM: CANDLES}, settings={}, config=SimConfig(slippage=0.0))
