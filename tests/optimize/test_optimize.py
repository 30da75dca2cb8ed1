"""`optimize`: grid, random, TPE and NSGA-II over a strategy's Params, deterministic under a
seed and across workers, with constraints, a Pareto front and walk-forward folds."""

from __future__ import annotations

import math

import pytest

from planarpy import ParamError, backtest, find_strategy
from planarpy.core.errors import ConfigError
from planarpy.modes.sim.results import MissingExtra
from planarpy.optimize import optimize

GRID = {"ranges": {"fast": "5:20:5", "slow": "20:60:20"}, "params": {"invest": 0.99},
        "where": ["fast < slow"]}


def table(result):
    return [(t["number"], t["params"], t["values"], t["state"], t["feasible"])
            for t in result.trials]


def test_grid_runs_every_admissible_point_in_order_and_finds_the_best(here, tmp_path):
    r = optimize("sma_cross", method="grid", objective="return", storage=tmp_path / "s", **GRID)
    points = [(t["params"]["fast"], t["params"]["slow"]) for t in r.trials]
    assert points == [(f, s) for f in (5, 10, 15, 20) for s in (20, 40, 60) if f < s]
    cls = find_strategy("sma_cross")
    returns = {p: backtest(cls, params={"fast": p[0], "slow": p[1]}).total_return for p in points}
    assert [t["values"][0] for t in r.trials] == [returns[p] for p in points]
    best = max(points, key=lambda p: returns[p])
    assert (r.best_params["fast"], r.best_params["slow"]) == best
    assert r.best_params["invest"] == 0.99


def test_same_table_in_process_and_on_two_worker_processes(here, tmp_path):
    """The workers map the candles; the table is the same as one process makes."""
    a = optimize("sma_cross", method="tpe", trials=12, batch=4, objective="sharpe",
                 params={"invest": 0.99}, storage=tmp_path / "a", seed=3)
    b = optimize("sma_cross", method="tpe", trials=12, batch=4, objective="sharpe",
                 params={"invest": 0.99}, storage=tmp_path / "b", seed=3, jobs=2)
    assert table(a) == table(b)
    assert 1 <= len(b.workers) <= 2 and all(w["pid"] for w in b.workers)  # who got work


def test_seed_decides_the_trials(here, tmp_path):
    run = lambda seed, where: optimize("sma_cross", method="random", trials=6, seed=seed,  # noqa: E731
                                       storage=tmp_path / where, params={"invest": 0.5})
    a, b, c = run(1, "a"), run(1, "b"), run(2, "c")
    assert table(a) == table(b) and table(a) != table(c)


def test_rerun_resumes_instead_of_repeating(here, tmp_path):
    """The same call again finds its finished study and runs no trial."""
    first = optimize("sma_cross", method="grid", storage=tmp_path / "s", **GRID)
    again = optimize("sma_cross", method="grid", storage=tmp_path / "s", **GRID)
    assert table(first) == table(again) and first.folds[0].study == again.folds[0].study


def test_constraint_marks_trials_infeasible_and_best_skips_them(here, tmp_path):
    r = optimize("sma_cross", method="grid", objective="return", storage=tmp_path / "s",
                 constraints=["trades <= 200"], **GRID)
    for t in r.trials:
        assert t["feasible"] == (t["summary"]["trades"] <= 200)
    assert r.best["summary"]["trades"] <= 200
    assert r.best["values"][0] == max(t["values"][0] for t in r.trials if t["feasible"])


def test_function_objective_and_undefined_values(here, tmp_path):
    """A function of the SimResult is an objective; NaN (sharpe of no trades) is 'undefined'."""
    def fees_share(result):
        return result.fees / result.initial_cash

    r = optimize("sma_cross", method="grid", objective=(fees_share, "min"),
                 storage=tmp_path / "s", **GRID)
    assert r.objectives[0].name == "fees_share" and not r.objectives[0].maximize
    assert r.best["values"][0] == min(t["values"][0] for t in r.trials)


def test_two_objectives_give_a_pareto_front(here, tmp_path):
    r = optimize("sma_cross", objective=["return", "max_drawdown"], trials=16, batch=8,
                 params={"invest": 0.99}, storage=tmp_path / "s")
    assert r.method == "nsga2"
    front = r.pareto
    assert front
    pts = [(t["values"][0], -t["values"][1]) for t in r.trials if t["feasible"]]
    for t in front:
        ret, dd = t["values"][0], -t["values"][1]
        assert not any(a >= ret and b >= dd and (a, b) != (ret, dd) for a, b in pts)


def test_walk_forward_reports_each_fold_in_and_out_of_sample(here, tmp_path):
    r = optimize("sma_cross", method="grid", objective="return", walk_forward=3, train=0.6,
                 storage=tmp_path / "s", **GRID)
    assert len(r.folds) == 3
    for prev, f in zip(r.folds, r.folds[1:]):
        assert prev.test.stop == f.test.start  # test windows tile the end of the data
    for f in r.folds:
        assert f.train.stop == f.test.start and len(f.best) == 1
        (oos,) = f.out_of_sample
        assert oos["number"] == f.best[0]["number"]
        s = oos["summary"]
        assert s["params"] == {**f.best[0]["params"], "invest": 0.99}
        assert f.test.start <= s["start"] and (f.test.stop is None or s["end"] < f.test.stop)
    text = r.report()
    assert text.count("fold ") == 3 and "return IS" in text and "return OOS" in text


def test_train_test_split_is_one_fold(here, tmp_path):
    r = optimize("sma_cross", method="grid", objective="return", split=0.7,
                 storage=tmp_path / "s", **GRID)
    (f,) = r.folds
    assert f.test is not None and f.out_of_sample


@pytest.mark.parametrize("kwargs, message", [
    ({"ranges": {"fsat": "1:3"}}, "unknown parameter 'fsat' for SmaCross"),
    ({"params": {"fsat": 3}}, "unknown parameter 'fsat' for SmaCross"),
    ({"ranges": {"fast": "50:5"}}, "parameter fast: empty range, low=50 is above high=5"),
    ({"ranges": {"fast": "a:9"}}, "parameter fast='a': not an int"),
    ({"ranges": {"fast": "1:9"}}, "parameter fast=1: out of range; allowed: int from 2 to 50"),
    ({"ranges": {"fast": []}}, "parameter fast: the range given is empty"),
    ({"ranges": {"fast": [2.5]}}, "parameter fast=2.5: the value must be an int"),
    ({"params": {"fast": "7"}}, "parameter fast='7': the value must be an int"),
    ({"where": ["fast <> slow"]}, "--where 'fast <> slow' is not 'NAME OP NAME'"),
    ({"where": ["fast > 99"]}, "no admissible point in the grid"),
    ({"objective": "profit"}, "objective 'profit' is not a summary statistic"),
    ({"objective": "return:up"}, "objective return: direction 'up' is not max or min"),
    ({"constraints": ["trades"]}, "constraint 'trades' is not 'STAT OP NUMBER'"),
    ({"method": "bayes"}, "method 'bayes' is not one of grid, random, tpe, nsga2"),
    ({"backend": "dask"}, "backend 'dask' is not 'local' or 'ray'"),
    ({"split": 0.7, "walk_forward": 2}, "either a train/test split or walk-forward folds"),
    ({"walk_forward": 3000, "train": 0.5}, "too few for 3000 fold(s)"),
])
def test_bad_spec_is_a_clear_error(kwargs, message, here, tmp_path):
    args = {"method": "grid", "ranges": {"fast": "5:20:5", "slow": "20:60:20"},
            "params": {"invest": 0.99}, **kwargs}
    with pytest.raises((ParamError, ConfigError)) as e:
        optimize("sma_cross", storage=tmp_path / "s", **args)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_changed_settings_under_the_same_study_name_are_refused(here, tmp_path):
    optimize("sma_cross", method="grid", storage=tmp_path / "s", study="mine", **GRID)
    with pytest.raises(ConfigError, match=r"study 'mine-?.*' exists with other settings \(.*space"):
        optimize("sma_cross", method="grid", storage=tmp_path / "s", study="mine",
                 ranges={"fast": "5:10:5", "slow": "20:60:20"}, params={"invest": 0.99})


def test_results_table_without_pandas(here, tmp_path, monkeypatch):
    """Rows, text and CSV need nothing; frame() says how to get pandas."""
    r = optimize("sma_cross", method="grid", storage=tmp_path / "s", objective="return", **GRID)
    frame = r.frame()
    assert list(frame["trial"]) == list(range(11)) and frame["best"].sum() == 1
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    with pytest.raises(MissingExtra, match=r"pip install planarpy\[pandas\]"):
        r.frame()
    assert len(r.rows()) == 11 and "trial  fast  slow" in r.table()
    lines = r.to_csv(tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) == 12 and lines[0].startswith("trial,fast,slow,return")


def test_progress_bar_shows_rate_and_eta(here, tmp_path, capsys):
    optimize("sma_cross", method="grid", storage=tmp_path / "s", progress=True, **GRID)
    err = capsys.readouterr().err
    assert "11/11" in err and "trial/s" in err and "<" in err  # tqdm: elapsed<remaining


def test_unsendable_objective_is_refused_for_worker_processes(here, tmp_path):
    with pytest.raises(ConfigError, match="define objective functions at the top level"):
        optimize("sma_cross", method="grid", storage=tmp_path / "s", jobs=2,
                 objective=lambda r: r.total_return, **GRID)


def test_undefined_objective_value_is_not_a_best(here, tmp_path):
    """Sharpe of a run without trades is undefined: the trial is kept as 'undefined'."""
    from planarpy.data.sources import load_ohlcv
    t0 = int(load_ohlcv("binance", "ETH/BTC", "5m").timestamp[0])
    r = optimize("sma_cross", method="grid", objective="sharpe", storage=tmp_path / "s",
                 ranges={"fast": [45], "slow": [195, 200]}, params={"invest": 0.99},
                 stop=t0 + 205 * 300_000)
    assert [t["state"] for t in r.trials] == ["undefined", "undefined"]
    assert all(math.isnan(t["values"][0]) and not t["feasible"] for t in r.trials)
    assert r.best is None and "no feasible trial" in r.report()


def test_a_class_made_in_a_function_runs_in_process_and_is_refused_for_workers(here, tmp_path):
    """In one process any class will do; worker processes must be able to import it."""
    base = find_strategy("sma_cross")
    local = type("Local", (base,), {})
    r = optimize(local, method="grid", storage=tmp_path / "s", **GRID)
    assert len(r.trials) == 11
    with pytest.raises(ConfigError, match="cannot be found again by another process"):
        optimize(local, method="grid", storage=tmp_path / "s2", jobs=2, **GRID)


def test_rdb_url_storage_keeps_and_resumes_the_study(here, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = optimize("sma_cross", method="grid", storage=url, **GRID)
    again = optimize("sma_cross", method="grid", storage=url, **GRID)
    assert table(first) == table(again) and len(first.trials) == 11
    with pytest.raises(ConfigError, match=r"--storage 'nosuch://x': cannot open it"):
        optimize("sma_cross", method="grid", storage="nosuch://x", **GRID)


def test_more_jobs_than_a_batch_holds_is_said_and_no_idle_worker_is_started(here, tmp_path,
                                                                             caplog):
    """TPE asks a batch once the one before is told: workers beyond the batch size would
    wait idle. Grid points need no history: the next batch is asked ahead, so every worker
    has work and nothing is said."""
    with caplog.at_level("WARNING", logger="planarpy.optimize"):
        r = optimize("sma_cross", method="tpe", trials=4, storage=tmp_path / "s", jobs=3,
                     batch=2, **GRID)
    assert "--jobs 3 is more than --batch 2: at most 2 trials run at a time" in caplog.text
    assert len(r.trials) == 4 and len(r.workers) <= 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="planarpy.optimize"):
        r = optimize("sma_cross", method="grid", storage=tmp_path / "g", jobs=3, batch=2,
                     **GRID)
    assert "more than --batch" not in caplog.text and len(r.trials) == 11


def test_no_feasible_trial_says_which_constraint_failed(here, tmp_path, capsys):
    from planarpy.cli.main import main
    assert main(["optimize", "sma_cross", "--method", "grid", "-r", "fast=5:10:5", "-r",
                 "slow=20:40:20", "-p", "invest=0.99", "--constraint", "trades >= 100000",
                 "--constraint", "trades >= 5", "--storage", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "  no feasible trial: constraint 'trades >= 100000' met by 0 of 4 trials, " \
           "constraint 'trades >= 5' met by 4 of 4 trials\n" in out
    assert "best: no feasible trial" in out


def test_the_lookahead_check_runs_once_a_batch_and_still_stops_a_peeking_strategy(here,
                                                                                  tmp_path):
    """The check reads the indicator code, the same in every trial: the first trial of
    each batch runs it (a tenth of a short trial saved on the others)."""
    import numpy as np

    from planarpy.optimize import TrialError
    base = find_strategy("sma_cross")
    calls = []

    class Counted(base):
        def indicators(self, ai):
            calls.append(len(ai.ohlcv))
            return super().indicators(ai)

    grid = {**GRID, "ranges": {"fast": "5:10:5", "slow": "20:60:20"}, "batch": 4}
    optimize(Counted, method="grid", storage=tmp_path / "a", **grid)  # 6 trials, 2 batches
    full = max(calls)
    # the checks (causal, then the lookback tiles) recompute on partial data only, in
    # one run of calls before the first trial of each batch
    runs = [k for k, c in enumerate(calls) if c != full and (k == 0 or calls[k - 1] == full)]
    assert calls.count(full) == 6 and len(runs) == 2, calls

    class Peeking(base):
        def indicators(self, ai):
            out = super().indicators(ai)
            return {**out, "next": np.roll(ai.ohlcv.close, -1)}

    with pytest.raises(TrialError) as e:
        optimize(Peeking, method="grid", storage=tmp_path / "b", **grid)
    first = str(e.value).splitlines()[0]
    assert first.startswith("trial 0 (fast=5 slow=20 invest=0.99)") and \
        "LookAheadError: indicator 'next' of ETH/BTC looks ahead" in first, first


def test_the_driver_sees_the_study_as_its_journal_file_holds_it(here, tmp_path):
    """The driver reads the journal once and then hands back its own records from memory:
    what it reports must be what any reader of the file gets (JSON's lists, not tuples)."""
    import optuna

    r = optimize("sma_cross", method="random", trials=6, batch=4, jobs=2,
                 objective=["return", "max_drawdown"], storage=tmp_path / "s.journal",
                 constraints=["trades >= 1"], **GRID)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "s.journal")))
    (study,) = storage.get_all_studies()
    stored = storage.get_all_trials(study._study_id)
    assert [(t.number, t.params, t.values, t.user_attrs["result"]["summary"],
             t.user_attrs["result"]["cpu"]) for t in stored] == \
        [(t["number"], t["params"], t["values"], t["summary"], t["cpu"]) for t in r.trials]
    assert all(t["cpu"] > 0 and t["seconds"] > 0 for t in r.trials)


@pytest.mark.parametrize("method", ["grid", "tpe"])
def test_grid_asks_the_next_batch_before_this_one_ends_and_tpe_after(here, tmp_path,
                                                                     method):
    """Grid and random points need no history: the next batch is asked while trials of
    this one still run, so no worker waits for the driver at a batch end. TPE's batch is
    asked once the one before is told: the history every run of it sees alike."""
    import json

    from optuna.storages.journal._storage import JournalOperation as Op
    journal = tmp_path / "s.journal"
    optimize("sma_cross", method=method, trials=6, batch=4, objective="return",
             storage=journal, ranges={"fast": "5:10:5", "slow": "20:60:20"},
             params={"invest": 0.99})
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    created = [k for k, r in enumerate(records) if r["op_code"] == Op.CREATE_TRIAL]
    told = [k for k, r in enumerate(records) if r["op_code"] == Op.SET_TRIAL_STATE_VALUES
            and r["trial_id"] < 4]
    assert len(created) == 6 and len(told) == 4
    assert (created[4] < max(told)) == (method == "grid"), (created, told)
