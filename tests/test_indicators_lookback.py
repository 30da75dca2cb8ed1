"""Each indicator with the lookback its docstring gives: its values do not depend on where
the candles start, so the values paper and live append as candles close equal the
vectorised ones bit for bit; and the backtest's lookback check passes it, and refuses it
with a lookback too short."""

from __future__ import annotations

import numpy as np
import pytest

from planarpy import backtest
from planarpy.core.errors import LookbackError
from planarpy.data.sources import load_ohlcv
from planarpy.modes.sim import SimConfig

from indicatorkit import INDICATORS, LOOKBACK, Panel, one, too_short

talib = pytest.importorskip("talib", reason="the recursive indicators need TA-Lib: "
                                            "pip install 'planarpy[talib]'")

ETHBTC = load_ohlcv("binance", "ETH/BTC", "5m")


class EthBtc(Panel):
    quote = "BTC"
    timeframe = "5m"
    universe = ("ETH/BTC",)


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


def differences(name: str, lookback: int) -> int:
    """How many values differ from those over all the candles when each is computed from
    its last `lookback` to `lookback` + 4 candles only (tiles starting every 5 candles of
    the first 3,000 ETH/BTC 5m candles)."""
    fn = INDICATORS[name][0]
    full = fn(ETHBTC)
    count = 0
    for start in range(0, 3000, 5):
        tile = fn(ETHBTC[start:start + lookback + 4])
        want = full[start + lookback - 1:start + lookback + 4]
        got = tile[lookback - 1:]
        count += int(np.sum(~((got == want) | (np.isnan(got) & np.isnan(want)))))
    return count


@pytest.mark.parametrize("name", list(INDICATORS))
def test_values_do_not_depend_on_where_the_candles_start(name):
    """Each value computed from the candles of its lookback only (as a live run computes
    it) is the one over all the candles, bit for bit."""
    assert differences(name, INDICATORS[name][1]) == 0


@pytest.mark.parametrize("name", list(INDICATORS))
def test_with_a_lookback_too_short_values_differ(name):
    """The lookbacks are not larger than they need be by orders of magnitude: with a
    quarter of a recursive one, values differ (so the check below has something to find)."""
    assert differences(name, too_short(name)) > 0


def test_appending_candle_by_candle_gives_the_vectorised_values():
    """The append path of paper and live (`update_indicators`, from the last `lookback`
    candles) over the bundled ETH/BTC candles, one candle at a time and in bursts, gives
    every indicator's vectorised values over all the candles, bit for bit."""
    s = EthBtc({"ETH/BTC": backtest(EthBtc, data={"ETH/BTC": ETHBTC[:1200]},
                                    settings={}).strategy.assets[0].market})
    ai = s.assets[0]
    ai.ohlcv = ETHBTC[:1150]
    s.engine.prepare_indicators([ai])
    rng = np.random.default_rng(5)
    stop = 1150
    while stop < len(ETHBTC):
        known, stop = stop, min(len(ETHBTC), stop + (1 if stop < 1600 else int(rng.integers(1, 9))))
        ai.ohlcv = ETHBTC[:stop]
        s.engine.update_indicators(ai, known)
    expected = s.indicators(ai)
    assert set(ai.ind) == set(INDICATORS)
    for name, values in expected.items():
        assert same(ai.ind[name], values), name


@pytest.mark.parametrize("name", list(INDICATORS))
def test_the_backtest_accepts_each_indicator_with_its_lookback(name):
    backtest(one(name, INDICATORS[name][1], EthBtc), data={"ETH/BTC": ETHBTC}, settings={},
             config=SimConfig(slippage=0.0))


@pytest.mark.parametrize("name", list(INDICATORS))
def test_the_backtest_refuses_each_indicator_with_a_lookback_too_short(name):
    """One candle short for a window, a quarter for a recursive indicator: the backtest
    names the indicator (and what to do) instead of trading on values a live run would
    not see."""
    short = too_short(name)
    with pytest.raises(LookbackError, match=f"indicator {name!r} of ETH/BTC depends on more "
                                            f"than its lookback of {short} candles"):
        backtest(one(name, short, EthBtc), data={"ETH/BTC": ETHBTC}, settings={},
                 config=SimConfig(slippage=0.0))


def test_a_running_total_has_no_lookback():
    """OBV without a window depends on every candle: even a lookback of half the data is
    refused, with the way out in the message."""
    from planarpy import indicators as ind
    cls = type("RunningObv", (EthBtc,), {"lookback": len(ETHBTC) // 2 - 1,
                                          "indicators": lambda s, ai: {"obv": ind.obv(ai.ohlcv)}})
    with pytest.raises(LookbackError, match="running total"):
        backtest(cls, data={"ETH/BTC": ETHBTC}, settings={}, config=SimConfig(slippage=0.0))


def test_the_panel_passes_the_check_on_the_bundled_xrp_eth_candles():
    """All the indicators at once, on the one-minute candles with 1,091 empty minutes."""
    r = backtest(Panel, data={"XRP/ETH": load_ohlcv("binance", "XRP/ETH", "1m")}, settings={},
                 config=SimConfig(slippage=0.0))
    assert len(r.strategy.seen) == len(r.strategy.assets[0].ohlcv) - LOOKBACK - 1


@pytest.mark.parametrize("fn", [
    lambda o: talib.SMA(o.close, 20), lambda o: talib.WMA(o.close, 20),
    lambda o: talib.BBANDS(o.close, 20)[0], lambda o: talib.STOCH(o.high, o.low, o.close)[1],
    lambda o: talib.SUM(o.volume, 20)], ids=["SMA", "WMA", "BBANDS", "STOCH", "SUM"])
def test_talibs_running_totals_are_refused_whatever_the_lookback(fn):
    """Why the window indicators are computed here and not by TA-Lib: its running totals
    carry rounding from the first candle, so even ten times their window is refused."""
    cls = type("RunningTotal", (EthBtc,), {"lookback": 200, "warmup": 0,
                                           "tick": lambda s, ts: None,
                                           "indicators": lambda s, ai: {"x": fn(ai.ohlcv)}})
    with pytest.raises(LookbackError, match="running total"):
        backtest(cls, data={"ETH/BTC": ETHBTC}, settings={}, config=SimConfig(slippage=0.0))
