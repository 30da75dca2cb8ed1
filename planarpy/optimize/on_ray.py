"""Running trials on a Ray cluster (the optional `ray` extra).

The candles go to Ray's object store once (`ray.put`); every task reads them from there
without a copy, as numpy arrays in shared memory. A cluster started here (no address) is
shut down at the end; one the caller started, or reached by address, is left running.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from ..data.ohlcv import COLUMNS, OHLCV
from ..modes.sim.results import MissingExtra
from .work import Context, Pool, Task, attempt, failure, memory_of

_CLASSES: dict[Any, type] = {}  # per Ray worker process: strategy classes resolved


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtra("the ray backend needs Ray: pip install 'planarpy[ray]' "
                           "(or pip install ray)") from None
    return ray


def _run(ctx: Context, columns: Mapping[str, Mapping[str, Any]], task: Task) -> dict[str, Any]:
    cls = _CLASSES.get(ctx.strategy)
    if cls is None:
        cls = _CLASSES[ctx.strategy] = ctx.strategy.resolve()  # type: ignore[union-attr]
    data = {sym: OHLCV(*(cols[c] for c in COLUMNS)) for sym, cols in columns.items()}
    out = attempt(ctx, cls, data, task)
    out["memory"] = memory_of(os.getpid())
    return out


class RayPool(Pool):
    """Trials as Ray tasks, one CPU each."""

    def __init__(self, ctx: Context, data: Mapping[str, OHLCV], address: str | None = None,
                 jobs: int | None = None) -> None:
        ray = self.ray = _ray()
        self.owned = not ray.is_initialized()
        if self.owned:
            ray.init(address=address, num_cpus=jobs if address is None else None,
                     include_dashboard=False, log_to_driver=False)
        self.jobs = max(1, int(ray.cluster_resources().get("CPU", jobs or 1)))
        self.ctx_ref = ray.put(ctx)
        self.data_ref = ray.put({sym: {c: getattr(o, c) for c in COLUMNS}
                                 for sym, o in data.items()})
        self.remote = ray.remote(num_cpus=1)(_run)
        self.seen: dict[int, dict[str, Any]] = {}
        self.refs: dict[Any, Task] = {}

    @property
    def pending(self) -> int:
        return len(self.refs)

    def submit(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self.refs[self.remote.remote(self.ctx_ref, self.data_ref, task)] = task

    def collect(self) -> list[dict[str, Any]]:
        ray = self.ray
        done, _ = ray.wait(list(self.refs), num_returns=1)
        task = self.refs.pop(done[0])
        try:
            out = ray.get(done[0])
        except ray.exceptions.RayError as e:  # the worker died, the task was lost
            return [failure(task, f"the Ray task failed ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''})")]
        self.seen[out["pid"]] = out.pop("memory")
        return [out]

    def memory(self) -> list[dict[str, Any]]:
        """Memory of each Ray worker as its last task saw it."""
        return [self.seen[pid] for pid in sorted(self.seen)]

    def abort(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref)
        self.refs.clear()

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()
