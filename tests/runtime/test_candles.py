"""Closed candles in paper and live: what counts as closed, and the gap-free grid."""

import re

import numpy as np
import pytest

from planarpy import OHLCV
from planarpy.core.clock import Clock
from planarpy.data.ohlcv import align
from planarpy.localexchange.clock import Clock as MarketClock
from planarpy.modes.runtime.candles import extend, newest_closed, start_series, wall_seconds

M = 60_000


def test_a_candle_is_closed_once_the_clock_passes_its_close():
    """At exactly its close a candle is closed; a millisecond before, it is still forming."""
    assert newest_closed(10 * M, M) == 9 * M
    assert newest_closed(10 * M - 1, M) == 8 * M


def test_extend_fills_empty_periods_as_the_sim_aligns_them():
    """Rows opening after the candles and up to `through` are appended; a period with no
    row is a flat candle at the previous close with zero volume, the candle `align` puts
    there in a backtest; rows past `through` (still forming) are left out."""
    have = OHLCV.from_rows([[0, 1, 2, 0.5, 1.5, 10]])
    rows = [[2 * M, 2, 3, 1, 2.5, 5], [3 * M, 3, 3, 3, 3, 1], [6 * M, 9, 9, 9, 9, 9]]
    out = extend(have, rows, 5 * M, M)
    assert out.timestamp.tolist() == [0, M, 2 * M, 3 * M, 4 * M, 5 * M]
    assert out.to_rows()[1] == [M, 1.5, 1.5, 1.5, 1.5, 0.0]
    assert out.to_rows()[4] == [4 * M, 3.0, 3.0, 3.0, 3.0, 0.0]
    full = OHLCV.from_rows([[0, 1, 2, 0.5, 1.5, 10]] + rows[:2] + [[5 * M, 3, 3, 3, 3, 0]])
    sim = align({"x": full}, "1m")[1]["x"]
    assert np.array_equal(sim.close, out.close) and np.array_equal(sim.volume, out.volume)
    assert extend(out, rows, 5 * M, M) is out


def test_start_series_aligns_markets_and_waits_for_every_one():
    """The first candles of two markets share one grid up to `through`; while one market
    has no candle at all there is no series yet."""
    rows = {"a": [[0, 1, 1, 1, 1, 1], [M, 2, 2, 2, 2, 1]], "b": [[M, 5, 5, 5, 5, None]]}
    series = start_series(rows, 3 * M, "1m", M)
    assert series["a"].timestamp.tolist() == series["b"].timestamp.tolist() == [0, M, 2 * M, 3 * M]
    assert series["b"].close.tolist() == [5.0] * 4 and series["b"].volume.tolist() == [0, 0, 0, 0]
    assert start_series({"a": rows["a"], "b": []}, 3 * M, "1m", M) is None


@pytest.mark.parametrize("clock, expected", [(Clock(), None), (MarketClock(speed=None), None),
                                             (MarketClock(speed=60.0), 1.0),
                                             (MarketClock.wall(5_000), 60.0)])
def test_a_wait_for_the_clock_follows_its_rate(clock, expected):
    """A minute of exchange time is a second of wall time on a 60x clock, a minute on a
    real-time one, and unknown on a stepped one (the loop looks again soon)."""
    assert wall_seconds(clock, M) == expected


@pytest.mark.parametrize("option, value, message", [
    ("backlog", 0, "backlog must be a whole number >= 1 (candles), not 0"),
    ("backlog", 2.5, "backlog must be a whole number >= 1 (candles), not 2.5"),
    ("tick_interval", 0, "tick_interval must be a number > 0 (seconds), not 0"),
    ("tick_interval", "1", "tick_interval must be a number > 0 (seconds), not '1'"),
    ("close_delay", -1, "close_delay must be a number >= 0 (seconds), not -1"),
])
def test_bad_tick_options_are_refused_by_name(option, value, message):
    from planarpy import Strategy
    from planarpy.core.errors import ConfigError
    from planarpy.exchanges import ApiKeys, exchange_config
    from planarpy.modes.runtime import Session
    with pytest.raises(ConfigError, match=re.escape(message)):
        Session(Strategy, exchange_config("binance", {}), ApiKeys(), **{option: value})


def test_a_bad_lookback_is_refused():
    from planarpy import Strategy
    from planarpy.core.errors import ConfigError
    from planarpy.data.sources import markets_for
    cls = type("S", (Strategy,), {"universe": ("ETH/BTC",), "quote": "BTC", "lookback": 0})
    with pytest.raises(ConfigError, match="S: lookback must be a whole number of candles >= 1"):
        cls(markets_for("binance", {}))
