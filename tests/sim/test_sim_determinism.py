import attrs
import numpy as np
import pytest

from planarpy import LookAheadError, backtest, call, find_strategy
from planarpy.modes.sim import SimConfig

from simkit import SPOT, candles, flat, run, scripted


def trades_of(result):
    return [attrs.astuple(t) for t in result.trades]


@pytest.mark.parametrize("name", ["sma_cross", "margin_trend"])
def test_same_seed_same_result(name, monkeypatch, repo_root):
    """Two runs with the same seed give identical trades and equity."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy(name)
    a = backtest(cls, config=SimConfig(seed=5))
    b = backtest(cls, config=SimConfig(seed=5))
    assert trades_of(a) == trades_of(b) and len(a.trades) > 10
    assert np.array_equal(a.equity, b.equity)


def test_seed_drives_the_probabilistic_fills():
    """Partial-fill randomness follows the seed: same seed same fills, and seeds differ."""
    rows = [(100.0, 100.5, 99.5, 100.0, 30.0)] * 60  # ratio ~30: whole with p ~0.48
    def fills(seed):
        r = run({0: lambda s: call(s, "limit_order", "TST/USD", 1.0, 99.5, side="buy"),
                 **{k: (lambda s: call(s, "limit_order", "TST/USD", 1.0, 99.5, side="buy")
                        if not s.asset("TST/USD").orders else None) for k in range(1, 58)}},
                rows, cash=100_000.0, config=SimConfig(seed=seed, slippage=0.0))
        return [t.amount for t in r.trades]
    assert fills(1) == fills(1)
    assert len({tuple(fills(seed)) for seed in range(6)}) > 1


def test_ticks_see_only_closed_candles():
    """At each tick ts is the close of candle self.i, and a market order fills at i+1's open."""
    rows = [(100.0 + k, 101.0 + k, 99.0 + k, 100.5 + k, 1e6) for k in range(10)]
    r = run({4: lambda s: call(s, "market_order", "TST/USD", 1.0)}, rows)
    s = r.strategy
    data = s.asset("TST/USD").ohlcv
    for i, ts in s.seen:
        assert ts == int(data.timestamp[i]) + 60_000
    assert s.seen[0][0] == 0 and s.seen[-1][0] == len(rows) - 2  # the last candle: no tick
    assert r.trades[0].price == rows[5][0]


def test_indicator_that_reads_the_future_is_refused():
    """An indicator using the next candle's close fails the run with LookAheadError."""
    cls = scripted({}, indicators=lambda self, ai: {"next": np.roll(ai.ohlcv.close, -1)})
    s = cls({SPOT.symbol: SPOT})
    rows = [(100.0 + k, 101.0 + k, 99.0 + k, 100.5 + k, 1e6) for k in range(10)]
    with pytest.raises(LookAheadError, match="indicator 'next' of TST/USD looks ahead"):
        backtest(s, data={SPOT.symbol: candles(rows)}, settings={})



@pytest.mark.parametrize("name,look", [
    ("next", lambda close: np.roll(close, -1)),  # the next candle's close
    ("scaled", lambda close: close / close.max()),  # a statistic of every candle
])
def test_the_causal_check_covers_its_first_candles_only_and_still_finds_a_look_ahead(
        monkeypatch, name, look):
    """The indicators are recomputed over the first CAUSAL_CHECK candles when that is less
    than half the data (it costs what the indicators cost over those candles): a value
    that reads a later candle still differs at the end of that prefix."""
    from planarpy.modes.sim import run as sim_run
    monkeypatch.setattr(sim_run, "CAUSAL_CHECK", 6)
    lengths = []

    def indicators(self, ai):
        lengths.append(len(ai.ohlcv))
        return {name: look(ai.ohlcv.close)}
    rows = [(100.0 + k, 101.0 + k, 99.0 + k, 100.5 + k, 1e6) for k in range(40)]
    with pytest.raises(LookAheadError, match=f"indicator '{name}' of TST/USD looks ahead: .* "
                                             "with candles up to 5 only"):
        backtest(scripted({}, indicators=indicators)({SPOT.symbol: SPOT}),
                 data={SPOT.symbol: candles(rows)}, settings={})
    assert lengths == [40, 6]  # the run's own, then the check's over the first 6


def test_an_indicator_returned_only_over_fewer_candles_is_refused():
    """An indicator that exists over the first half of the candles but not over all of them
    (it depends on how many there are) is a clear LookAheadError, not a KeyError."""
    cls = scripted({}, indicators=lambda self, ai: {"close": ai.ohlcv.close, **(
        {"short": ai.ohlcv.close} if len(ai.ohlcv) < 8 else {})})
    s = cls({SPOT.symbol: SPOT})
    rows = [(100.0 + k, 101.0 + k, 99.0 + k, 100.5 + k, 1e6) for k in range(10)]
    with pytest.raises(LookAheadError, match="indicator 'short' of TST/USD is returned over "
                                             "the first 5 candles but not over all of them"):
        backtest(s, data={SPOT.symbol: candles(rows)}, settings={})

def test_causal_indicator_passes():
    """A moving average over past candles passes the look-ahead check."""
    cls = scripted({}, indicators=lambda self, ai: {
        "ma": np.convolve(ai.ohlcv.close, np.ones(3) / 3, "full")[: len(ai.ohlcv)]})
    s = cls({SPOT.symbol: SPOT})
    r = backtest(s, data={SPOT.symbol: candles(flat(10))}, settings={})
    assert r.strategy.asset(SPOT.symbol).ind["ma"][5] == pytest.approx(100.0)
