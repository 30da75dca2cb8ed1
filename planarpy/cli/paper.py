"""`planarpy paper STRATEGY`: live market data, simulated fills, a status line, a clean stop."""

from __future__ import annotations

import argparse
from typing import Any

from .. import validate as V
from ..config import load_config
from ..exchanges import exchange_config
from ..loader import find_strategy
from ..params import parse_items
from .halt import control_dir
from .main import example
from .supervise import add_run_flags, run_handle


def register(sub: Any) -> None:
    p = sub.add_parser("paper", help="run a strategy on live market data with simulated fills",
                       description="Run a strategy in paper mode: market data streams from the "
                                   "exchange's public endpoints (no keys), orders fill against "
                                   "the streamed book and trades. Ctrl-C (or SIGTERM) stops it "
                                   "cleanly and flushes its trace; a second Ctrl-C forces the "
                                   "exit.",
                       epilog=example("planarpy paper sma_cross --exchange-url "
                                      "http://127.0.0.1:8765 --duration 60"))
    add_run_flags(p, "send every request to this base URL instead (the local exchange, a proxy)")
    p.add_argument("--cash", type=V.flag(V.positive()),
                   help="starting cash (default: the strategy's initial_cash)")
    p.set_defaults(func=run, mode="paper")


def run(args: argparse.Namespace) -> int:
    from ..modes.paper import paper_run
    cfg = load_config(args.config)
    cls = find_strategy(args.strategy, cfg)
    xcfg = exchange_config(args.exchange or cls.exchange, cfg, url=args.exchange_url)
    params = parse_items(cls, args.param)
    handle = paper_run(cls, exchange=args.exchange, exchange_url=args.exchange_url,
                       settings=cfg, cash=args.cash, tick_interval=args.tick_interval,
                       on_stop=args.on_stop, stop_timeout=args.stop_timeout, params=params,
                       control=control_dir(args.trace_dir),
                       trace=None)  # opened below, under --trace-dir
    if not args.no_trace:
        from ..trace import EventTrace
        handle.session.recorder = EventTrace.open(strategy=cls.__name__, exchange=xcfg.id,
                                                  root=args.trace_dir)
    return run_handle(handle, args)
