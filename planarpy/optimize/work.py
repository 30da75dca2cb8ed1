"""Running trials: one backtest per trial, in this process or in local worker processes.

Worker processes are started with `spawn` (safe beside threads, the same on every OS).
The market data is written once to a file that every worker maps read-only
(`numpy.memmap`), so N workers share one copy in the page cache instead of holding N.
The strategy class travels by reference (module and name, or its file), since strategies
loaded from a file are not importable by name in another process.
"""

from __future__ import annotations

import atexit
import collections
import importlib
import json
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import attrs
import numpy as np

from ..actions import Mode
from ..core.errors import ConfigError, PlanarError
from ..data.ohlcv import COLUMNS, OHLCV
from ..loader import load_module
from ..modes.sim import SimConfig, backtest
from .objectives import Objective


@attrs.frozen(slots=True)
class StrategyRef:
    """Where a strategy class can be found again in another process."""

    module: str
    qualname: str
    file: str | None

    @classmethod
    def of(cls, strategy: type) -> "StrategyRef":
        module = sys.modules.get(strategy.__module__)
        file = getattr(module, "__file__", None)
        ref = cls(strategy.__module__, strategy.__qualname__,
                  str(Path(file).resolve()) if file else None)
        try:
            found = ref.resolve() if "<locals>" not in strategy.__qualname__ else None
        except (AttributeError, ImportError, PlanarError):
            found = None
        if found is not strategy:
            raise ConfigError(f"{strategy.__name__} cannot be found again by another process "
                              "(it was made inside a function, or renamed); define it at the "
                              "top level of a module or a strategy file")
        return ref

    def resolve(self) -> type:
        """The class, importing its module (or loading its file) if need be."""
        module = sys.modules.get(self.module)
        if module is None or not _has(module, self.qualname):
            try:
                module = importlib.import_module(self.module)
            except ImportError:
                module = None
            if module is None or not _has(module, self.qualname):
                module = self._load_file()
        obj: Any = module
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def _load_file(self) -> Any:
        if not self.file:
            raise ConfigError(f"cannot import {self.module} to find {self.qualname}")
        name = self.module if self.module != "__main__" else "planarpy_main_" + Path(self.file).stem
        if name in sys.modules and _has(sys.modules[name], self.qualname):
            return sys.modules[name]
        return load_module(self.file, name)


def _has(module: Any, qualname: str) -> bool:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return True


@attrs.frozen(slots=True)
class Context:
    """Everything a trial needs besides its parameters and window; built once per worker."""

    strategy: StrategyRef | None  # None: the class is at hand (in this process)
    markets: Mapping[str, Any]
    config: SimConfig
    cash: float | None
    settings: Mapping[str, Any]
    objectives: tuple[Objective, ...]


@attrs.frozen(slots=True)
class Task:
    """One trial: its number, the strategy's parameter values, the candle window, and
    whether it runs the sim's look-ahead check (when the config asks for it at all)."""

    number: int
    params: Mapping[str, Any]
    start: int | None
    stop: int | None
    check_lookahead: bool = True


class TrialError(PlanarError):
    """Trials of a study raised, or their worker process died: the study stopped. The
    finished trials are kept; the failed ones stay open and run again on resume."""


def evaluate(ctx: Context, cls: type, data: Mapping[str, OHLCV], task: Task) -> dict[str, Any]:
    """Backtest one trial; its summary, objective values, wall and CPU time (seconds), and
    where it ran."""
    t, cpu = time.perf_counter(), time.thread_time()
    s = cls(ctx.markets, mode=Mode.SIM, cash=ctx.cash, params=task.params)
    config = ctx.config
    if config.check_lookahead and not task.check_lookahead:
        config = attrs.evolve(config, check_lookahead=False)
    r = backtest(s, data=data, start=task.start, stop=task.stop, config=config,
                 settings=ctx.settings)
    summary = r.summary()
    summary.pop("data", None)  # the same for every trial: the result holds it once
    values = [o.value(r, summary) for o in ctx.objectives]
    return {"number": task.number, "summary": summary, "values": values,
            "seconds": time.perf_counter() - t, "cpu": time.thread_time() - cpu,
            "pid": os.getpid()}


def attempt(ctx: Context, cls: type, data: Mapping[str, OHLCV], task: Task) -> dict[str, Any]:
    """`evaluate`, or what went wrong as text (`error`, and the `traceback` of an exception
    that is not planarpy's own), so the driver can name the trial and keep the others."""
    try:
        return evaluate(ctx, cls, data, task)
    except Exception as e:
        return failure(task, f"{type(e).__name__}: {e}",
                       None if isinstance(e, PlanarError) else
                       "".join(traceback.format_exception(e)).rstrip(), os.getpid())


def failure(task: Task, error: str, trace: str | None = None,
            pid: int | None = None) -> dict[str, Any]:
    return {"number": task.number, "error": error, "traceback": trace, "pid": pid}


class Pool:
    """Where trials run: `submit` hands it tasks, `collect` waits for the next ones to
    finish and returns their results (at least one), `pending` counts those handed and not
    yet collected. The driver keeps it fed while it tells finished trials."""

    jobs = 1

    @property
    def pending(self) -> int:
        raise NotImplementedError

    def submit(self, tasks: Iterable[Task]) -> None:
        raise NotImplementedError

    def collect(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def run(self, tasks: Iterable[Task]) -> Iterator[dict[str, Any]]:
        """Results of `tasks` (and of any handed before) as they finish."""
        self.submit(tasks)
        while self.pending:
            yield from self.collect()


class InProcess(Pool):
    """Trials one after the other in this process (`jobs=1`): no copies, no start-up."""

    def __init__(self, ctx: Context, cls: type, data: Mapping[str, OHLCV]) -> None:
        self.ctx, self.data, self.cls = ctx, data, cls
        self.queue: collections.deque[Task] = collections.deque()

    @property
    def pending(self) -> int:
        return len(self.queue)

    def submit(self, tasks: Iterable[Task]) -> None:
        self.queue.extend(tasks)

    def collect(self) -> list[dict[str, Any]]:
        return [attempt(self.ctx, self.cls, self.data, self.queue.popleft())]

    def memory(self) -> list[dict[str, Any]]:
        return [memory_of(os.getpid())]

    def abort(self) -> None:
        self.queue.clear()

    def close(self) -> None:
        pass


# ---- shared, read-only market data -------------------------------------------------------
class SharedData:
    """Candles written once to a file that workers map read-only."""

    def __init__(self, data: Mapping[str, OHLCV], directory: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="planarpy-optimize-", dir=directory)
        self.path = os.path.join(self.dir, "candles.bin")
        self.layout: dict[str, dict[str, list[Any]]] = {}
        try:
            self.nbytes = self._write(data)
        except OSError as e:
            self.close()
            raise ConfigError(f"cannot write the candles for the worker processes to "
                              f"{self.dir}: {e.strerror or e}; give TMPDIR a directory with "
                              "room for them, or run with jobs=1") from None

    def _write(self, data: Mapping[str, OHLCV]) -> int:
        offset = 0
        with open(self.path, "wb") as f:
            for sym, o in data.items():
                cols = {}
                for c in COLUMNS:
                    a = np.ascontiguousarray(getattr(o, c))
                    f.write(a.tobytes())
                    cols[c] = [offset, a.dtype.str, len(a)]
                    offset += a.nbytes
                self.layout[sym] = cols
        return offset

    @property
    def handle(self) -> tuple[str, str]:
        return self.path, json.dumps(self.layout)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def attach(handle: tuple[str, str]) -> dict[str, OHLCV]:
    """The candles of a SharedData file as read-only arrays mapped from it."""
    path, layout = handle[0], json.loads(handle[1])
    if os.path.getsize(path) == 0:
        return {sym: OHLCV(*(np.empty(0, dtype=c[1]) for c in cols.values()))
                for sym, cols in layout.items()}
    mm = np.memmap(path, mode="r")
    return {sym: OHLCV(*(mm[off:off + n * np.dtype(dt).itemsize].view(dt)
                         for off, dt, n in (cols[c] for c in COLUMNS)))
            for sym, cols in layout.items()}


# ---- local worker processes ---------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(ctx: Context, handle: tuple[str, str]) -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    atexit.register(_exit_now)
    _WORKER.update(ctx=ctx, cls=ctx.strategy.resolve(), data=attach(handle))  # type: ignore[union-attr]


def _exit_now() -> None:
    """End a worker without tearing its interpreter down (0.2-0.4 s of freeing modules
    with planarpy and pandas loaded, which the driver waits for at the end of a study):
    by then it has sent its last result and flushed stdout and stderr (multiprocessing
    does); it holds no data of its own, and its log handlers are closed here."""
    logging.shutdown()
    os._exit(0)


def _work(task: Task) -> dict[str, Any]:
    return attempt(_WORKER["ctx"], _WORKER["cls"], _WORKER["data"], task)


class LocalPool(Pool):
    """`jobs` worker processes on this machine sharing one mapped copy of the candles. Each
    worker takes the next trial as soon as it is done with one (the pool queues one ahead
    for each), so none waits while another still runs."""

    def __init__(self, ctx: Context, data: Mapping[str, OHLCV], jobs: int) -> None:
        _check_sendable(ctx)
        self.shared = SharedData(data)
        self.jobs = jobs
        self.aborted = False
        self.pids: set[int] = set()
        self.futures: dict[Future, Task] = {}
        self.pool = ProcessPoolExecutor(jobs, mp_context=_QuietSpawn(), initializer=_init_worker,
                                        initargs=(ctx, self.shared.handle))
        for _ in range(jobs):  # start them all now, while the driver opens the study
            self.pool.submit(os.getpid)

    @property
    def pending(self) -> int:
        return len(self.futures)

    def submit(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self.futures[self.pool.submit(_work, task)] = task

    def collect(self) -> list[dict[str, Any]]:
        """The trials finished now (not in submission order), waiting for one at least.
        Those left pending when the caller stops early (Ctrl-C, an error) are its to
        abort: cancelling them here as well makes Python 3.11's pool fail in its own
        thread."""
        done, _ = wait(self.futures, return_when=FIRST_COMPLETED)
        outs = []
        for f in sorted(done, key=lambda f: self.futures[f].number):
            task = self.futures.pop(f)
            try:
                out = f.result()
            except BrokenProcessPool:
                out = failure(task, self._death())
            if out["pid"] is not None:
                self.pids.add(out["pid"])
            outs.append(out)
        return outs

    def memory(self) -> list[dict[str, Any]]:
        """Memory of each worker process now (Linux: from /proc)."""
        return [memory_of(pid) for pid in sorted(self.pids)]

    def _death(self) -> str:
        if not self.pids:  # none ever finished a trial
            return ("the worker processes died while starting (see their error above; a "
                    "script that calls optimize with jobs > 1 must call it under "
                    "`if __name__ == '__main__':`)")
        return ("a worker process died while this trial or another was running (killed, "
                "out of memory, or exited)")

    def abort(self) -> None:
        """Stop the workers now (Ctrl-C, an error): their trials are open, not lost."""
        self.aborted = True
        for process in list((getattr(self.pool, "_processes", None) or {}).values()):
            process.terminate()

    def close(self) -> None:
        # after an abort the pool fails its pending trials itself (a race if we cancel too)
        self.pool.shutdown(wait=True, cancel_futures=not self.aborted)
        self.shared.close()


class _QuietProcess(multiprocessing.context.SpawnProcess):
    """A worker born with SIGINT blocked: Ctrl-C goes to the whole process group, and the
    driver alone answers it (stops the workers, says so once); a worker would print a
    KeyboardInterrupt traceback from wherever it was, and break the pool."""

    def start(self) -> None:
        if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
            super().start()
            return
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # inherited
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _QuietSpawn(multiprocessing.context.SpawnContext):
    Process = _QuietProcess


def _check_sendable(ctx: Context) -> None:
    """Fail early, and clearly, when an objective or constraint cannot go to a worker."""
    from multiprocessing.reduction import ForkingPickler
    try:
        ForkingPickler.dumps(ctx)
    except Exception as e:
        raise ConfigError(f"the optimisation cannot be sent to worker processes ({e}); "
                          "define objective functions at the top level of a module, or "
                          "run with jobs=1") from None


def memory_of(pid: int) -> dict[str, Any]:
    """A process's memory in bytes: resident, proportional, private (USS) and shared, and
    its peak resident size; what /proc does not offer is None."""
    out: dict[str, Any] = {"pid": pid, "rss": None, "pss": None, "private": None,
                           "shared": None, "peak_rss": None}
    try:
        fields = {}
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        out.update(rss=fields.get("Rss"), pss=fields.get("Pss"),
                   private=fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
                   shared=fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0))
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["peak_rss"] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        if pid == os.getpid():
            scale = 1 if sys.platform == "darwin" else 1024
            out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return out
