"""The study driver: samplers, and ask/tell in fixed batches (the storage: storage.py).

Why batches: a study must give the same trials whether it runs on 1 worker or 8, locally
or on Ray, in one go or resumed after a kill. So trials are asked in batches of a fixed
size (not of the worker count), every trial's sampler is seeded from (seed, trial number),
and a batch is asked whole before any of its trials is told. Trial n then always sees the
same history, and the same parameters come out.

Resuming: a killed run leaves trials RUNNING in the storage. The next run finishes the
batch they belong to — asks what was not asked yet, runs the RUNNING ones with the
parameters stored for them, tells them — and goes on; an ask cut off halfway is finished
as it would have run. One driver per study (storage.study_lock).

Grid and random points do not depend on history: a small planned sampler hands trial n
its grid point or its seeded random draw. TPE and NSGA-II are Optuna's.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from typing import Any, Callable, Mapping, Sequence

import attrs
import numpy as np

from ..core.errors import ConfigError
from ..params import format_values
from .objectives import Constraint, Objective
from .space import Space
from .splits import Window
from .storage import _optuna
from .work import Pool, Task, TrialError

METHODS = ("grid", "random", "tpe", "nsga2")
SIGNATURE = "planarpy"  # the study's user attribute that says what it optimises

@attrs.frozen(slots=True)
class Plan:
    """How one study searches: method, space, size, batching, seed, window, objectives."""

    method: str
    space: Space
    total: int
    batch: int
    seed: int
    window: Window
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    points: tuple[Mapping[str, Any], ...] = ()  # the grid, in order

    def task(self, number: int, point: Mapping[str, Any]) -> Task:
        """The backtest of trial `number`. The look-ahead check (a tenth of a short trial)
        looks at the strategy's indicator code, the same in every trial: the first trial
        of each batch runs it, enough to stop a study with a look-ahead in its first
        batch, whatever the number of workers."""
        return Task(number, self.space.full(point), self.window.start, self.window.stop,
                    number % self.batch == 0)


def signature_of(items: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The JSON form of what a study optimises, and a short hash of it."""
    sig = json.loads(json.dumps(items, sort_keys=True, default=str))
    digest = hashlib.sha1(json.dumps(sig, sort_keys=True).encode()).hexdigest()[:10]
    return sig, digest


def load_study(storage: Any, name: str, plan: Plan, signature: Mapping[str, Any]) -> Any:
    """Create the study, or load it if it exists with the same signature."""
    optuna = _optuna()
    directions = [o.direction for o in plan.objectives]
    study = optuna.create_study(study_name=name, storage=storage, directions=directions,
                                load_if_exists=True)
    stored = study.user_attrs.get(SIGNATURE)
    if stored is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(f"study {name!r} exists and was not made by planarpy optimize; "
                              "give another --study name")
        study.set_user_attr(SIGNATURE, dict(signature))
    elif stored != signature:
        keys = sorted(k for k in set(stored) | set(signature) if stored.get(k) != signature.get(k))
        raise ConfigError(f"study {name!r} exists with other settings ({', '.join(keys)} "
                          "differ); give another --study name, or the same settings to resume")
    return study


# ---- samplers ---------------------------------------------------------------------------
def trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def make_sampler(plan: Plan, number: int) -> Any:
    optuna = _optuna()
    seed = trial_seed(plan.seed, number)
    if plan.method == "grid":
        return _planned(lambda n: plan.points[n])
    if plan.method == "random":
        return _planned(lambda n: plan.space.random_point((plan.seed, n)))
    if plan.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, plan.batch))
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(plan.batch, 2))


def _planned(point_of: Callable[[int], Mapping[str, Any]]) -> Any:
    """A sampler that gives trial n the parameters `point_of(n)`."""
    optuna = _optuna()

    class Planned(optuna.samplers.BaseSampler):
        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            return {}

        def sample_relative(self, study: Any, trial: Any, space: Any) -> dict[str, Any]:
            return {}

        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            return point_of(trial.number)[name]

    return Planned()


# ---- the driver ---------------------------------------------------------------------------
PLANNED = ("grid", "random")  # methods whose points do not depend on the trials told


def run_study(study: Any, plan: Plan, pool: Pool, progress: Any = None,
              sync: Callable[[bool], None] = lambda now=False: None) -> None:
    """Ask, run and tell trials a batch at a time until the study holds `plan.total`
    finished ones. `sync(now)` makes the writes durable (now: whatever the interval).

    TPE and NSGA-II ask a batch once the one before is told (its history). Grid and random
    points need no history: their next batch is asked while the workers still run the
    last trials of this one, so no worker waits for the driver at a batch end."""
    ahead = plan.method in PLANNED
    lo = _resume_from(study, plan)
    tasks: dict[int, Task] = {}
    ids: dict[int, int] = {}
    failed: list[dict[str, Any]] = []
    while True:
        more = lo < plan.total and not failed
        if more and (not pool.pending or (ahead and pool.pending < 2 * pool.jobs)):
            batch = _prepare(study, plan, lo, ids, progress)
            tasks.update((t.number, t) for t in batch)
            pool.submit(batch)
            lo += plan.batch
            continue
        if not pool.pending:
            break
        for out in pool.collect():
            if "error" in out:
                failed.append(out)
                continue
            tell(study, plan, ids[out["number"]], out)
            _step(progress)
        sync(False)
    sync(True)
    if failed:
        raise trial_error(study.study_name, plan.window, list(tasks.values()), failed)


def _resume_from(study: Any, plan: Plan) -> int:
    """The first trial of the first batch not finished: the one of the first trial left
    open (asked, maybe in part, not told), else of the first one not asked."""
    running = _optuna().trial.TrialState.RUNNING
    trials = study.get_trials(deepcopy=False)
    first = next((t.number for t in trials if t.state == running), len(trials))
    return first // plan.batch * plan.batch


def _prepare(study: Any, plan: Plan, lo: int, ids: dict[int, int],
             progress: Any) -> list[Task]:
    """The batch from trial `lo`, asked whole: asks a killed run cut off finished, the
    others made; its open trials as tasks (those of a run killed before it told them
    included). A sampler's point outside --where is told pruned, never run."""
    optuna = _optuna()
    running = optuna.trial.TrialState.RUNNING
    hi = min(lo + plan.batch, plan.total)
    trials = study.get_trials(deepcopy=False)
    for t in trials[lo:hi]:
        if t.state == running:
            ids[t.number] = t._trial_id
            if set(t.params) != set(plan.space.names):
                _finish_ask(study, plan, t._trial_id, t.number)  # cut off mid-ask
    for number in range(len(trials), hi):
        ids[number] = _ask(study, plan, number)
    tasks = []
    for t in study.get_trials(deepcopy=False)[lo:hi]:
        if t.state != running:
            continue
        if plan.space.admissible(t.params):
            tasks.append(plan.task(t.number, t.params))
        else:
            study.tell(t.number, state=optuna.trial.TrialState.PRUNED)
            _step(progress)
    return tasks


def trial_error(study: str, window: Window, tasks: Sequence[Task],
                failed: Sequence[Mapping[str, Any]], out_of_sample: bool = False) -> TrialError:
    """The error of a batch with failed trials: the first named with its parameters and
    window, the cause, and the strategy's traceback if it raised."""
    first = min(failed, key=lambda out: out["number"])
    params = next(t.params for t in tasks if t.number == first["number"])
    where = "all the candles" if window == Window(None, None) else f"the window {window}"
    others = len(failed) - 1
    more = f" (and {others} other trial{'s' if others > 1 else ''})" if others else ""
    what = "the out-of-sample run of trial" if out_of_sample else "trial"
    text = (f"{what} {first['number']} ({format_values(params)}) of study {study} on {where}: "
            f"{first['error']}{more}. The finished trials are kept and the failed ones stay "
            "open: fix the cause and run it again to resume")
    if first.get("traceback"):
        text += "\n" + first["traceback"]
    return TrialError(text)


def _ask(study: Any, plan: Plan, number: int) -> int:
    study.sampler = make_sampler(plan, number)
    trial = study.ask(plan.space.distributions())
    if trial.number != number:
        raise ConfigError(f"study {study.study_name!r}: expected trial {number}, the storage "
                          f"made {trial.number}; is another process running it?")
    return trial._trial_id


def _finish_ask(study: Any, plan: Plan, trial_id: int, number: int) -> None:
    """Store the parameters an ask stored only in part before its process was killed, as
    that ask would have: the trial's sampler seeded alike, and its random draws made for
    the stored parameters too (their values kept), so the missing ones come out as in a
    run that was never cut off. This follows `optuna.Trial._suggest` step by step."""
    optuna = _optuna()
    study.sampler = make_sampler(plan, number)
    if plan.method == "nsga2":
        _forget_parents(study, study.sampler, trial_id, number)
    trial = optuna.trial.Trial(study, trial_id)  # runs the sampler's before_trial again
    for name, dist in plan.space.distributions().items():
        if name not in trial.params:
            trial._suggest(name, dist)
        elif not (dist.single() or trial._is_fixed_param(name, dist)
                  or trial._is_relative_param(name, dist)):
            study.sampler.sample_independent(study, trial._cached_frozen_trial, name, dist)


def _forget_parents(study: Any, sampler: Any, trial_id: int, number: int) -> None:
    """NSGA-II keeps a generation's parents in the study when the generation's first trial
    picks them, and reads them back in another order than it picked them. If the trial cut
    off is that first one, drop what it kept, so that its ask picks them again alike.
    (Optuna's GA sampler keys, stable within Optuna 5.)"""
    key = sampler._get_generation_key()
    generation = study._storage.get_trial(trial_id).system_attrs.get(key)
    if generation is None:
        return  # the ask stopped before it asked for a generation; it kept no parents
    first = min(t.number for t in study.get_trials(deepcopy=False)
                if t.system_attrs.get(key) == generation)
    if first == number:
        study._storage.set_study_system_attr(
            study._study_id, sampler._get_parent_cache_key_prefix() + str(generation), None)


def tell(study: Any, plan: Plan, trial_id: int, out: Mapping[str, Any]) -> None:
    """Store a trial's summary and constraint values, then its objective values."""
    optuna = _optuna()
    trial = optuna.trial.Trial(study, trial_id)
    summary = out["summary"]
    trial.set_user_attr("result", {"summary": summary, "seconds": out["seconds"],
                                   "cpu": out.get("cpu")})
    stored = trial.constraints  # a trial resumed after a kill may have them already
    for c in plan.constraints:
        if c.text not in stored:
            trial.set_constraint(c.text, c.violation(summary))
    values = out["values"]
    if any(not math.isfinite(v) for v in values):
        _tell(study, trial, None, optuna.trial.TrialState.FAIL)
    else:
        _tell(study, trial, values if len(values) > 1 else values[0], None)


def _tell(study: Any, trial: Any, values: Any, state: Any) -> None:
    """Study.tell, without the deep copy of the trial it returns (summary and all, about
    0.4 ms a trial); the public call where Optuna's inner one is not found."""
    try:
        from optuna.study._tell import _tell_with_warning
    except ImportError:
        study.tell(trial, values, state=state)
        return
    _tell_with_warning(study=study, trial=trial, value_or_values=values, state=state)


def _step(progress: Any) -> None:
    if progress is not None:
        progress.update(1)


def progress_bar(enabled: bool, total: int, initial: int, desc: str) -> Any:
    """A tqdm bar with rate and ETA on stderr, or None."""
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="trial", file=sys.stderr,
                dynamic_ncols=True)


def finished(study: Any) -> int:
    optuna = _optuna()
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state != optuna.trial.TrialState.RUNNING)


def values_of(t: Any, n: int) -> list[float]:
    return list(t.values) if t.values is not None else [math.nan] * n


def as_rows(study: Any, plan: Plan) -> list[dict[str, Any]]:
    """One dict per trial, by number: params, objective values, feasibility, summary."""
    optuna = _optuna()
    state_names = {optuna.trial.TrialState.COMPLETE: "complete",
                   optuna.trial.TrialState.FAIL: "undefined",
                   optuna.trial.TrialState.PRUNED: "excluded",
                   optuna.trial.TrialState.RUNNING: "running"}
    rows = []
    for t in study.get_trials(deepcopy=False):
        result = t.user_attrs.get("result") or {}
        summary = result.get("summary")
        feasible = t.state == optuna.trial.TrialState.COMPLETE and \
            all(v <= 0 for v in t.constraints.values())
        rows.append({"number": t.number, "params": dict(t.params),
                     "values": values_of(t, len(plan.objectives)),
                     "state": state_names.get(t.state, t.state.name.lower()),
                     "feasible": feasible, "summary": summary,
                     "seconds": result.get("seconds"), "cpu": result.get("cpu")})
    return rows


def select(rows: Sequence[Mapping[str, Any]], objectives: Sequence[Objective]
           ) -> list[Mapping[str, Any]]:
    """The best feasible trial (ties: the earliest), or the Pareto front for several
    objectives, in trial order."""
    ok = [r for r in rows if r["feasible"]]
    if not ok:
        return []
    sign = [1.0 if o.maximize else -1.0 for o in objectives]
    keys = [[s * v for s, v in zip(sign, r["values"])] for r in ok]
    if len(objectives) == 1:
        best = max(range(len(ok)), key=lambda i: (keys[i][0], -ok[i]["number"]))
        return [ok[best]]
    return [r for r, k in zip(ok, keys)
            if not any(all(a >= b for a, b in zip(o, k)) and o != k for o in keys)]
