"""A study killed halfway (a real SIGKILL of the process) resumes and completes the same
trials, with the same parameters and values, as a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import pytest

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

SLOW = """
import time
import warnings

import pytest
from planarpy import find_strategy
Base = find_strategy({path!r})

class SlowCross(Base):
    def start(self):
        time.sleep(0.1)  # slow enough to be killed halfway
        super().start()
"""


def trials_in(path):
    if not os.path.exists(path):
        return []
    storage = JournalStorage(JournalFileBackend(str(path)))
    return [t for s in storage.get_all_studies()
            for t in storage.get_all_trials(s._study_id, deepcopy=False)]


def command(strategy, storage):
    return [sys.executable, "-m", "planarpy.cli.main", "optimize", str(strategy),
            "--method", "tpe", "--trials", "16", "--batch", "4", "--objective", "return",
            "-p", "invest=0.99", "--seed", "7", "--storage", str(storage), "--json"]


def outcome(path):
    return sorted((t.number, t.state.name, tuple(sorted(t.params.items())), tuple(t.values or ()))
                  for t in trials_in(path))


def test_killed_study_resumes_and_completes_the_same_trials(repo_root, tmp_path):
    strategy = tmp_path / "slow_cross.py"
    strategy.write_text(SLOW.format(path=str(repo_root / "strategies" / "sma_cross.py")))
    killed = tmp_path / "killed.journal"
    proc = subprocess.Popen(command(strategy, killed), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials_in(killed)) < 5:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the study never got 5 trials done"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    half = trials_in(killed)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in half)
    assert 5 <= done < 16, "the kill came too late to test a resume"

    again = subprocess.run(command(strategy, killed), cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    whole = tmp_path / "whole.journal"
    ref = subprocess.run(command(strategy, whole), cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stderr
    resumed = outcome(killed)
    assert len(resumed) == 16 and all(state == "COMPLETE" for _, state, _, _ in resumed)
    assert resumed == outcome(whole)
    # the trials done before the kill were kept, not run again
    kept = {t.number: t.values for t in half if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(dict((n, v) for n, _, _, v in resumed)[n] == tuple(v) for n, v in kept.items())


@pytest.mark.parametrize("method", ["tpe", "nsga2", "random", "grid"])
def test_a_study_cut_off_after_any_record_resumes_to_the_same_trials(repo_root, tmp_path,
                                                                     monkeypatch, method):
    """The journal is the study's history, record by record: its first k records are the
    storage as a kill after the k-th write leaves it (mid-ask, between a trial's summary and
    its end, between batches...). Resumed from every such point, the study completes with
    the trials, parameters and values of a run never cut off."""
    from planarpy.data.sources import load_ohlcv
    from planarpy.optimize import optimize
    monkeypatch.chdir(repo_root)
    t0 = int(load_ohlcv("binance", "ETH/BTC", "5m").timestamp[0])
    grid = method == "grid"
    kw = {"method": method, "trials": 8, "batch": 4, "seed": 3, "stop": t0 + 1500 * 300_000,
          "objective": ["return", "max_drawdown"] if method == "nsga2" else "return",
          "constraints": ["trades >= 3"] if method == "tpe" else None,
          "ranges": {"fast": "5:40:5", "slow": "20:120:20"} if grid else
          {"fast": "5:40", "slow": "20:120"}, "params": {"invest": 0.99} if grid else None}
    table = lambda r: [(t["number"], t["params"], t["values"], t["state"])  # noqa: E731
                       for t in r.trials]
    ref = optimize("sma_cross", storage=tmp_path / "ref.journal", **kw)
    records = (tmp_path / "ref.journal").read_bytes().splitlines(keepends=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing for Optuna to warn about on resume
        for k in range(1, len(records)):
            cut = tmp_path / f"cut{k}.journal"
            cut.write_bytes(b"".join(records[:k]))
            assert table(optimize("sma_cross", storage=cut, **kw)) == table(ref), \
                f"resumed after record {k}: {records[k - 1][:120]!r}"
