"""Backtest results: round trips, statistics, summary and pandas tables."""

import json
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planarpy import call
from planarpy.cli.main import main
from planarpy.modes.sim.results import (MissingExtra, RoundTrip, cagr, candle_returns, drawdown,
                                        max_drawdown_candles, profit_factor, sharpe, sortino)

from simkit import PERP, flat, run

SYM = "TST/USD"


def ramp(n=10):
    """Candles opening at 100, 101, 102...; candle k closes at its open."""
    return [(100.0 + k, 100.5 + k, 99.5 + k, 100.0 + k, 1e6) for k in range(n)]


def buy(amount):
    return lambda s: call(s, "market_order", SYM, amount, side="buy")


def sell(amount):
    return lambda s: call(s, "market_order", SYM, amount, side="sell")


def test_round_trip_joins_fills_from_flat_to_flat():
    """Two buys and one sell make one round trip with weighted prices and both fees."""
    r = run({1: buy(1.0), 2: buy(1.0), 5: sell(2.0)}, ramp())
    (trip,) = r.round_trips()
    t = r.trades
    assert isinstance(trip, RoundTrip)
    assert (trip.entry_time, trip.exit_time) == (t[0].date, t[2].date)
    assert (trip.entry_price, trip.exit_price, trip.amount) == (102.5, 106.0, 2.0)
    fees = (102 + 103 + 212) * 0.002
    assert trip.fees == pytest.approx(fees)
    assert trip.pnl == pytest.approx(212 - 205 - fees)
    assert trip.return_ == pytest.approx(trip.pnl / 205)


def test_open_position_is_not_a_round_trip():
    """A position still open at the end is left out of the round trips."""
    r = run({1: buy(1.0), 3: sell(1.0), 5: buy(1.0)}, ramp())
    assert len(r.round_trips()) == 1 and len(r.trades) == 3


def test_short_round_trip_and_liquidation_pnl():
    """A short's profit is entry minus exit; a liquidation loses the margin and the fee."""
    rows = [(100.0 - k, 100.5 - k, 99.5 - k, 100.0 - k, 1e6) for k in range(10)]
    script = {0: lambda s: call(s, "update_leverage", PERP.symbol, 2),
              1: lambda s: call(s, "market_order", PERP.symbol, 5.0, side="sell", pos="short"),
              4: lambda s: call(s, "close_position", PERP.symbol)}
    (trip,) = run(script, rows, market=PERP).round_trips()
    assert trip.side == "short" and (trip.entry_price, trip.exit_price) == (98.0, 95.0)
    assert trip.pnl == pytest.approx(5 * 3 - (5 * 98 + 5 * 95) * 0.0004)
    rows = flat(8)
    rows[4] = (100.0, 100.0, 90.0, 95.0, 1e6)
    script = {0: lambda s: call(s, "update_leverage", PERP.symbol, 10),
              1: lambda s: call(s, "market_order", PERP.symbol, 10.0, side="buy")}
    (liq,) = run(script, rows, market=PERP).round_trips()
    assert liq.side == "long" and liq.pnl == pytest.approx(-(100 + 1000 * 0.0004))


def test_exposure_counts_the_candles_closed_with_a_holding():
    """Bought at candle 2's open and sold at candle 6's open: held at 4 of 10 closes."""
    r = run({1: buy(1.0), 5: sell(1.0)}, ramp())
    assert len(r.times) == 10 and r.stats().exposure == pytest.approx(0.4)
    r = run({1: buy(1.0), 5: sell(1.0), 7: buy(1.0)}, ramp())
    assert r.stats().exposure == pytest.approx(0.6)  # closes 2-5 and 8-9


def test_drawdown_and_its_duration():
    """Drawdown is the fall below the running peak; its duration runs peak to recovery."""
    e = np.array([100.0, 120.0, 90.0, 100.0, 130.0, 120.0])
    assert drawdown(e).tolist() == pytest.approx([0, 0, 0.25, 1 / 6, 0, 1 / 13])
    assert max_drawdown_candles(e) == 3  # peak at 1, back above it at 4
    assert max_drawdown_candles(np.array([1.0, 2.0, 1.0, 1.5])) == 2  # not recovered: to the end
    assert max_drawdown_candles(np.array([1.0, 2.0, 3.0])) == 0


def test_ratios_by_hand():
    """CAGR, Sharpe, Sortino and profit factor on hand-made numbers."""
    assert cagr(0.21, 2.0) == pytest.approx(0.1)
    assert cagr(-1.0, 1.0) == -1.0 and math.isnan(cagr(0.1, 0.0))
    assert cagr(0.5, 1e-5) == math.inf  # too large for a float, not an error
    r = np.array([0.01, -0.02, 0.03, 0.0])
    assert sharpe(r, 4.0) == pytest.approx(0.005 / r.std(ddof=1) * 2)
    assert sortino(r, 4.0) == pytest.approx(0.005 / math.sqrt(0.0004 / 4) * 2)
    assert math.isnan(sharpe(np.zeros(5), 365.0)) and math.isnan(sortino(np.full(3, 0.01), 1.0))
    assert profit_factor(np.array([1.0, -2.0, 3.0])) == 2.0
    assert profit_factor(np.array([1.0])) == math.inf and math.isnan(profit_factor(np.array([])))
    returns = candle_returns(np.array([100.0, 110.0, 0.0, 5.0]))
    assert returns.tolist() == pytest.approx([0.1, -1.0, 0.0])  # no return after a wipe-out


def test_stats_of_a_run():
    """Stats agree with their definitions on the run's own equity curve."""
    rows = [(100.0 + 3 * math.sin(k / 3), 104.0, 96.0, 100.0 + 3 * math.sin((k + 1) / 3), 1e6)
            for k in range(60)]
    script = {k: (buy(1.0) if k % 10 == 1 else sell(1.0)) for k in range(1, 55, 5)}
    r = run(script, rows)
    s = r.stats()
    ret = np.diff(r.equity) / r.equity[:-1]
    per_year = 365 * 24 * 60
    assert s.total_return == pytest.approx(r.final_equity / 1000 - 1)
    assert s.volatility == pytest.approx(ret.std(ddof=1) * math.sqrt(per_year))
    assert s.sharpe == pytest.approx(ret.mean() / ret.std(ddof=1) * math.sqrt(per_year))
    assert s.cagr == pytest.approx((1 + s.total_return) ** (per_year / 59) - 1)
    assert s.max_drawdown == pytest.approx(np.max(1 - r.equity / np.maximum.accumulate(r.equity)))
    assert s.trades == 11 and s.round_trips == 5 and s.fees == pytest.approx(r.strategy.state.fees)
    assert 0 < s.win_rate < 1
    assert s.exposure == pytest.approx((5 * 5 + 8) / 60)  # 5 closes per trip, 8 left open


def test_summary_without_trades_is_plain_json():
    """With no trade, undefined figures are None and the summary is strict JSON."""
    r = run({}, flat(10))
    d = r.summary()
    json.dumps(d, allow_nan=False)
    assert d["sharpe"] is None and d["profit_factor"] is None and d["win_rate"] is None
    assert d["exposure"] == 0.0 and d["max_drawdown_duration"] == 0 and d["trades"] == 0
    assert "sharpe/sortino  - / -" in r.format_summary()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 5)), min_size=1,
                max_size=30), st.integers(0, 2**16))
def test_round_trips_add_up_to_the_profit(orders, seed):
    """When every position is closed, the round trips' profits sum to the equity change."""
    rng = np.random.default_rng(seed)
    n = len(orders) + 3
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    rows = [(round(c, 2), round(c * 1.01, 2), round(c * 0.99, 2), round(c, 2), 1e6) for c in close]
    def act(side, amount):
        def go(s):
            ai = s.asset(SYM)
            if side == "sell":
                return call(s, "market_order", SYM, ai.balance, side="sell") if ai.balance else None
            return call(s, "market_order", SYM, float(amount), side="buy")
        return go
    script = {k: act(*o) for k, o in enumerate(orders)}
    script[n - 2] = lambda s: call(s, "close_position", SYM)
    r = run(script, rows, cash=10_000.0)
    s = r.stats()
    assert sum(t.pnl for t in r.round_trips()) == pytest.approx(r.final_equity - 10_000.0, abs=1e-6)
    assert 0 <= s.max_drawdown <= 1 and 0 <= s.exposure <= 1
    assert s.round_trips == len(r.round_trips()) <= s.trades


def test_frames():
    """equity_frame, trades_frame and fills_frame hold the curve, round trips and fills."""
    pd = pytest.importorskip("pandas")
    r = run({1: buy(1.0), 2: buy(1.0), 5: sell(2.0), 7: buy(1.0)}, ramp())
    frames = r.to_frames()
    eq, trips, fills = frames["equity"], frames["trades"], frames["fills"]
    assert list(eq.columns) == ["equity", "drawdown"] and len(eq) == len(r.times)
    assert eq.index[0] == pd.Timestamp(int(r.times[0]), unit="ms", tz="UTC")
    assert eq["equity"].tolist() == r.equity.tolist()
    assert len(trips) == 1 and trips.loc[0, "entry_price"] == 102.5
    assert trips.loc[0, "duration"] == pd.Timedelta(minutes=4)
    assert trips.loc[0, "return"] == pytest.approx(r.round_trips()[0].return_)
    assert len(fills) == 4 and fills["side"].tolist() == ["buy", "buy", "sell", "buy"]
    assert fills["date"].dt.tz is not None and fills["price"].tolist()[0] == 102.0


def test_empty_trades_frame_has_its_columns():
    """A run without trades still gives a trades table with every column."""
    pytest.importorskip("pandas")
    df = run({}, flat(5)).trades_frame()
    assert len(df) == 0 and {"entry_time", "pnl", "return", "duration"} <= set(df.columns)


def test_frames_without_pandas_name_the_extra(monkeypatch):
    """Without pandas, the tables raise MissingExtra naming `pip install planarpy[pandas]`."""
    r = run({1: buy(1.0)}, ramp())
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtra, match=r"pip install planarpy\[pandas\]"):
        r.trades_frame()
    with pytest.raises(ImportError):
        r.equity_frame()
    assert r.stats().trades == 1  # everything else works without pandas


def test_cli_summary_shows_the_statistics(repo_root, monkeypatch, capsys):
    """`planarpy sim` prints CAGR, volatility, Sharpe/Sortino, exposure and profit factor."""
    monkeypatch.chdir(repo_root)
    assert main(["sim", "sma_cross"]) == 0
    out = capsys.readouterr().out
    for label in ("CAGR", "volatility", "sharpe/sortino", "longest", "profit factor", "exposure"):
        assert label in out
    assert main(["sim", "sma_cross", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"cagr", "volatility", "sharpe", "sortino", "max_drawdown_duration", "profit_factor",
            "exposure", "fees", "trades", "round_trips", "win_rate"} <= set(d)
