"""The same SMA cross in planarpy and in backtesting.py gives the same trades and equity."""

import attrs
import numpy as np
import pytest

from planarpy import OHLCV, load_csv
from planarpy.data.sample import sample_path
from planarpy.data.sources import markets_for

from paritykit import from_frame, run_bt, run_planar, stock, to_frame

pytest.importorskip("backtesting")

REL = 1e-9


def bt_trades(stats):
    t = stats._trades
    return list(zip(t.EntryTime, t.ExitTime, t.EntryPrice, t.ExitPrice, t.Size.astype(float)))


def planar_trades(result, data, index):
    """Round trips as (entry time, exit time, entry price, exit price, size), times from `index`."""
    bar = lambda ms: index[int(np.searchsorted(data.timestamp, ms))]
    return [(bar(t.entry_time), bar(t.exit_time), t.entry_price, t.exit_price, t.amount)
            for t in result.round_trips()]


def assert_parity(frame, data, market, cash, commission, timeframe, gaps="fill"):
    stats = run_bt(frame, cash, commission)
    r = run_planar(data, market, cash, commission, timeframe, gaps=gaps)
    assert planar_trades(r, data, frame.index) == bt_trades(stats)
    assert len(stats._trades) > 10
    assert r.final_equity == pytest.approx(stats["Equity Final [$]"], rel=REL)
    assert [t.pnl for t in r.round_trips()] == pytest.approx(list(stats._trades.PnL), rel=REL)
    assert r.strategy.assets[0].balance == stats._strategy.position.size  # the trade left open
    assert r.total_return * 100 == pytest.approx(stats["Return [%]"], rel=REL)
    assert -r.max_drawdown * 100 == pytest.approx(stats["Max. Drawdown [%]"], rel=REL)
    assert r.win_rate * 100 == pytest.approx(stats["Win Rate [%]"], rel=REL)
    return r


def eth_btc():
    return load_csv(sample_path("binance", "ETH/BTC", "5m")), markets_for("binance", {})["ETH/BTC"]


def test_goog_daily_matches_backtesting_py():
    """backtesting.py's own GOOG daily bars at 0.2% commission: same trades, same final equity."""
    from backtesting.test import GOOG
    assert_parity(GOOG, from_frame(GOOG), stock("GOOG/USD", 0.002), 10_000.0, 0.002, "1d")


def test_goog_on_its_own_dates_matches_backtesting_py_with_gaps_skipped():
    """GOOG's trading days as they are (weekends and holidays missing), with the gap policy
    `skip`: planarpy steps over the rows as backtesting.py does, with no gap-free grid."""
    from backtesting.test import GOOG
    data = OHLCV(GOOG.index.to_numpy().astype("datetime64[ms]").astype(np.int64),
                 *(GOOG[c].to_numpy(dtype=np.float64) for c in
                   ("Open", "High", "Low", "Close", "Volume")))
    r = assert_parity(GOOG, data, stock("GOOG/USD", 0.002), 10_000.0, 0.002, "1d", gaps="skip")
    days = int(data.timestamp[-1] - data.timestamp[0]) // 86_400_000 + 1
    assert r.data.skipped == days - len(GOOG) == 969
    assert len(r.times) == len(GOOG) - 30  # all rows but the warmup (SLOW)


def test_eth_btc_5m_matches_backtesting_py():
    """Real Binance ETH/BTC 5m candles at Binance's 0.1% fee: same trades, same final equity."""
    data, market = eth_btc()
    assert_parity(to_frame(data), data, market, 100.0, 0.001, "5m")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walks_match_backtesting_py(seed):
    """Random walks on a cent grid, with the commission drawn too, trade identically."""
    rng = np.random.default_rng(seed)
    n = 4000
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.r_[close[0], np.round(close[:-1] * np.exp(rng.normal(0, 0.002, n - 1)), 2)]
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 0.5, n), 2)
    low = np.minimum(open_, close) - np.round(rng.uniform(0, 0.5, n), 2)
    ts = 1_600_000_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    data = OHLCV(ts, open_, high, low, close, rng.uniform(1e3, 1e4, n))
    commission = float(rng.choice([0.0, 0.0005, 0.001, 0.0025]))
    assert_parity(to_frame(data), data, stock("RW/USD", commission), 50_000.0, commission, "1m")


def test_fee_override_below_the_market_fee():
    """A SimConfig fee override below the market's fee still lets an all-in buy through."""
    data, market = eth_btc()
    assert_parity(to_frame(data), data, market, 100.0, 0.0, "5m")


def test_fee_override_gap_is_only_the_funds_check():
    """With the market's own fees set to the override, the same run matches exactly."""
    data, market = eth_btc()
    free = attrs.evolve(market, maker=0.0, taker=0.0)
    assert_parity(to_frame(data), data, free, 100.0, 0.0, "5m")
