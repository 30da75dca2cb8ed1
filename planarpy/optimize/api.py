"""`optimize`: search a strategy's parameters with backtests, on this machine or on Ray."""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..config import load_config, project_dir
from ..core.errors import ConfigError
from ..data.ohlcv import OHLCV, align, timeframe_ms
from ..data.sources import markets_for
from ..loader import find_strategy
from ..modes.sim import SimConfig
from ..modes.sim.data import DataUsed
from ..modes.sim.run import load_universe
from ..strategy import Strategy
from . import splits
from .objectives import constraints as make_constraints
from .objectives import objectives as make_objectives
from .result import FoldResult, OptimizeResult
from .space import build_space
from .storage import open_storage, study_lock
from .study import (METHODS, PLANNED, Plan, as_rows, finished, load_study, progress_bar, run_study,
                    select, signature_of, trial_error)
from .work import Context, InProcess, LocalPool, StrategyRef, Task

BATCH = 16
log = logging.getLogger("planarpy.optimize")


def optimize(strategy: type[Strategy] | str, *, objective: Any = "sharpe",
             method: str | None = None, trials: int | None = None,
             ranges: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
             where: Iterable[str | Callable[[Mapping[str, Any]], bool]] = (),
             constraints: Any = None, split: float | None = None,
             walk_forward: int | None = None, train: float = 0.75, anchored: bool = False,
             jobs: int = 1, backend: str = "local", address: str | None = None,
             batch: int = BATCH, storage: str | Path | None = None, study: str | None = None,
             seed: int = 0, data: Mapping[str, OHLCV | str | Path] | None = None,
             start: int | None = None, stop: int | None = None, cash: float | None = None,
             config: SimConfig | None = None, settings: Mapping[str, Any] | None = None,
             data_dir: str | Path | None = None, markets: Mapping[str, Any] | None = None,
             progress: bool = False, in_process: bool | None = None) -> OptimizeResult:
    """Search `strategy`'s parameters; every trial is one backtest.

    - `objective`: a summary statistic ("sharpe", "return", "max_drawdown:min", ...), a
      function of the SimResult, or a list of them (several: a Pareto front).
    - `method`: "grid", "random", "tpe" (default for one objective) or "nsga2" (default
      for several); `trials` how many (default 100; a grid runs all its points, or the
      first `trials`).
    - `ranges` narrows a parameter's range for the search ("5:50:5", [5, 10, 20], a Param);
      `params` fixes parameters; `where` drops points ("fast < slow"); `constraints`
      ("trades >= 10", or functions of the summary) mark trials infeasible.
    - `split` (a train share) or `walk_forward` (folds, with `train` share, `anchored`):
      each fold is a study on its train window; its best trials run on its test window.
    - `jobs` local worker processes (the candles mapped read-only, one copy), or
      `backend="ray"` (`address` of a cluster; none starts a local one).
    - `storage`: a journal file (default studies/STRATEGY.journal) or an RDB URL. A study
      is named from what it optimises (or `study`), so running the same call again
      resumes it, and a study killed halfway completes the same trials.
    - The same arguments and `seed` give the same trials on any number of workers and on
      either backend; `batch` (trials asked at a time) is part of what TPE sees.
    - `in_process=False` runs even one job in a worker process (`jobs=1` runs in this
      process by default). The result's `workers` holds each worker's memory.
    """
    _check_not_in_worker()
    cfg = load_config() if settings is None else dict(settings)
    cls = find_strategy(strategy, cfg) if isinstance(strategy, str) else strategy
    objs = make_objectives(objective)
    cons = make_constraints(constraints)
    space = build_space(cls, ranges, params, where)
    method = _method(method, len(objs))
    _check_run(jobs, backend, batch, trials, seed)
    if jobs > batch and method not in PLANNED:
        log.warning("--jobs %d is more than --batch %d: at most %d trials run at a time (a "
                    "batch is asked whole once the one before is told); give --batch %d or "
                    "more to use every worker",
                    jobs, batch, batch, jobs)
        jobs = batch
    _check_inputs(cash, study, data_dir)
    config = config if config is not None else SimConfig(seed=seed)
    series, timeline, used = _candles(cls, data, stop, data_dir, config.gaps)
    markets = dict(markets) if markets is not None else markets_for(cls.exchange, cfg, data_dir)
    folds = _folds(timeline, start, stop, split, walk_forward, train, anchored)
    points = tuple(space.grid_points()) if method == "grid" else ()
    total = _total(method, points, trials)
    local = backend == "local" and ((jobs == 1 and in_process is not False) or bool(in_process))
    ctx = Context(None if local else StrategyRef.of(cls), markets, config, cash, cfg, objs)
    storage = str(storage or project_dir() / "studies" / f"{cls.__name__}.journal")
    base = {"strategy": cls.__name__, "method": method, "space": space.signature(),
            "objectives": [[o.name, o.direction] for o in objs],
            "constraints": [c.text for c in cons], "seed": seed, "batch": batch, "total": total,
            "config": _config_sig(config), "cash": cash, "data": _fingerprint(series)}
    with study_lock(storage), _pool(ctx, cls, series, jobs, backend, address, local) as pool:
        store, sync = open_storage(storage)
        results = []
        for fold in folds:
            plan = Plan(method, space, total, batch, seed, fold.train, objs, cons, points)
            sig, digest = signature_of({**base, "window": [fold.train.start, fold.train.stop]})
            name = (study or f"{cls.__name__}-{method}-{digest}") + \
                (f"-fold{fold.index}" if len(folds) > 1 else "")
            s = load_study(store, name, plan, sig)
            bar = progress_bar(progress, total, finished(s), name)
            try:
                run_study(s, plan, pool, bar, sync)
            finally:
                if bar is not None:
                    bar.close()
            results.append(_fold_result(fold, name, s, plan, pool))
        workers = pool.memory()
    return OptimizeResult(cls.__name__, method, objs, tuple(space.names), dict(space.fixed),
                          results, storage, workers, cons, data=used)


def _check_not_in_worker() -> None:
    """A worker process imports the script that started it; a script calling optimize at
    its top level would start a study in every worker."""
    import multiprocessing
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigError("optimize() was called while a worker process was starting: the "
                          "worker imports the script that calls it; call it under "
                          "`if __name__ == '__main__':`")


def _method(method: str | None, n_objectives: int) -> str:
    if method is None:
        return "nsga2" if n_objectives > 1 else "tpe"
    if method not in METHODS:
        raise ConfigError(f"method {method!r} is not one of {', '.join(METHODS)}")
    return method


def _check_run(jobs: Any, backend: str, batch: Any, trials: Any, seed: Any) -> None:
    for name, v, low in (("jobs", jobs, 1), ("batch", batch, 1), ("seed", seed, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ConfigError(f"{name} must be an int >= {low}, got {v!r}")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool)
                               or trials < 1):
        raise ConfigError(f"trials must be an int >= 1, got {trials!r}")
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend {backend!r} is not 'local' or 'ray'")


def _check_inputs(cash: Any, study: Any, data_dir: Any) -> None:
    if cash is not None and (not isinstance(cash, (int, float)) or isinstance(cash, bool)
                             or not math.isfinite(cash) or cash <= 0):
        raise ConfigError(f"--cash must be a positive number, got {cash!r}")
    if study is not None and not isinstance(study, str):
        raise ConfigError(f"--study must be a name, got {study!r}")
    if study is not None and not study.strip():
        raise ConfigError("--study must not be empty")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"--data-dir {data_dir}: no such directory")


def _total(method: str, points: Sequence[Any], trials: int | None) -> int:
    if method == "grid":
        return len(points) if trials is None else min(trials, len(points))
    return 100 if trials is None else trials


def _candles(cls: type[Strategy], data: Mapping[str, Any] | None, stop: int | None,
             data_dir: Any, gaps: str) -> tuple[dict[str, OHLCV], np.ndarray, DataUsed]:
    """The universe's candles, aligned once on one timeline, so trials copy nothing; and
    what data they are."""
    series, sources = load_universe(cls.exchange, cls.timeframe, list(cls.universe), data,
                                    data_dir, stop)
    timeline, aligned = align(series, cls.timeframe, gaps)
    used = DataUsed.of(sources, gaps, series, timeline, timeframe_ms(cls.timeframe))
    return aligned, timeline, used


def _folds(timeline: np.ndarray, start: int | None, stop: int | None, split: float | None,
           walk: int | None, train: float, anchored: bool) -> list[splits.Fold]:
    if split is not None and walk is not None:
        raise ConfigError("give either a train/test split or walk-forward folds, not both")
    if split is None and walk is None:
        return splits.whole(start, stop)
    first = int(np.searchsorted(timeline, start, "left")) if start is not None else 0
    if walk is None:
        return splits.walk_forward(timeline, first, 1, split, anchored)  # type: ignore[arg-type]
    return splits.walk_forward(timeline, first, walk, train, anchored)


@contextlib.contextmanager
def _pool(ctx: Context, cls: type, series: Mapping[str, OHLCV], jobs: int, backend: str,
          address: str | None, local: bool) -> Any:
    if backend == "ray":
        from .on_ray import RayPool
        pool: Any = RayPool(ctx, series, address, jobs)
    elif local:
        pool = InProcess(ctx, cls, series)
    else:
        pool = LocalPool(ctx, series, jobs)
    try:
        yield pool
    except BaseException:  # Ctrl-C, an error: do not wait for trials in flight
        pool.abort()
        raise
    finally:
        pool.close()


def _fold_result(fold: splits.Fold, name: str, study: Any, plan: Plan, pool: Any) -> FoldResult:
    rows = as_rows(study, plan)
    best = select(rows, plan.objectives)
    oos = []
    if fold.test is not None and best:
        tasks = [Task(b["number"], plan.space.full(b["params"]), fold.test.start, fold.test.stop)
                 for b in best]
        oos = sorted(pool.run(tasks), key=lambda r: r["number"])
        failed = [r for r in oos if "error" in r]
        if failed:
            raise trial_error(name, fold.test, tasks, failed, out_of_sample=True)
    return FoldResult(fold.index, name, fold.train, fold.test, rows, best, oos)


def _config_sig(config: SimConfig) -> dict[str, Any]:
    import attrs
    return attrs.asdict(config)


def _fingerprint(series: Mapping[str, OHLCV]) -> dict[str, Any]:
    """Enough of the candles to tell a study run on other data."""
    return {sym: [len(o), int(o.timestamp[0]), int(o.timestamp[-1]),
                  float(np.sum(o.close)), float(np.sum(o.volume))]
            for sym, o in series.items()}
