"""Candles missing from the data: the gap policy `fill` (flat candles at the last close, no
volume, ticked) or `skip` (stepped over), what fills in a filled-in candle (README: The
modes), and the summary that counts them."""

from __future__ import annotations

import numpy as np
import pytest

from planarpy import OHLCV, backtest
from planarpy.core.errors import ConfigError
from planarpy.modes.sim import SimConfig
from simkit import MINUTE, SPOT, T0, scripted

# minutes 0-4 and 8-11 trade; 5, 6, 7 are missing
PRESENT = [0, 1, 2, 3, 4, 8, 9, 10, 11]


def gappy(volume: float = 1e6) -> OHLCV:
    """Candles with a gap of three minutes: each opens 1 above the last close."""
    rows = []
    for k, minute in enumerate(PRESENT):
        o = 100.0 + 2 * k
        rows.append([T0 + minute * MINUTE, o, o + 1.5, o - 0.5, o + 1.0, volume])
    return OHLCV.from_rows(rows)


def run(script, gaps="fill", volume_cap=False, data=None):
    cls = scripted(script)
    s = cls({SPOT.symbol: SPOT})
    return backtest(s, data={SPOT.symbol: data if data is not None else gappy()},
                    config=SimConfig(slippage=0.0, volume_cap=volume_cap, gaps=gaps),
                    settings={})


def buy(s, amount=1.0):
    from planarpy import call
    return call(s, "market_order", s.assets[0], amount, side="buy")


def test_fill_ticks_every_minute_and_says_how_many_were_filled_in():
    """`fill` ticks the three missing minutes as flat candles and the summary counts them."""
    r = run({})
    s = r.strategy
    assert [i for i, _ in s.seen] == list(range(11))
    assert r.data.filled == {SPOT.symbol: 3} and r.data.skipped == 0
    assert "3 of TST/USD filled in with flat candles (policy fill)" in r.format_summary()
    flat = s.assets[0].ohlcv
    assert list(flat.volume[5:8]) == [0.0] * 3 and set(flat.open[5:8]) == {109.0}


def test_skip_ticks_only_the_candles_in_the_data():
    """`skip` ticks each candle of the data once, at its own close, and counts the gap."""
    r = run({}, gaps="skip")
    seen = r.strategy.seen
    assert [i for i, _ in seen] == list(range(8))
    assert [ts for _, ts in seen] == [T0 + (m + 1) * MINUTE for m in PRESENT[:-1]]
    assert r.data.skipped == 3 and r.data.filled == {SPOT.symbol: 0}
    assert "3 missing candles skipped (policy skip)" in r.format_summary()
    assert r.summary()["data"]["skipped"] == 3


def test_an_order_before_a_filled_in_candle_fills_at_its_open_the_last_close():
    """README: an order placed at the close of a real candle fills at the next open even
    when that candle is filled in, at the last close (no gap, so no slippage)."""
    r = run({4: buy})
    (trade,) = r.trades
    assert trade.price == 109.0 and trade.date == T0 + 5 * MINUTE


def test_with_skip_the_same_order_fills_at_the_next_candle_in_the_data():
    """Under `skip` the order placed at minute 4's close fills at minute 8's open."""
    r = run({4: buy}, gaps="skip")
    (trade,) = r.trades
    assert trade.price == 110.0


def test_nothing_rests_into_a_filled_in_candle():
    """A resting limit order is not filled by the flat candles (their one price, the last
    close, is inside the candle before, which did not fill it); it fills in the first real
    candle that reaches it."""
    from planarpy import call
    rows = [[T0 + m * MINUTE, 100.0, 101.0, 99.5, 100.0, 1e6] for m in range(5)]
    rows += [[T0 + 8 * MINUTE, 100.0, 100.5, 98.0, 99.0, 1e6],
             [T0 + 9 * MINUTE, 99.0, 99.5, 98.5, 99.0, 1e6]]

    def limit(s):
        return call(s, "limit_order", s.assets[0], 1.0, 99.0, side="buy")
    r = run({3: limit}, data=OHLCV.from_rows(rows))
    (trade,) = r.trades
    assert trade.price == 99.0 and not trade.taker
    assert trade.date == T0 + 8 * MINUTE  # in minute 8, not in the flat 5, 6 or 7


def test_an_order_at_a_filled_in_candles_close_gets_no_volume():
    """With the volume cap, an order placed at a flat candle's close (no volume) is
    refused for want of liquidity."""
    r = run({6: buy}, volume_cap=True)
    assert r.trades == [] and "no liquidity" in r.strategy.errors[0]


def test_skip_with_two_markets_fills_only_where_another_market_traded():
    """With several markets, `skip` keeps the minutes any market traded; a market missing
    one of those gets a flat candle there, and the summary says so."""
    from planarpy import Market
    other = Market(symbol="OTH/USD", id="OTHUSD", base="OTH", quote="USD", settle=None,
                   kind="spot", amount_step=0.01, price_step=0.01)
    cls = scripted({})
    cls.universe = (SPOT.symbol, other.symbol)
    s = cls({SPOT.symbol: SPOT, other.symbol: other})
    both = OHLCV.from_rows([[T0 + m * MINUTE, 1, 1, 1, 1, 1] for m in (0, 1, 2, 6, 9, 11)])
    r = backtest(s, data={SPOT.symbol: gappy(), other.symbol: both},
                 config=SimConfig(gaps="skip"), settings={})
    ticked = [T0 + m * MINUTE for m in sorted(set(PRESENT) | {0, 1, 2, 6, 9, 11})]
    assert list(s.assets[0].ohlcv.timestamp) == ticked
    assert r.data.filled == {SPOT.symbol: 1, other.symbol: 4} and r.data.skipped == 2
    assert "1 of TST/USD filled in with flat candles (another market traded then)" in \
        r.data.describe_gaps()


def test_stats_of_a_skipped_run_are_annualised_over_its_time():
    """Under `skip` a year holds as many candles as the data has per year of its time, so
    CAGR is over the time the run spans, not over its count of candles."""
    r = run({2: buy, 9: lambda s: None}, gaps="skip")
    years = (int(r.times[-1]) - int(r.times[0])) / (365 * 86_400_000)
    growth = 1 + r.total_return
    assert r.total_return != 0 and growth > 0
    assert np.isclose(r.stats().cagr, growth ** (1 / years) - 1)


@pytest.mark.parametrize("field,value,text", [
    ("gaps", "holes", "[sim] gaps must be one of fill, skip, not 'holes'"),
    ("slippage", -1.0, "[sim] slippage must be a number >= 0"),
    ("taker", -1.0, "[sim] taker must be a fee rate from -0.01 to 0.1"),
    ("maker", float("nan"), "[sim] maker must be a fee rate"),
    ("seed", -1, "[sim] seed must be a whole number"),
])
def test_sim_config_checks_each_value(field, value, text):
    """SimConfig refuses what the command line refuses, naming the option."""
    with pytest.raises(ConfigError) as e:
        SimConfig(**{field: value})
    assert text in str(e.value)
