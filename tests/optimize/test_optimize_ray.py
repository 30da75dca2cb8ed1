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


FAULTY = """
from planarpy import find_strategy
Base = find_strategy({path!r})

class Faulty(Base):
    def tick(self, ts):
        if self.fast == 15 and self.i > 1000:
            raise ZeroDivisionError("boom on ray")
        super().tick(ts)
"""


def test_grid_gives_the_same_table_locally_and_on_ray(here, tmp_path):
    """...and a trial that raises on Ray is named as it is on local workers (one cluster
    for both checks: it takes seconds to start)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'planarpy[ray]')")
    from planarpy.optimize import TrialError
    local = optimize("sma_cross", storage=tmp_path / "local", jobs=2, **GRID)
    faulty = tmp_path / "faulty.py"
    faulty.write_text(FAULTY.format(path=str(here / "strategies" / "sma_cross.py")))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = optimize("sma_cross", storage=tmp_path / "ray", backend="ray", **GRID)
        with pytest.raises(TrialError) as e:
            optimize(str(faulty), storage=tmp_path / "faulty", backend="ray", **GRID)
    finally:
        ray.shutdown()
    assert rows(on_ray) == rows(local) and len(rows(local)) == 11
    assert on_ray.best_params == local.best_params
    assert on_ray.workers and all(w["pid"] for w in on_ray.workers)
    first = str(e.value).splitlines()[0]
    assert first.startswith("trial 6 (fast=15 slow=20 invest=0.99) of study ") and \
        "ZeroDivisionError: boom on ray (and 2 other trials)" in first, first
    assert "faulty.py" in str(e.value)
