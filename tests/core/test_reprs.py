"""What a REPL or notebook shows of planarpy's objects: a short `repr`, and an HTML table
(`_repr_html_`) with ISO dates, enum words and numbers without float noise or dust."""

from __future__ import annotations

import re

import pytest

from planarpy import backtest, find_strategy
from planarpy.core.instances import AssetInstance
from planarpy.core.market import Market
from planarpy.core.orders import (Order, OrderType, PositionSide, Side, Trade)
from planarpy.core.positions import Position

ETHBTC = Market(symbol="ETH/BTC", id="ETHBTC", base="ETH", quote="BTC", settle=None,
                kind="spot", amount_step=0.0001, price_step=1e-8, min_amount=0.0001,
                min_cost=0.0001, maker=0.001, taker=0.001)
NOISY = 0.08804497999999998  # a VWAP of book levels, as paper computed one
T = 1_704_067_200_123


def short(text: str) -> bool:
    return len(text) < 160 and "\n" not in text and "Side." not in text and "Status." not in text


def test_trade_shows_iso_date_words_and_no_float_noise():
    t = Trade("sim-1", "ETH/BTC", Side.BUY, PositionSide.LONG, T, 0.5, NOISY, 0.5 * NOISY,
              0.0005, "ETH")
    text = repr(t)
    assert short(text) and "2024-01-01T00:00:00.123Z" in text and " buy " in text
    assert "0.08804498" in text and "0.0880449799" not in text
    html = t._repr_html_()
    assert "<table>" in html and "0.08804498" in html and "taker" in html


def test_order_and_position():
    o = Order("sim-2", "ETH/BTC", Side.SELL, OrderType.LIMIT, 1.25, 0.1 + 0.2, T, filled=0.25)
    assert short(repr(o)) and "open limit sell 1.25 ETH/BTC @ 0.3 filled 0.25 GTC" in repr(o)
    assert "2024-01-01T00:00:00.123Z" in o._repr_html_()
    p = Position(PositionSide.SHORT, 3.0, NOISY, 3.0, 0.1, 0.11111111111111112, T)
    assert short(repr(p)) and repr(p).startswith("<Position short 3 @ 0.08804498 x3")
    assert "liquidation price" in p._repr_html_()
    assert repr(Position(PositionSide.LONG)) == "<Position long closed>"


def test_asset_instance_shows_dust_as_zero_and_its_orders():
    ai = AssetInstance(ETHBTC, balance=4.34375e-15)
    assert repr(ai) == "<AssetInstance ETH/BTC balance=0 orders=0 trades=0>"
    ai.orders["sim-3"] = Order("sim-3", "ETH/BTC", Side.BUY, OrderType.LIMIT, 2.0, NOISY, T)
    html = ai._repr_html_()
    assert "<thead>" in html and "sim-3" in html and "0.08804498" in html and "e-15" not in html


@pytest.fixture(scope="module")
def result(repo_root_module):
    return backtest(find_strategy("sma_cross"))


@pytest.fixture(scope="module")
def repo_root_module():
    import os
    from pathlib import Path
    root = Path(__file__).parents[2]
    here = os.getcwd()
    os.chdir(root)
    yield root
    os.chdir(here)


def test_sim_result_and_stats(result):
    text = repr(result)
    assert short(text) and re.match(
        r"<SimResult SmaCross 2018-01-10T\d\d:\d\d:\d\dZ to 2018-01-30T04:50:00Z: return "
        r"[+-]\d+\.\d\d%, final equity [\d.]+ BTC, \d+ trades>", text)
    assert short(repr(result.stats())) and repr(result.stats()).startswith("<Stats return ")
    html = result._repr_html_()
    assert "final equity" in html and "<thead>" in html and "round" not in html[:40]
    assert html.count("<tr><td>") == 20  # the first and last 10 round trips
    stats = result.stats()._repr_html_()
    assert "total return" in stats and "%" in stats and "nan" not in stats.lower()


def test_replay_report(result, tmp_path):
    from planarpy.cli.main import main
    from planarpy.trace import replay_from_trace
    assert main(["sim", "sma_cross", "--record", str(tmp_path / "t")]) == 0
    report = replay_from_trace("sma_cross", tmp_path / "t")
    assert short(repr(report)) and re.match(r"<ReplayReport run 1: \d+ events, \d+ trades, ok>",
                                            repr(report))
    html = report._repr_html_()
    assert "the state matches" in html and "ETH/BTC" in html
