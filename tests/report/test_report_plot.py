"""Backtest charts: a real, non-blank PNG from Python and from the command line."""

import importlib.util
import sys

import numpy as np
import pytest

from planarpy import backtest, call, find_strategy
from planarpy.cli.main import main
from planarpy.modes.sim.results import MissingExtra

from simkit import PERP, run

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="matplotlib (the plot extra) is not installed")
NO_MATPLOTLIB = ("matplotlib.figure", "matplotlib.backends.backend_agg")


def assert_chart(path, min_colours=20):
    """`path` is a PNG of a real chart: large, with varied pixels and many colours."""
    from matplotlib.image import imread
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)[:, :, :3]
    assert img.shape[0] > 400 and img.shape[1] > 800
    assert img.std() > 0.05
    colours = np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours


@needs_matplotlib
def test_plot_backtest_writes_a_chart(repo_root, monkeypatch, tmp_path):
    """plot_backtest draws the SMA cross run into a PNG with its markers and equity."""
    from planarpy.plot import plot_backtest
    monkeypatch.chdir(repo_root)
    r = backtest(find_strategy("sma_cross"))
    out = plot_backtest(r, tmp_path / "sma.png")
    assert out == tmp_path / "sma.png"
    assert_chart(out)


@needs_matplotlib
def test_plot_of_a_short_with_a_liquidation(tmp_path):
    """A margin run with a short and a liquidated long is drawn too."""
    from planarpy.plot import plot_backtest
    rows = [(100.0 + np.sin(k / 4), 101.5, 98.5, 100.0 + np.sin((k + 1) / 4), 1e6)
            for k in range(40)]
    rows[30] = (100.0, 100.0, 80.0, 95.0, 1e6)
    sym = PERP.symbol
    script = {2: lambda s: call(s, "market_order", sym, 5.0, side="sell", pos="short"),
              10: lambda s: call(s, "close_position", sym),
              20: lambda s: call(s, "update_leverage", sym, 10),
              21: lambda s: call(s, "market_order", sym, 50.0, side="buy")}
    r = run(script, rows, market=PERP)
    assert len(r.round_trips()) == 2
    assert_chart(plot_backtest(r, tmp_path / "margin.png"))


@needs_matplotlib
def test_cli_plot_option(repo_root, monkeypatch, capsys, tmp_path):
    """`planarpy sim sma_cross --plot out.png` prints the summary and writes the chart."""
    monkeypatch.chdir(repo_root)
    out = tmp_path / "out.png"
    assert main(["sim", "sma_cross", "--plot", str(out)]) == 0
    assert "final equity" in capsys.readouterr().out
    assert_chart(out)


@needs_matplotlib
def test_cli_plot_to_a_missing_folder(repo_root, monkeypatch, capsys, tmp_path):
    """An unwritable --plot path ends with exit 2 and a one-line message, before the run."""
    monkeypatch.chdir(repo_root)
    assert main(["sim", "sma_cross", "--plot", str(tmp_path / "no" / "out.png")]) == 2
    out = capsys.readouterr()
    assert "argument --plot" in out.err and "no/out.png" in out.err
    assert "in an existing directory" in out.err and "Traceback" not in out.err
    assert "final equity" not in out.out


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    """Without matplotlib, plot_backtest raises MissingExtra naming `pip install planarpy[plot]`."""
    from planarpy.plot import plot_backtest
    r = run({}, [(100.0, 101.0, 99.0, 100.0, 1e6)] * 5)
    for name in NO_MATPLOTLIB:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtra, match=r"pip install planarpy\[plot\]"):
        plot_backtest(r, tmp_path / "x.png")


def test_cli_plot_without_matplotlib(repo_root, monkeypatch, capsys, tmp_path):
    """`--plot` without matplotlib ends with exit 2 and names the extra to install."""
    monkeypatch.chdir(repo_root)
    for name in NO_MATPLOTLIB:
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["sim", "sma_cross", "--plot", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "pip install planarpy[plot]" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_thin_keeps_every_extreme():
    """Thinning a long series keeps its spikes and stays near the point budget."""
    from planarpy.plot import thin
    y = np.sin(np.arange(1_000_003) / 5000.0)
    y[123_457], y[765_431] = 9.0, -9.0
    x = np.arange(len(y))
    tx, ty = thin(x, y, 2_000)
    assert len(tx) <= 2_010 and np.all(np.diff(tx) > 0)
    assert ty.max() == 9.0 and ty.min() == -9.0 and tx[-1] == x[-1]
    assert thin(x[:50], y[:50], 2_000)[1].tolist() == y[:50].tolist()
