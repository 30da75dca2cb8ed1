"""Faults during a study: a strategy that raises in some trials, a worker process that dies.

The study stops with an error that names the trial and its parameters; the trials that
finished are kept, the failed ones stay open, and running the same call again (after the
strategy is fixed) resumes them.
"""

from __future__ import annotations

import pytest

from planarpy.core.errors import PlanarError
from planarpy.optimize import TrialError, optimize

FAULTY = """
import os
from planarpy import find_strategy
Base = find_strategy({path!r})

class Faulty(Base):
    def tick(self, ts):
        if self.fast == {bad} and self.i > 1000:
            {action}
        super().tick(ts)
"""
GRID = {"method": "grid", "objective": "return", "params": {"invest": 0.99},
        "ranges": {"fast": "5:20:5", "slow": "30:40:10"}, "batch": 8}


def faulty(repo_root, tmp_path, action, bad=15):
    path = tmp_path / "faulty.py"
    path.write_text(FAULTY.format(path=str(repo_root / "strategies" / "sma_cross.py"),
                                  bad=bad, action=action))
    return str(path)


def completed(result_or_storage):
    import optuna
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result_or_storage)))
    (study,) = storage.get_all_studies()
    return {t.number: t.state.name for t in storage.get_all_trials(study._study_id)}


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_trial_that_raises_stops_the_study_naming_it_and_keeps_the_others(
        repo_root, tmp_path, jobs):
    strategy = faulty(repo_root, tmp_path, "raise ZeroDivisionError('boom in tick')")
    storage = tmp_path / "s.journal"
    with pytest.raises(TrialError) as e:
        optimize(strategy, storage=storage, jobs=jobs, **GRID)
    text = str(e.value)
    first = text.splitlines()[0]
    # trials 4 and 5 are fast=15 (slow 30 and 40)
    assert "trial 4 (fast=15 slow=30 invest=0.99)" in first, text
    assert "ZeroDivisionError: boom in tick" in first and "and 1 other trial" in first
    assert "faulty.py" in text and "raise ZeroDivisionError" in text  # the strategy's frame
    assert "run it again to resume" in text
    states = completed(storage)
    assert [n for n, s in states.items() if s == "COMPLETE"] == [0, 1, 2, 3, 6, 7]
    assert states[4] == states[5] == "RUNNING"  # open: run again on resume

    fixed = faulty(repo_root, tmp_path, "pass")
    assert fixed == strategy
    r = optimize(strategy, storage=storage, jobs=jobs, **GRID)
    assert [t["number"] for t in r.trials] == list(range(8))
    assert all(t["state"] == "complete" for t in r.trials)


def test_a_worker_process_that_dies_is_named_with_its_trials(repo_root, tmp_path):
    strategy = faulty(repo_root, tmp_path, "os._exit(3)", bad=20)
    storage = tmp_path / "s.journal"
    with pytest.raises(TrialError) as e:
        optimize(strategy, storage=storage, jobs=2, **GRID)
    first = str(e.value).splitlines()[0]
    assert "a worker process died" in first and "trial 6 (fast=20 slow=30" in first, first
    assert isinstance(e.value, PlanarError)
    states = completed(storage)
    assert states[6] == "RUNNING" and "COMPLETE" in states.values()


def test_a_fold_too_short_for_the_warmup_names_the_trial_and_the_window(repo_root, tmp_path):
    with pytest.raises(TrialError) as e:
        optimize(str(repo_root / "strategies" / "sma_cross.py"), method="grid",
                 storage=tmp_path / "s.journal", walk_forward=40, train=0.5,
                 ranges={"fast": [10], "slow": [190, 200]}, params={"invest": 0.99})
    text = str(e.value)
    assert text.startswith("trial 0 (fast=10 slow=190 invest=0.99) of study "), text
    assert "nothing to backtest" in text and "window" in text
    assert "Traceback" not in text  # a planarpy error needs no traceback
