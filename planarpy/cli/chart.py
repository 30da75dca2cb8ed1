"""`planarpy chart TRACE --strategy S`: an interactive chart of a recorded run."""

from __future__ import annotations

import argparse
from typing import Any

from .. import validate as V
from ..config import load_config
from .main import example
from .sim import parse_data
from .trace import run_arg


def register(sub: Any) -> None:
    p = sub.add_parser("chart", help="chart a recorded run (sim --record, paper, live)",
                       description="Write an interactive HTML chart of one run of an EventTrace: "
                                   "candles, indicators, fills, positions, equity, drawdown.",
                       epilog=example("planarpy chart traces/SmaCross/binance --strategy "
                                      "sma_cross -o run.html"))
    p.add_argument("trace", help="trace directory")
    p.add_argument("--strategy", required=True, help="strategy name or path")
    p.add_argument("--run", default="last", type=run_arg, help="run id (default: the last run)")
    p.add_argument("-o", "--out", default="run.html", type=V.flag(V.out_file(".html", ".htm")),
                   help="HTML file (default run.html)")
    p.add_argument("--indicator", action="append", metavar="NAME",
                   help="indicator of ai.ind to draw (repeatable; default: price-scale ones)")
    p.add_argument("--data", action="append", default=[], metavar="SYMBOL=CSV",
                   help="candles of one market from a CSV (repeatable)")
    p.add_argument("--data-dir", type=V.flag(V.existing_dir()), metavar="DIR",
                   help="OHLCV store directory (default user/data)")
    p.add_argument("--config", help="config file (default user/planar.toml)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..charts import chart_trace
    c = chart_trace(args.trace, args.strategy, run=args.run, indicators=args.indicator,
                    data=parse_data(args.data), settings=load_config(args.config),
                    data_dir=args.data_dir)
    print(f"chart written to {c.save(args.out)}")
    return 0
