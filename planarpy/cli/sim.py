"""`planarpy sim STRATEGY`: run a backtest and print its summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import load_config
from ..core.errors import ConfigError
from ..data.ohlcv import to_ms
from ..loader import find_strategy
from ..modes.sim import SimConfig, backtest
from ..params import parse_items
from .trace import trace_outcome


def register(sub: Any) -> None:
    p = sub.add_parser("sim", help="backtest a strategy on candles",
                       description="Backtest a strategy (a name from user/planar.toml, a file "
                                   "in strategies/, or a path to a .py file).")
    p.add_argument("strategy", help="strategy name or path")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--record", nargs="?", const="", metavar="TRACE",
                   help="record every event in an EventTrace (default traces/STRATEGY/EXCHANGE)")
    p.add_argument("--plot", metavar="FILE",
                   help="also chart the run: FILE.html an interactive page (Bokeh), "
                        "FILE.png a picture (matplotlib)")
    p.set_defaults(func=run)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a backtest, shared by `sim` and `optimize`."""
    p.add_argument("--from", dest="start", metavar="TIME",
                   help="first tick (ISO date or epoch ms); earlier candles still warm up")
    p.add_argument("--to", dest="stop", metavar="TIME", help="no candle at or after this time")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a strategy parameter (repeatable)")
    p.add_argument("--cash", type=float, help="starting cash (default: the strategy's)")
    p.add_argument("--seed", type=int,
                   help="seed of the fill randomness, and of the search in optimize (default 0)")
    p.add_argument("--data", action="append", default=[], metavar="SYMBOL=CSV",
                   help="candles of one market from a CSV (repeatable)")
    p.add_argument("--data-dir", help="OHLCV store directory (default user/data)")
    p.add_argument("--slippage", type=float, help="scale of market-order slippage (0 = none)")
    p.add_argument("--no-volume-cap", action="store_true", help="fill whole orders whatever the volume")
    p.add_argument("--maker", type=float, help="maker fee rate override")
    p.add_argument("--taker", type=float, help="taker fee rate override")
    p.add_argument("--config", help="config file (default user/planar.toml)")


def sim_config(args: argparse.Namespace, cfg: dict[str, Any]) -> SimConfig:
    """SimConfig from [sim] in planar.toml, overridden by the command line."""
    table = cfg.get("sim") or {}
    unknown = set(table) - {"seed", "slippage", "volume_cap", "maker", "taker"}
    if unknown:
        raise ConfigError(f"[sim] has unknown option(s) {', '.join(sorted(unknown))}; "
                          "known: seed, slippage, volume_cap, maker, taker")
    def pick(name: str, cli: Any, kind: type) -> Any:
        value = cli if cli is not None else table.get(name)
        if value is None:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            raise ConfigError(f"[sim] {name} must be a {kind.__name__}, got {value!r}")
        return value
    options: dict[str, Any] = {}
    for name, cli, kind in (("seed", args.seed, int), ("slippage", args.slippage, float),
                            ("maker", args.maker, float), ("taker", args.taker, float)):
        value = pick(name, cli, kind)
        if value is not None:
            options[name] = value
    cap = pick("volume_cap", False if args.no_volume_cap else None, bool)
    if cap is not None:
        options["volume_cap"] = cap
    return SimConfig(**options)


def parse_data(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        symbol, sep, path = item.partition("=")
        if not sep or not symbol or not path:
            raise ConfigError(f"--data takes SYMBOL=FILE.csv, got {item!r}")
        out[symbol] = Path(path)
    return out


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    cls = find_strategy(args.strategy, cfg)
    recorder = None
    if args.record is not None:
        from ..trace import EventTrace
        recorder = EventTrace.open(args.record or None, strategy=cls.__name__,
                                   exchange=cls.exchange)
    try:
        result = backtest(cls, data=parse_data(args.data), cash=args.cash,
                          start=to_ms(args.start) if args.start else None,
                          stop=to_ms(args.stop) if args.stop else None,
                          config=sim_config(args, cfg), progress=True, settings=cfg,
                          data_dir=args.data_dir, recorder=recorder,
                          params=parse_items(cls, args.param))
    finally:
        if recorder is not None:
            recorder.close()
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        print(result.format_summary())
    code = 0
    if recorder is not None:
        print(f"trace         {recorder.path} (run {recorder.run})")
        code = trace_outcome(recorder)
    if args.plot and args.plot.lower().endswith((".html", ".htm")):
        from ..charts import chart  # bokeh only when asked for
        chart(result).save(args.plot)
    elif args.plot:
        from ..plot import plot_backtest  # matplotlib only when asked for
        try:
            plot_backtest(result, args.plot)
        except OSError as e:
            raise ConfigError(f"--plot: cannot write {args.plot}: {e.strerror or e}") from None
    return code
