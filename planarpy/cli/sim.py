"""`planarpy sim STRATEGY`: run a backtest and print its summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import attrs

from .. import validate as V
from ..config import load_config
from ..core.errors import ConfigError, DataError
from ..core.market import FEE_RANGE, FEE_SIDES
from ..data.ohlcv import iso, to_ms
from ..loader import find_strategy
from ..modes.sim import SimConfig, backtest
from ..modes.sim.config import GAP_POLICIES
from ..params import parse_items
from .main import example
from .trace import trace_outcome

# [sim] in planar.toml; the command line's flags of the same names override them
SIM_KEYS = {
    "seed": V.whole(0, 2**32 - 1),
    "slippage": V.non_negative("a scale; 0: no slippage"),
    "volume_cap": V.boolean(),
    "maker": V.number(*FEE_RANGE, "a fee rate; negative: a rebate"),
    "taker": V.number(*FEE_RANGE, "a fee rate"),
    "fee_side": V.one_of(*FEE_SIDES),
    "gaps": V.one_of(*GAP_POLICIES),
}
PLOTS = (".html", ".htm", ".png", ".svg", ".pdf", ".jpg", ".jpeg")


def register(sub: Any) -> None:
    p = sub.add_parser("sim", help="backtest a strategy on candles",
                       description="Backtest a strategy (a name from user/planar.toml, a file "
                                   "in strategies/, or a path to a .py file).",
                       epilog=example("planarpy sim sma_cross",
                                      "planarpy sim sma_cross --from 2018-01-15 --cash 2 "
                                      "--trades",
                                      "planarpy sim my.py --data BTC/USDT=btc_1m.csv "
                                      "--gaps skip --record --plot run.html"))
    p.add_argument("strategy", help="strategy name or path")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--trades", action="store_true",
                   help="also print the round trips, one line each")
    p.add_argument("--record", nargs="?", const="", metavar="TRACE",
                   type=V.flag(V.Rule("a trace directory (not a file)",
                                      lambda v: not Path(v).is_file())),
                   help="record every event in an EventTrace (default traces/STRATEGY/EXCHANGE)")
    p.add_argument("--plot", metavar="FILE", type=V.flag(V.out_file(*PLOTS)),
                   help="also chart the run: FILE.html an interactive page (Bokeh), "
                        "FILE.png (.svg, .pdf) a picture (matplotlib)")
    p.set_defaults(func=run)


def time_flag(text: str) -> int:
    """An argparse `type=` for a time: ISO 8601 (UTC) or epoch ms."""
    try:
        return to_ms(text)
    except DataError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a backtest, shared by `sim` and `optimize`; each checked as it is read."""
    p.add_argument("--from", dest="start", metavar="TIME", type=time_flag,
                   help="first tick (ISO date or epoch ms); earlier candles still warm up")
    p.add_argument("--to", dest="stop", metavar="TIME", type=time_flag,
                   help="no candle at or after this time")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a strategy parameter (repeatable)")
    p.add_argument("--cash", type=V.flag(V.positive(below=1e15)),
                   help="starting cash (default: the strategy's initial_cash)")
    p.add_argument("--seed", type=V.flag(SIM_KEYS["seed"]),
                   help="seed of the fill randomness, and of the search in optimize (default 0)")
    p.add_argument("--data", action="append", default=[], metavar="SYMBOL=CSV",
                   help="candles of one market from a CSV (repeatable); candles finer than "
                        "the strategy's timeframe are resampled, coarser ones refused")
    p.add_argument("--data-dir", type=V.flag(V.existing_dir()), metavar="DIR",
                   help="OHLCV store directory to read, which must hold the markets "
                        "(default: user/data, then the bundled samples)")
    p.add_argument("--gaps", choices=GAP_POLICIES,
                   help="candles missing from the data: fill (a flat candle at the last "
                        "close, no volume) or skip (step over them) (default: [sim] gaps, "
                        "else fill)")
    p.add_argument("--slippage", type=V.flag(SIM_KEYS["slippage"]),
                   help="scale of market-order slippage (0 = none; default 1)")
    p.add_argument("--no-volume-cap", action="store_true", help="fill whole orders whatever the volume")
    p.add_argument("--maker", type=V.flag(SIM_KEYS["maker"]), help="maker fee rate override")
    p.add_argument("--taker", type=V.flag(SIM_KEYS["taker"]), help="taker fee rate override")
    p.add_argument("--fee-side", choices=FEE_SIDES,
                   help="currency fees are taken in, overriding the market's (quote: cash)")
    p.add_argument("--config", help="config file (default user/planar.toml)")


def sim_config(args: argparse.Namespace, cfg: dict[str, Any]) -> SimConfig:
    """SimConfig from [sim] in planar.toml (each key checked), overridden by the flags."""
    options = V.read_table(cfg.get("sim"), SIM_KEYS, "[sim]")
    flags = {"seed": args.seed, "slippage": args.slippage, "maker": args.maker,
             "taker": args.taker, "fee_side": args.fee_side, "gaps": args.gaps,
             "volume_cap": False if args.no_volume_cap else None}
    options.update({k: v for k, v in flags.items() if v is not None})
    if args.start is not None and args.stop is not None and args.stop <= args.start:
        raise ConfigError(f"--to {iso(args.stop)} is not after --from {iso(args.start)}")
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
    config = sim_config(args, cfg)
    params = parse_items(cls, args.param)
    recorder = None
    if args.record is not None:
        from ..trace import EventTrace
        recorder = EventTrace.open(args.record or None, strategy=cls.__name__,
                                   exchange=cls.exchange)
    try:
        result = backtest(cls, data=parse_data(args.data), cash=args.cash, start=args.start,
                          stop=args.stop, config=config, progress=True, settings=cfg,
                          data_dir=args.data_dir, recorder=recorder, params=params)
    finally:
        if recorder is not None:
            recorder.close()
    if args.json:
        summary = result.summary()
        if args.trades:
            summary["round_trips_list"] = [attrs.asdict(t) for t in result.round_trips()]
        print(json.dumps(summary, indent=2))
    else:
        print(result.format_summary())
        if args.trades:
            print()
            print(result.format_trades())
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
