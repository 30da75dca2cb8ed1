"""The same study on a local Ray cluster gives the same table as on local processes."""

from __future__ import annotations

import sys

import pytest

from planarpy.modes.sim.results import MissingExtra
from planarpy.optimize import optimize

GRID = {"method": "grid", "objective": "return", "params": {"invest": 0.99},
        "ranges": {"fast": "5:20:5", "slow": "20:60:20"}, "where": ["fast < slow"]}


def rows(result):
    return [(t["number"], t["params"], t["values"], t["summary"]) for t in result.trials]


def test_ray_missing_says_how_to_install(here, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtra, match=r"pip install 'planarpy\[ray\]'"):
        optimize("sma_cross", backend="ray", storage=tmp_path / "s", **GRID)


def test_grid_gives_the_same_table_locally_and_on_ray(here, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'planarpy[ray]')")
    local = optimize("sma_cross", storage=tmp_path / "local", jobs=2, **GRID)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = optimize("sma_cross", storage=tmp_path / "ray", backend="ray", **GRID)
    finally:
        ray.shutdown()
    assert rows(on_ray) == rows(local) and len(rows(local)) == 11
    assert on_ray.best_params == local.best_params
    assert on_ray.workers and all(w["pid"] for w in on_ray.workers)
