"""Parameter optimisation: planarpy's `optimize` against backtesting.py's `Backtest.optimize`.

One long-only SMA(fast/slow) cross (tests/kit/paritykit.py: the same trades on both
sides, tests/parity checks it) on one random walk of one-minute candles, one grid of 100
points (fast 2..20 step 2, slow 30..300 step 30), maximising the return. Prints:

1. both optimisers on one core: the best parameters of each, and the speed ratio;
2. trials per second on 1 and on 2 local worker processes (start-up included), beside what
   a bare CPU loop gets from 2 processes on this machine at the same time (its ceiling),
   with how busy the workers are and CPU-time figures that a busy machine disturbs less;
3. the cost of a trial in `optimize` over one bare backtest run in a plain loop;
4. memory of each worker on a larger data set: the candles are mapped read-only from one
   file, so workers share one copy (private vs shared pages, from /proc).

Times are wall-clock and, for what runs in one process (1 and 3), also this process's CPU
time: on a machine shared with other work, CPU time is the fairer figure there (wall time
counts the waits for a core). Figures only; nothing is asserted.
Run: python bench/optimize.py [--candles N]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing.dummy
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "kit"))
sys.path.insert(0, str(HERE))

from compare import CASH, COMMISSION, MARKET, random_walk  # noqa: E402
from paritykit import PlanarSmaCross, bt_strategy, to_frame  # noqa: E402

from planarpy import Param, backtest  # noqa: E402
from planarpy.modes.sim import SimConfig  # noqa: E402
from planarpy.optimize import optimize  # noqa: E402

FASTS = list(range(2, 22, 2))
SLOWS = list(range(30, 330, 30))
# no look-ahead check: backtesting.py makes none, so both sides do the same work (optimize
# checks the first trial of each batch by default; a bare backtest checks every run)
CONFIG = SimConfig(slippage=0.0, volume_cap=False, maker=COMMISSION, taker=COMMISSION,
                   check_lookahead=False)
MIB = 1 << 20


class BenchCross(PlanarSmaCross):
    """The parity SMA cross with its two lengths as parameters."""

    exchange = "parity"
    quote = MARKET.quote
    universe = (MARKET.symbol,)
    initial_cash = CASH
    commission = COMMISSION
    fast = Param(10, low=2, high=500)
    slow = Param(30, low=2, high=500)

    def warmup_period(self) -> int:
        return self.slow


class Clock:
    """Wall time and this process's CPU time (threads included) since it was made: on a
    machine shared with other work, CPU time is the fairer figure of one process."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def planar_grid(data: Any, jobs: int = 1,
                in_process: bool | None = None) -> tuple[tuple[float, float], Any]:
    """optimize's 100-point grid: (wall, CPU) seconds, and the result."""
    with tempfile.TemporaryDirectory() as d:
        clock = Clock()
        r = optimize(BenchCross, method="grid", objective="return", ranges={"fast": FASTS,
                     "slow": SLOWS}, data={MARKET.symbol: data}, markets={MARKET.symbol: MARKET},
                     config=CONFIG, settings={}, storage=Path(d) / "s.journal", jobs=jobs,
                     in_process=in_process)
        return clock.read(), r


def bare_runs(data: Any) -> tuple[float, float]:
    """The same 100 backtests in a plain loop: build, run, summarise; (wall, CPU) seconds."""
    clock = Clock()
    for fast in FASTS:
        for slow in SLOWS:
            s = BenchCross({MARKET.symbol: MARKET}, params={"fast": fast, "slow": slow})
            backtest(s, data={MARKET.symbol: data}, config=CONFIG, settings={}).summary()
    return clock.read()


def bt_grid(data: Any) -> tuple[tuple[float, float], tuple[int, int]]:
    """backtesting.py's grid optimisation on one core (its Pool swapped for one thread)."""
    import backtesting
    from backtesting import Backtest
    backtesting.Pool = lambda processes=None, initializer=None, initargs=(): \
        multiprocessing.dummy.Pool(1, initializer, initargs)
    bt = Backtest(to_frame(data), bt_strategy(), cash=CASH, commission=COMMISSION,
                  trade_on_close=False, exclusive_orders=False, finalize_trades=False)
    clock = Clock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.optimize(n1=FASTS, n2=SLOWS, maximize="Return [%]")
    return clock.read(), (stats._strategy.n1, stats._strategy.n2)


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def ceiling() -> float:
    """What the machine gives right now: a pure-Python loop on 2 processes over 1."""
    import multiprocessing
    rates = []
    for k in (1, 2):
        with multiprocessing.get_context("spawn").Pool(k) as pool:
            pool.map(spin, [10] * k)
            t = time.perf_counter()
            pool.map(spin, [2_000_000] * 8, chunksize=1)
            rates.append(8 / (time.perf_counter() - t))
    return rates[1] / rates[0]


@dataclasses.dataclass
class Parallel:
    """One run of the grid on `jobs` worker processes, start-up included."""

    jobs: int
    wall: float
    driver_cpu: float  # the driver process: asks, tells, storage, its pool threads
    worker_cpu: float  # the worker processes, start to exit
    trial_wall: float  # the trials' own wall time, summed (each trial times itself)
    trial_cpu: float  # and their CPU time

    @classmethod
    def measure(cls, data: Any, jobs: int) -> "Parallel":
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        (wall, cpu), r = planar_grid(data, jobs=jobs, in_process=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers have exited
        worker = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        return cls(jobs, wall, cpu, worker, sum(t["seconds"] for t in r.trials),
                   sum(t["cpu"] for t in r.trials))

    @property
    def busy(self) -> float:
        """The share of the workers' wall time spent in trials."""
        return self.trial_wall / (self.jobs * self.wall)

    @property
    def outside(self) -> float:
        """CPU seconds of each worker outside its trials: start-up (imports), exit."""
        return (self.worker_cpu - self.trial_cpu) / self.jobs

    def model(self, cores: int) -> float:
        """The wall time on `cores` free cores if no process ever waited: a worker's
        start-up and exit, then its share of the trials' CPU time, and of the driver's when
        the workers take every core."""
        driver = self.driver_cpu if self.jobs >= cores else 0.0
        return self.outside + (self.trial_cpu + driver) / self.jobs


def parallel(data: Any, rounds: int) -> None:
    """Section 2: 1 and 2 worker processes, and the bare loop's ceiling, interleaved in
    rounds so a busy spell of the machine hits all three alike; best of the rounds."""
    runs: dict[int, list[Parallel]] = {1: [], 2: []}
    ceilings = []
    for _ in range(rounds):
        ceilings.append(ceiling())
        for jobs in (1, 2):
            runs[jobs].append(Parallel.measure(data, jobs))
    one, two = (min(runs[j], key=lambda p: p.wall) for j in (1, 2))
    ratio, top = one.wall / two.wall, max(ceilings)
    n = len(FASTS) * len(SLOWS)
    print(f"\n2. 1 -> 2 worker processes, {len(data):,} candles, start-up included (best of "
          f"{rounds} rounds): {ratio:.2f}x ({n / one.wall:.1f} -> {n / two.wall:.1f} trials/s); "
          f"a bare CPU loop gets {top:.2f}x from 2 processes on this machine now (best of the "
          f"rounds; per round {', '.join(f'{c:.2f}' for c in ceilings)}): {ratio / top:.2f} of "
          f"that ceiling; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"   per round: 1 worker {', '.join(f'{p.wall:.2f}' for p in runs[1])} s, 2 workers "
          f"{', '.join(f'{p.wall:.2f}' for p in runs[2])} s wall; ratio "
          f"{', '.join(f'{a.wall / b.wall:.2f}' for a, b in zip(runs[1], runs[2]))}")
    print(f"   workers busy with trials (best runs): {one.busy * 100:.0f}% (1) and "
          f"{two.busy * 100:.0f}% (2) of the wall time; the rest is start-up, exit and waits")
    print(f"   CPU per trial: {one.trial_cpu / n * 1000:.1f} ms (1 worker), "
          f"{two.trial_cpu / n * 1000:.1f} ms (2 workers); each worker outside its trials "
          f"(start-up, imports, exit): {one.outside:.2f} s (1), {two.outside:.2f} s (2); the "
          f"driver: {one.driver_cpu / n * 1000:.2f} ms (1), {two.driver_cpu / n * 1000:.2f} ms "
          f"(2) a trial")
    cores = os.cpu_count() or 2
    m1, m2 = one.model(cores), two.model(cores)
    print(f"   CPU model ({cores} free cores, no waits; the driver takes its CPU from the "
          f"workers' cores when they fill them): {m1:.2f} s and {m2:.2f} s: {m1 / m2:.2f}x")


def own_copy_run(candles: int) -> dict[str, Any]:
    """In a fresh process: its own copy of the candles and one backtest; its memory."""
    from planarpy.optimize.work import memory_of
    data = random_walk(candles, seed=2)
    s = BenchCross({MARKET.symbol: MARKET}, params={"fast": 10, "slow": 30})
    backtest(s, data={MARKET.symbol: data}, config=CONFIG, settings={}).summary()
    return memory_of(os.getpid())


def memory(candles: int, jobs: int) -> None:
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        own = pool.apply(own_copy_run, (candles,))
    data = random_walk(candles, seed=2)
    size = len(data) * 48  # six 8-byte columns
    with tempfile.TemporaryDirectory() as d:
        r = optimize(BenchCross, method="grid", objective="return",
                     ranges={"fast": [10, 20], "slow": [30, 60]}, data={MARKET.symbol: data},
                     markets={MARKET.symbol: MARKET}, config=CONFIG, settings={},
                     storage=Path(d) / "s.journal", jobs=jobs)
    print(f"\n4. memory per worker, {jobs} workers, {candles:,} candles "
          f"({size / MIB:.1f} MiB of candles, mapped once):")
    print(f"{'pid':>8}{'peak RSS':>11}{'RSS':>9}{'private':>10}{'shared':>9}{'PSS':>9}   MiB")
    for w in r.workers:
        cells = [w.get(k) for k in ("peak_rss", "rss", "private", "shared", "pss")]
        print(f"{w['pid']:>8}" + "".join(f"{(c or 0) / MIB:>{n}.1f}"
                                         for c, n in zip(cells, (11, 9, 10, 9, 9))))
    print(f"{'own copy':>8}" + "".join(
        f"{(own.get(k) or 0) / MIB:>{n}.1f}"
        for k, n in zip(("peak_rss", "rss", "private", "shared", "pss"), (11, 9, 10, 9, 9))))
    print("   (private: pages of this worker alone; the candles are in `shared`, one copy in the "
          "page cache however many workers map them. 'own copy': a process that makes its own "
          "candles and runs one backtest. The rest of a worker's private memory is the sim's "
          "working set of one run, the same in any process.)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=20_000, help="candles of the grid runs")
    ap.add_argument("--parallel-candles", type=int, default=100_000,
                    help="candles of the 1-vs-2-worker runs (longer trials: start-up matters less)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of the 1-vs-2-worker runs and the bare loop (best of them)")
    ap.add_argument("--memory-candles", type=int, default=1_000_000)
    ap.add_argument("--skip-peer", action="store_true", help="do not run backtesting.py")
    args = ap.parse_args()
    data = random_walk(args.candles)
    warm = random_walk(2_000)
    planar_grid(warm), bare_runs(warm)  # imports and caches, not timed
    n = len(FASTS) * len(SLOWS)
    print(f"python {sys.version.split()[0]}; long-only SMA cross, grid of {n} points "
          f"(fast {FASTS[0]}..{FASTS[-1]}, slow {SLOWS[0]}..{SLOWS[-1]}), maximise the return, "
          f"{args.candles:,} random-walk 1m candles; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    runs = [planar_grid(data) for _ in range(3)]
    p_wall, p_cpu = min(t[0] for t, _ in runs), min(t[1] for t, _ in runs)
    r = runs[0][1]
    best = (r.best_params["fast"], r.best_params["slow"])
    print(f"\n1. one core: planarpy optimize {p_wall:.2f} s wall, {p_cpu:.2f} s CPU (best of 3) "
          f"({n / p_wall:.1f} trials/s), best fast={best[0]} slow={best[1]}")
    if not args.skip_peer:
        (b_wall, b_cpu), b_best = bt_grid(data)
        same = "the same best parameters" if b_best == best else "OTHER best parameters"
        print(f"   backtesting.py Backtest.optimize {b_wall:.2f} s wall, {b_cpu:.2f} s CPU "
              f"({n / b_wall:.1f} trials/s), best n1={b_best[0]} n2={b_best[1]}: {same}; "
              f"planarpy is {b_wall / p_wall:.1f}x faster ({b_cpu / p_cpu:.1f}x in CPU time)")
    parallel(random_walk(args.parallel_candles), args.rounds)
    opt, bare = [], []
    for _ in range(3):  # interleaved, so a busy spell of the machine hits both alike
        opt.append(planar_grid(data)[0])
        bare.append(bare_runs(data))
    o_wall, o_cpu = min(t[0] for t in opt), min(t[1] for t in opt)
    b_wall, b_cpu = min(t[0] for t in bare), min(t[1] for t in bare)
    print(f"\n3. per trial (best of 3): optimize {o_wall / n * 1000:.1f} ms wall, "
          f"{o_cpu / n * 1000:.1f} ms CPU; a bare backtest in a loop {b_wall / n * 1000:.1f} ms "
          f"wall, {b_cpu / n * 1000:.1f} ms CPU: overhead {o_wall / b_wall:.3f}x wall, "
          f"{o_cpu / b_cpu:.3f}x CPU")
    memory(args.memory_candles, 2)


if __name__ == "__main__":
    main()
