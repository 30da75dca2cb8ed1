"""`planarpy optimize STRATEGY`: search a strategy's parameters with backtests."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import validate as V
from ..config import load_config
from ..core.errors import ConfigError
from ..loader import find_strategy
from ..params import ParamError, format_values, parse_items, specs
from .main import example
from .sim import add_run_options, parse_data, sim_config

SHARE = V.Rule("a share between 0 and 1 (exclusive), e.g. 0.7",
               lambda v: V.number(0.0, 1.0).test(v) and 0 < v < 1, float, float)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "optimize", help="search a strategy's parameters with backtests",
        description="Search the strategy's Param ranges: grid, random, TPE or NSGA-II "
                    "(several objectives: a Pareto front). The study is kept in Optuna "
                    "storage and resumes where it stopped when run again.",
        epilog=example("planarpy optimize sma_cross --method grid -r fast=5:20:5 "
                       "-r slow=20:60:20 --where 'fast < slow' --split 0.7"))
    p.add_argument("strategy", help="strategy name or path")
    p.add_argument("--method", choices=("grid", "random", "tpe", "nsga2"),
                   help="search method (default: tpe; nsga2 with several objectives)")
    p.add_argument("--trials", type=V.flag(V.count()),
                   help="trials to run (default 100; grid: all points)")
    p.add_argument("--objective", action="append", metavar="STAT[:max|min]",
                   help="summary statistic to optimise (repeatable; default sharpe)")
    p.add_argument("--constraint", action="append", default=[], metavar="'STAT OP N'",
                   help="a trial counts only if it meets this, e.g. 'trades >= 10' (repeatable)")
    p.add_argument("-r", "--range", action="append", default=[], metavar="NAME=LOW:HIGH[:STEP]",
                   help="search this range (or NAME=V1,V2,...) instead of the declared one")
    p.add_argument("--where", action="append", default=[], metavar="'A OP B'",
                   help="only points where this holds, e.g. 'fast < slow' (repeatable)")
    p.add_argument("--split", type=V.flag(SHARE), metavar="TRAIN",
                   help="train/test split: the train share, e.g. 0.7")
    p.add_argument("--walk-forward", type=V.flag(V.count()), metavar="FOLDS",
                   help="walk-forward folds")
    p.add_argument("--train", type=V.flag(SHARE),
                   help="walk-forward train share of each fold (default 0.75)")
    p.add_argument("--anchored", action="store_true", help="walk-forward: train from the start")
    p.add_argument("--jobs", type=V.flag(V.count()), default=1,
                   help="worker processes (default 1)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="where the trials run (ray: pip install 'planarpy[ray]')")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    p.add_argument("--batch", type=V.flag(V.count()), default=16,
                   help="trials asked at a time (default 16)")
    p.add_argument("--storage", metavar="FILE|URL",
                   help="journal file or RDB URL (default studies/STRATEGY.journal)")
    p.add_argument("--study", help="study name (default: made from what is optimised)")
    p.add_argument("--top", type=V.flag(V.count()), default=10,
                   help="trials shown (default 10)")
    p.add_argument("--csv", metavar="FILE", type=V.flag(V.out_file(".csv")),
                   help="write every trial to this CSV file")
    p.add_argument("--plot", metavar="HTML", type=V.flag(V.out_file(".html", ".htm")),
                   help="heatmap (two parameters) or Pareto plot")
    p.add_argument("--json", action="store_true", help="print the best trials as JSON")
    add_run_options(p)
    p.set_defaults(func=run)


def parse_ranges(cls: type, items: list[str]) -> dict[str, str]:
    out = {}
    table = specs(cls)
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise ParamError(f"--range takes NAME=LOW:HIGH[:STEP] or NAME=V1,V2,..., got {item!r}")
        if name.strip() not in table:
            raise ParamError(f"unknown parameter {name.strip()!r} for {cls.__name__}; its "
                             f"parameters: {', '.join(table) or 'none'}")
        out[name.strip()] = text.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from ..optimize import optimize
    cfg = load_config(args.config)
    cls = find_strategy(args.strategy, cfg)
    for flag, given in (("--train", args.train is not None), ("--anchored", args.anchored)):
        if given and args.walk_forward is None:
            raise ConfigError(f"{flag} shapes the folds of --walk-forward; give --walk-forward "
                              "FOLDS (a single train/test split is --split TRAIN)")
    if args.address is not None and args.backend != "ray":
        raise ConfigError("--address is the address of a Ray cluster; it needs --backend ray")
    result = optimize(
        cls, objective=args.objective or "sharpe", method=args.method, trials=args.trials,
        ranges=parse_ranges(cls, args.range), params=parse_items(cls, args.param),
        where=args.where, constraints=args.constraint, split=args.split,
        walk_forward=args.walk_forward, train=0.75 if args.train is None else args.train,
        anchored=args.anchored,
        jobs=args.jobs, backend=args.backend, address=args.address, batch=args.batch,
        storage=args.storage, study=args.study, seed=args.seed or 0,
        data=parse_data(args.data), start=args.start, stop=args.stop, cash=args.cash,
        config=sim_config(args, cfg), settings=cfg, data_dir=args.data_dir,
        progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps([{"fold": f.index, "study": f.study,
                           "best": [{"trial": b["number"], "params": b["params"],
                                     "values": b["values"], "summary": b["summary"]}
                                    for b in f.best],
                           "out_of_sample": [{"trial": o["number"], "values": o["values"],
                                              "summary": o["summary"]}
                                             for o in f.out_of_sample]}
                          for f in result.folds], indent=2, default=str))
    else:
        print(result.table(args.top))
        print()
        print(result.report())
        best = result.best_params
        print(f"\nbest: {format_values(best) if best else 'no feasible trial'}")
        print(f"study: {result.folds[-1].study} in {result.storage}")
        for label, text in result.data.rows() if result.data is not None else ():
            print(f"{label or ''}{':' if label else ' '} {text}")
        if result.workers and (args.jobs > 1 or args.backend == "ray"):
            print(_workers(result.workers))
    if args.csv:
        result.to_csv(args.csv)
    if args.plot:
        _plot(result, args.plot)
    return 0


def _workers(workers: list[dict[str, Any]]) -> str:
    """'workers: 2, peak memory 310/318 MiB (private 192/199 MiB)'."""
    mib = lambda v: "?" if v is None else f"{v / 2**20:.0f}"  # noqa: E731
    return (f"workers: {len(workers)}, peak memory {'/'.join(mib(w['peak_rss']) for w in workers)}"
            f" MiB (private {'/'.join(mib(w['private']) for w in workers)} MiB; the candles are "
            "mapped once, shared)")


def _plot(result: Any, path: str) -> None:
    if len(result.objectives) > 1:
        result.pareto_plot(path)
    elif len(result.names) >= 2:
        result.heatmap(path=path)
    else:
        raise ConfigError("--plot needs two searched parameters (a heatmap) or two "
                          "objectives (a Pareto plot)")
