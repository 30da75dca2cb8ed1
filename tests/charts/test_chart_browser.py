"""The HTML charts open in headless Chromium and render: the page is not blank, the
console has no error, and the trades are on it (counted in the page's models and seen as
marker-coloured pixels in the screenshot)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from planarpy import backtest, find_strategy
from planarpy.charts import chart
from planarpy.charts.backtest import ENTRY, EXIT
from planarpy.plot import fill_kind

from browserkit import chromium, open_page

pytest.importorskip("bokeh", reason="charts need Bokeh: pip install 'planarpy[charts]'")
pytestmark = pytest.mark.skipif(chromium() is None, reason="Chromium is not installed "
                                "(Debian: apt-get install chromium); the chart is not rendered")
READY = ("window.Bokeh !== undefined && Bokeh.documents.length > 0 && "
         "Object.values(Bokeh.index).length > 0 && "
         "Object.values(Bokeh.index).every(v => v.has_finished())")


def model_count(name: str) -> str:
    return f"Bokeh.documents[0].get_model_by_name('{name}').data_source.data.x.length"


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)


def near(px: np.ndarray, hex_color: str, tol: int = 40) -> int:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(px - rgb).sum(axis=1) < tol).sum())


def test_backtest_chart_renders_with_its_trades(repo_root, monkeypatch, tmp_path):
    monkeypatch.chdir(repo_root)
    r = backtest(find_strategy("sma_cross"))
    page = chart(r).save(tmp_path / "run.html")
    kinds = [fill_kind(t, False) for t in r.trades]
    out = open_page(page.as_uri(), READY, {"entries": model_count("entries"),
                                          "exits": model_count("exits")})
    assert out["errors"] == []
    assert out["values"] == {"entries": kinds.count("long entry"), "exits": kinds.count("exit")}
    px = pixels(out["png"])
    white = (px > 245).all(axis=1).mean()
    assert white < 0.9 and len(np.unique(px, axis=0)) > 50  # not blank
    assert near(px, ENTRY) > 200 and near(px, EXIT) > 200  # entries and exits are drawn


def test_heatmap_and_pareto_pages_render(repo_root, monkeypatch, tmp_path):
    monkeypatch.chdir(repo_root)
    from planarpy.optimize import optimize
    grid = optimize("sma_cross", method="grid", objective="return", storage=tmp_path / "s",
                    ranges={"fast": "5:20:5", "slow": "20:60:20"}, params={"invest": 0.99})
    pareto = optimize("sma_cross", objective=["return", "max_drawdown"], trials=16, batch=8,
                      params={"invest": 0.99}, storage=tmp_path / "s")
    heat = grid.heatmap(path=tmp_path / "heat.html")
    front = pareto.pareto_plot(path=tmp_path / "pareto.html")
    assert heat.title.startswith("SmaCross: return (maximize) over fast and slow")
    out = open_page((tmp_path / "heat.html").as_uri(), READY, {"cells": model_count("cells")})
    assert out["errors"] == [] and out["values"]["cells"] == 12
    out = open_page((tmp_path / "pareto.html").as_uri(), READY, {"front": model_count("front")})
    assert out["errors"] == [] and out["values"]["front"] == len(pareto.pareto)
    assert front.title.endswith(f"{len(pareto.pareto)} on the Pareto front")
