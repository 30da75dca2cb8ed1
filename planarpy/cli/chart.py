"""`planarpy chart TRACE --strategy S`: an interactive chart of a recorded run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import load_config
from .sim import parse_data


def register(sub: Any) -> None:
    p = sub.add_parser("chart", help="chart a recorded run (sim --record, paper, live)",
                       description="Write an interactive HTML chart of one run of an EventTrace: "
                                   "candles, indicators, fills, positions, equity, drawdown.")
    p.add_argument("trace", help="trace directory")
    p.add_argument("--strategy", required=True, help="strategy name or path")
    p.add_argument("--run", default="last", help="run id (default: the last run)")
    p.add_argument("-o", "--out", default="run.html", help="HTML file (default run.html)")
    p.add_argument("--indicator", action="append", metavar="NAME",
                   help="indicator of ai.ind to draw (repeatable; default: price-scale ones)")
    p.add_argument("--data", action="append", default=[], metavar="SYMBOL=CSV",
                   help="candles of one market from a CSV (repeatable)")
    p.add_argument("--data-dir", help="OHLCV store directory (default user/data)")
    p.add_argument("--config", help="config file (default user/planar.toml)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..charts import chart_trace
    from ..core.errors import ConfigError
    if not args.out.lower().endswith((".html", ".htm")):
        raise ConfigError(f"-o {args.out}: the chart is an HTML page; give a file name ending "
                          "in .html")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir {args.data_dir}: no such directory")
    run_id: Any = args.run
    if run_id != "last":
        if not run_id.isdigit():
            raise ConfigError(f"--run takes a run id (a whole number) or 'last', got {run_id!r}")
        run_id = int(run_id)
    c = chart_trace(args.trace, args.strategy, run=run_id, indicators=args.indicator,
                    data=parse_data(args.data), settings=load_config(args.config),
                    data_dir=args.data_dir)
    print(f"chart written to {c.save(args.out)}")
    return 0
