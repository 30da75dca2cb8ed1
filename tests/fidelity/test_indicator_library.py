"""Every indicator of planarpy.indicators, TA-Lib's recursive ones included, is the same
float in paper and live as in a backtest: on the bundled XRP/ETH candles replayed by the
local exchange, a run whose history starts 1,111 candles back (the backtest's starts
2,400 candles earlier) reads at each of 45 ticks the values the backtest read, and what
it appended as candles closed equals the vectorised values over its own candles."""

from __future__ import annotations

import numpy as np
import pytest

from planarpy import backtest
from planarpy.data.sources import load_ohlcv
from planarpy.localexchange.clock import Clock
from planarpy.modes.sim import SimConfig

from fidelitykit import MINUTE, exchange, step_minutes, wait_for
from indicatorkit import INDICATORS, LOOKBACK, Panel

pytest.importorskip("talib", reason="the recursive indicators need TA-Lib: "
                                    "pip install 'planarpy[talib]'")

CANDLES = load_ohlcv("binance", "XRP/ETH", "1m")  # 2,469 candles over 3,560 minutes


@pytest.fixture(scope="module")
def sim() -> dict[int, tuple]:
    """What the backtest over all the candles read at each close."""
    r = backtest(Panel, data={"XRP/ETH": CANDLES}, settings={},
                 config=SimConfig(slippage=0.0, volume_cap=False))
    return {x[0]: x for x in r.strategy.seen}


@pytest.fixture
def panel_exchange(local_exchange_factory, sim):
    """The replay with its clock 50 minutes before the last candle's open."""
    t0 = int(CANDLES.timestamp[-1]) - 50 * MINUTE
    return exchange(CANDLES, Clock(start=t0), t0, factory=local_exchange_factory)


def test_live_and_paper_read_the_backtests_values(panel_exchange, start, sim):
    lx = panel_exchange
    run = start(lx, Panel)
    s = run.strategy
    ai = s.assets[0]
    wait_for(lambda: ai.ohlcv is not None)  # its history: ticked from the next close on
    step_minutes(lx, run, 45)
    run.stop()
    assert len(ai.ohlcv) >= LOOKBACK + 45
    assert int(ai.ohlcv.timestamp[0]) > int(CANDLES.timestamp[0]) + 2000 * MINUTE
    assert len(s.seen) >= 45
    for seen in s.seen:
        want = sim[seen[0]]
        assert seen[:2] == want[:2]
        differ = [name for name, a, b in zip(INDICATORS, seen[2:], want[2:])
                  if not np.array_equal(a, b, equal_nan=True)]
        assert differ == [], f"at {seen[0]}"
    for name, values in s.indicators(ai).items():  # and what it kept is the vectorised
        assert np.array_equal(np.asarray(ai.ind[name]), values, equal_nan=True), name
