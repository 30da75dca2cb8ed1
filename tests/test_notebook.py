"""examples/first_hour.ipynb runs in a fresh project (nbclient, a real kernel): a backtest
shown as HTML tables with its interactive chart, a live session against the local
exchange (blocking calls, waitfor, synced), trace_tail, and a replay by strategy name."""

from __future__ import annotations

import shutil

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install 'planarpy[test]'")
nbclient = pytest.importorskip("nbclient", reason="pip install 'planarpy[test]'")
pytest.importorskip("ipykernel", reason="pip install 'planarpy[test]'")
pytest.importorskip("bokeh", reason="the notebook draws a chart: pip install 'planarpy[charts]'")


def html_of(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def text_of(cell) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   for o in cell.outputs)


def test_first_hour_notebook_runs(repo_root, tmp_path, monkeypatch):
    for name in ("PLANARPY_HOME", "PLANARPY_TRACES", "PLANARPY_DATA"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "project"
    shutil.copytree(repo_root / "strategies", project / "strategies")
    shutil.copytree(repo_root / "examples", project / "examples")
    nb = nbformat.read(project / "examples" / "first_hour.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(project / "examples")}})
    client.execute()
    cells = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in cells for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    by_source = {c.source.strip().splitlines()[-1]: c for c in cells}
    assert "Backtest of SmaCross" in html_of(by_source["result"])
    assert "fast=12" in html_of(by_source["result"])
    assert "total return" in html_of(by_source["result.stats()"])
    assert "Trade" in html_of(by_source["result.trades[0]"])
    assert "AssetInstance ETH/BTC" in html_of(by_source["result.strategy.assets[0]"])
    assert "bokeh" in html_of(by_source["chart(result)"]).lower()
    assert "LiveRun SmaCross" in html_of(by_source["run"])
    assert "buy" in html_of(by_source["trade"]) and "0.5" in html_of(by_source["trade"])
    assert "(True, [])" in text_of(by_source['run.call("cancel_orders", "ETH/BTC"), run.reconcile()'])
    tail = text_of(next(c for c in cells if "trace_tail(" in c.source))
    assert len(tail.strip().splitlines()) == 4
    stopped = text_of(next(c for c in cells if "run.stop()" in c.source))
    summary = dict(line.split(None, 1) for line in stopped.strip().splitlines()[:-1])
    assert int(summary["fills"]) >= 1 and summary["open"] == "nothing"
    assert stopped.strip().endswith("True")
    assert "the state matches" in html_of(by_source["replay"])
    assert (project / "traces" / "SmaCross" / "binance").is_dir()
