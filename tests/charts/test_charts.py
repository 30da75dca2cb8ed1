"""Interactive charts: what the page holds, standalone (no network), from a backtest and
from a recorded run, saved by `sim --plot run.html` and shown inline in Jupyter."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from planarpy import backtest, find_strategy
from planarpy.charts import chart, chart_trace, result_from_trace
from planarpy.cli.main import main
from planarpy.modes.sim.results import MissingExtra
from planarpy.trace import EventTrace

pytest.importorskip("bokeh", reason="charts need Bokeh: pip install 'planarpy[charts]'")


@pytest.fixture
def recorded(repo_root, monkeypatch, tmp_path):
    monkeypatch.chdir(repo_root)
    with EventTrace.open(tmp_path / "t", strategy="SmaCross", exchange="binance") as trace:
        r = backtest(find_strategy("sma_cross"), recorder=trace, params={"slow": 40})
    return r, tmp_path / "t"


def test_page_is_standalone_and_holds_the_run(recorded, tmp_path):
    r, _ = recorded
    page = chart(r).save(tmp_path / "run.html").read_text()
    assert not re.search(r"<script[^>]+src=", page) and "cdn.bokeh.org" not in page
    assert "Bokeh" in page and "SmaCross 5m: return" in page
    for name in ("candles", "entries", "exits", "positions", "equity", "buy_and_hold", "drawdown"):
        assert f'"name":"{name}"' in page


def test_run_from_a_trace_equals_the_backtest(recorded):
    """The recorded run rebuilt: the same fills, the same equity, the run's params."""
    r, path = recorded
    again = result_from_trace(path, find_strategy("sma_cross"))
    assert again.strategy.params == {"fast": 10, "slow": 40, "invest": 0.99}
    assert again.trades == r.trades
    np.testing.assert_array_equal(again.equity[-len(r.equity):], r.equity)
    assert chart_trace(path, "sma_cross").html().count('"name":"entries"') == 1


def test_sim_plot_html_and_png(recorded, tmp_path, capsys):
    assert main(["sim", "sma_cross", "--plot", str(tmp_path / "run.html")]) == 0
    assert "Bokeh" in (tmp_path / "run.html").read_text()
    pytest.importorskip("matplotlib")
    assert main(["sim", "sma_cross", "--plot", str(tmp_path / "run.png")]) == 0
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"


def test_chart_command_writes_the_page(recorded, tmp_path, capsys):
    _, path = recorded
    assert main(["chart", str(path), "--strategy", "sma_cross", "-o", str(tmp_path / "c.html")]) == 0
    assert '"name":"exits"' in (tmp_path / "c.html").read_text()


def test_inline_in_jupyter(recorded):
    """`_repr_html_` is an iframe holding the whole page, so it needs no notebook setup."""
    r, _ = recorded
    out = chart(r)._repr_html_()
    assert out.startswith("<iframe srcdoc=") and "&lt;script" in out and "height:" in out


def test_unknown_indicator_is_named(recorded):
    r, _ = recorded
    from planarpy.core.errors import ConfigError
    with pytest.raises(ConfigError, match=r"indicator 'rsi' is not among ETH/BTC's \(cross\)"):
        chart(r, indicators=["rsi"])


def test_missing_bokeh_says_how_to_install(recorded, monkeypatch):
    r, _ = recorded
    monkeypatch.setitem(sys.modules, "bokeh", None)
    with pytest.raises(MissingExtra, match=r"pip install 'planarpy\[charts\]'"):
        chart(r)


@pytest.mark.parametrize("extra, message", [
    (["-o", "{tmp}/c.png"], "argument -o/--out: must be a file ending in .html or .htm in an "
                            "existing directory, not '{tmp}/c.png' (see planarpy chart --help)"),
    (["--data-dir", "{tmp}/nowhere"], "argument --data-dir: must be an existing directory, not "
                                      "'{tmp}/nowhere' (see planarpy chart --help)"),
    (["--strategy", "margin_trend"], "run 1 of {trace} was recorded by SmaCross, not "
                                     "MarginTrend; give --strategy the strategy that made it"),
])
def test_chart_command_bad_options_are_one_line(extra, message, recorded, tmp_path, capsys):
    _, path = recorded
    args = ["chart", str(path), "--strategy", "sma_cross", "-o", str(tmp_path / "c.html")]
    assert main(args + [a.format(tmp=tmp_path) for a in extra]) == 2
    err = capsys.readouterr().err
    assert err == f"planarpy: error: {message.format(tmp=tmp_path, trace=path)}\n"
    assert not (tmp_path / "c.png").exists()


def test_a_long_run_is_drawn_on_a_standard_timeframe_that_says_so(recorded):
    """1,000,000 one-minute candles become 8h candles (the smallest standard timeframe
    under 2,500 candles), and the price axis says so; a short run keeps its own."""
    from planarpy.charts.backtest import MAX_CANDLES, candles_for_chart
    from planarpy.data.ohlcv import OHLCV
    n = 1_000_000
    ts = 1_600_000_000_000 // 60_000 * 60_000 + 60_000 * np.arange(n, dtype=np.int64)
    close = 100 + np.cumsum(np.random.default_rng(1).normal(0, 0.1, n))
    o = OHLCV(ts, close, close + 0.2, close - 0.2, close, np.ones(n))
    c, width = candles_for_chart(o, "1m")
    assert width == 8 * 3_600_000 and len(c) <= MAX_CANDLES and c.high.max() == o.high.max()
    assert candles_for_chart(o[:2000], "1m")[1] == 60_000
    r, _ = recorded  # 5,760 five-minute candles
    page = chart(r).html()
    assert "ETH/BTC (BTC), 15m candles (run on 5m)" in page


def test_heatmap_of_a_tpe_search_bins_a_wide_axis(repo_root, monkeypatch, tmp_path):
    """TPE draws many distinct values: an axis of more than 20 gets 20 equal bins, each
    cell the best trial in it, instead of one column per value drawn."""
    monkeypatch.chdir(repo_root)
    from planarpy.charts.optimize import MAX_CELLS
    from planarpy.optimize import optimize
    r = optimize("sma_cross", method="random", trials=60, objective="return",
                 storage=tmp_path / "s", seed=1)
    assert len({t["params"]["invest"] for t in r.trials}) == 60
    c = r.heatmap("fast", "invest")
    xs, ys = c.layout.x_range.factors, c.layout.y_range.factors
    assert len(ys) <= MAX_CELLS and all("–" in f for f in ys)
    cells = c.layout.select_one({"name": "cells"}).data_source.data
    best = max(t["values"][0] for t in r.trials if t["feasible"])
    assert max(cells["v"]) == best and len(cells["v"]) <= len(xs) * len(ys)
