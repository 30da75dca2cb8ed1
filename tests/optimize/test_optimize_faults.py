"""Faults during a study: a strategy that raises in some trials, a worker process that dies.

The study stops with an error that names the trial and its parameters; the trials that
finished are kept, the failed ones stay open, and running the same call again (after the
strategy is fixed) resumes them.
"""

from __future__ import annotations

import re

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
    assert "a worker process died" in first and isinstance(e.value, PlanarError), first
    # the trials in flight when it died (which, depends on timing) stay open, 6 among them
    named = int(re.match(r"trial (\d+) \(fast=", first).group(1))
    states = completed(storage)
    assert states[6] == states[named] == "RUNNING" and "COMPLETE" in states.values()


def test_a_fold_too_short_for_the_warmup_names_the_trial_and_the_window(repo_root, tmp_path):
    with pytest.raises(TrialError) as e:
        optimize(str(repo_root / "strategies" / "sma_cross.py"), method="grid",
                 storage=tmp_path / "s.journal", walk_forward=40, train=0.5,
                 ranges={"fast": [10], "slow": [190, 200]}, params={"invest": 0.99})
    text = str(e.value)
    assert text.startswith("trial 0 (fast=10 slow=190 invest=0.99) of study "), text
    assert "nothing to backtest" in text and "window" in text
    assert "Traceback" not in text  # a planarpy error needs no traceback


# ---- the journal under a full disk, a torn last record, a damaged or foreign file ---------
JOURNAL_GRID = {"method": "grid", "objective": "return", "params": {"invest": 0.99},
                "ranges": {"fast": "5:20:5", "slow": "20:60:20"}, "where": ["fast < slow"],
                "batch": 4}

FULL_DISK = """
import resource, signal, sys
from planarpy.core.errors import PlanarError
from planarpy.optimize import optimize
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
try:
    optimize("sma_cross", storage={path!r}, **{grid!r})
except PlanarError as e:
    print("ERROR", e)
    sys.exit(2)
"""


def journal_lines(path):
    import json
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the journal ends in a partial record"
    return [json.loads(line) for line in data.splitlines()]


def test_a_full_disk_stops_the_study_clearly_and_leaves_a_journal_that_resumes(here, tmp_path):
    """A real file-size limit (RLIMIT_FSIZE) makes the journal's writes fail halfway."""
    import subprocess
    import sys
    whole = tmp_path / "whole.journal"
    ref = optimize("sma_cross", storage=whole, **JOURNAL_GRID)
    full = tmp_path / "full.journal"
    script = FULL_DISK.format(limit=whole.stat().st_size // 2, path=str(full),
                              grid=JOURNAL_GRID)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=here, timeout=300)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout.startswith(f"ERROR cannot write to the study journal {full}: "), run.stdout
    assert "Traceback" not in run.stderr
    kept = journal_lines(full)  # whole records only
    assert 0 < len(kept) < len(journal_lines(whole))
    again = optimize("sma_cross", storage=full, **JOURNAL_GRID)
    assert [(t["params"], t["values"]) for t in again.trials] == \
        [(t["params"], t["values"]) for t in ref.trials]


def test_a_torn_last_record_is_dropped_and_the_study_resumes(here, tmp_path, caplog):
    """A crash of the machine mid-write leaves half a record at the end: it was never
    committed, so it is dropped (with a warning) and the study completes as if whole."""
    path = tmp_path / "s.journal"
    ref = optimize("sma_cross", storage=path, **JOURNAL_GRID)
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # the last record (the last trial's end) torn
    with caplog.at_level("WARNING", logger="planarpy.optimize"):
        resumed = optimize("sma_cross", storage=path, **JOURNAL_GRID)
    assert "ended in a partial record" in caplog.text and str(path) in caplog.text
    assert [(t["params"], t["values"], t["state"]) for t in resumed.trials] == \
        [(t["params"], t["values"], t["state"]) for t in ref.trials]
    journal_lines(path)


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n",
                                     b'{"op_code": 0}\n{"op_code": 4, "tr\n{"op_code": 5}\n'])
def test_a_damaged_or_foreign_journal_is_a_clear_error(here, tmp_path, content):
    path = tmp_path / "s.journal"
    path.write_bytes(content)
    with pytest.raises(PlanarError) as e:
        optimize("sma_cross", storage=path, **JOURNAL_GRID)
    text = str(e.value)
    assert text.startswith(f"--storage {path}: line ") and "not a record of an Optuna " \
        "journal" in text and "\n" not in text
    assert path.read_bytes() == content  # left as it was


# ---- two drivers on one study -------------------------------------------------------------
SLOW = """
import os, time
from planarpy import find_strategy
Base = find_strategy({path!r})

class Slow(Base):
    def start(self):  # holds its first trial until the test lets it go (or 120 s)
        deadline = time.monotonic() + 120
        while not os.path.exists({release!r}) and time.monotonic() < deadline:
            time.sleep(0.01)
        super().start()
"""


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_second_driver_on_a_running_study_is_refused_and_harms_nothing(
        repo_root, tmp_path, kind):
    """While one process runs a study, another on the same storage stops at once with a
    clear error, before it writes anything; the first completes its trials unharmed."""
    import subprocess
    import sys
    import time

    import optuna
    strategy = tmp_path / "slow.py"
    release = tmp_path / "release"
    strategy.write_text(SLOW.format(path=str(repo_root / "strategies" / "sma_cross.py"),
                                    release=str(release)))
    storage = str(tmp_path / "s.journal") if kind == "journal" else \
        f"sqlite:///{tmp_path / 's.db'}"
    args = ["--method", "grid", "-r", "fast=5:20:5", "-r", "slow=30:40:10", "-p", "invest=0.99",
            "--batch", "2", "--storage", storage, "--objective", "return"]
    first = subprocess.Popen([sys.executable, "-m", "planarpy.cli.main", "optimize",
                              str(strategy), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)

    def trials():
        try:
            st = optuna.storages.RDBStorage(storage) if kind == "sqlite" else \
                optuna.storages.JournalStorage(
                    optuna.storages.journal.JournalFileBackend(storage))
            return [t for s in st.get_all_studies() for t in st.get_all_trials(s._study_id)]
        except Exception:  # not created yet
            return []
    deadline = time.monotonic() + 120
    while not trials():  # the first driver has asked its first trials, and holds them
        assert first.poll() is None, first.stderr.read()
        assert time.monotonic() < deadline, "the first driver never started a trial"
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "planarpy.cli.main", "optimize",
                             str(strategy), *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    release.touch()
    out, err = first.communicate(timeout=300)
    assert second.returncode == 2 and second.stderr.startswith(
        f"planarpy: error: another process is running a study in {storage}"), second.stderr
    assert first.returncode == 0, err
    done = trials()
    assert sorted(t.number for t in done) == list(range(8))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in done)


STARTING = """
import os, pathlib, time
from planarpy import find_strategy
Base = find_strategy({path!r})
pathlib.Path({marks!r}, str(os.getpid())).touch()  # this process is loading the strategy
time.sleep(1.0)

class Starting(Base):
    pass
"""


def test_ctrl_c_while_workers_start_is_one_line_and_the_study_resumes(repo_root, tmp_path):
    """Ctrl-C reaches the whole process group: the workers (still loading the strategy)
    must not each print a KeyboardInterrupt traceback; the driver stops them, says
    'interrupted', and the same command later completes the study."""
    import os
    import signal
    import subprocess
    import sys
    import time
    marks = tmp_path / "marks"
    marks.mkdir()
    strategy = tmp_path / "starting.py"
    strategy.write_text(STARTING.format(path=str(repo_root / "strategies" / "sma_cross.py"),
                                        marks=str(marks)))
    args = [sys.executable, "-m", "planarpy.cli.main", "optimize", str(strategy), "--method",
            "grid", "-r", "fast=5:20:5", "-r", "slow=30:40:10", "-p", "invest=0.99",
            "--jobs", "2", "--storage", str(tmp_path / "s.journal")]
    proc = subprocess.Popen(args, cwd=tmp_path, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not [m for m in os.listdir(marks) if m != str(proc.pid)]:  # a worker is loading
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "planarpy: interrupted\n", err
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr


NO_MAIN_GUARD = """
from planarpy import find_strategy
from planarpy.optimize import optimize
Base = find_strategy({path!r})

class Mine(Base):
    pass

optimize(Mine, method="grid", ranges={{"fast": "5:20:5", "slow": "30:40:10"}},
         params={{"invest": 0.99}}, jobs=2)
"""


def test_a_script_without_a_main_guard_is_told_what_to_do(repo_root, tmp_path):
    """Worker processes import the script that started them: at its top level, optimize
    would run again in each. It stops there, saying so, and the driver says the workers
    died while starting and why that may be."""
    import subprocess
    import sys
    script = tmp_path / "mine.py"
    script.write_text(NO_MAIN_GUARD.format(path=str(repo_root / "strategies" / "sma_cross.py")))
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 1
    guard = "call it under `if __name__ == '__main__':`"
    assert "ConfigError: optimize() was called while a worker process was starting: the " \
           f"worker imports the script that calls it; {guard}" in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("planarpy.optimize.work.TrialError: trial 0 ") and \
        "the worker processes died while starting (see their error above; a script that " \
        "calls optimize with jobs > 1 must call it under" in last, last


FULL_TMP = """
import resource, signal, sys
from planarpy.core.errors import PlanarError
from planarpy.optimize import optimize
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # the candles take 276 kB
try:
    optimize("sma_cross", storage={path!r}, jobs=2, **{grid!r})
except PlanarError as e:
    print("ERROR", e)
    sys.exit(2)
"""


def test_no_room_for_the_workers_candles_is_a_clear_error(here, tmp_path):
    """The candles the workers map are written to one file first; a full disk there is
    named, with the way out, and the half-written file is removed."""
    import os
    import subprocess
    import sys
    script = FULL_TMP.format(path=str(tmp_path / "s.journal"), grid=JOURNAL_GRID)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=here, timeout=300, env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout.startswith(f"ERROR cannot write the candles for the worker processes "
                                 f"to {tmp_path}"), run.stdout
    assert "File too large" in run.stdout and "TMPDIR" in run.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("planarpy-optimize-")]


PRINTING = """
import logging, logging.handlers, sys
from planarpy import find_strategy
from planarpy.optimize import optimize
Base = find_strategy({path!r})
log = logging.getLogger("mine")  # in every worker too (it imports this file): records kept
log.addHandler(logging.handlers.MemoryHandler(1000, target=logging.FileHandler({log!r})))

class Printing(Base):
    def tick(self, ts):
        if self.i == 1000:
            sys.stdout.write(f"trial {{self.fast}} {{self.slow}}\\n")  # a pipe: buffered
            log.warning("logged %s %s", self.fast, self.slow)  # written at the end
        super().tick(ts)

if __name__ == "__main__":
    optimize(Printing, method="grid", ranges={{"fast": "5:20:5", "slow": "30:40:10"}},
             params={{"invest": 0.99}}, storage={storage!r}, jobs=2)
"""


def test_what_trials_print_or_log_in_a_worker_is_not_lost_when_it_ends(repo_root, tmp_path):
    """A worker leaves without tearing its interpreter down (os._exit): its output is
    flushed and its log handlers are closed first (one that holds records until then
    included)."""
    import os
    import subprocess
    import sys
    script = tmp_path / "printing.py"
    script.write_text(PRINTING.format(path=str(repo_root / "strategies" / "sma_cross.py"),
                                      storage=str(tmp_path / "s.journal"),
                                      log=str(tmp_path / "mine.log")))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    points = [(f, s) for f in (5, 10, 15, 20) for s in (30, 40)]
    # (sets: the look-ahead check of a batch's first trial runs it once more in part)
    assert set(run.stdout.splitlines()) == {f"trial {f} {s}" for f, s in points}
    logged = (tmp_path / "mine.log").read_text().splitlines()
    assert set(logged) == {f"logged {f} {s}" for f, s in points}
