"""`planarpy paper STRATEGY`: live market data, simulated fills, a status line, a clean stop."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from ..config import load_config
from ..exchanges import exchange_config
from ..loader import find_strategy
from .live import supervise


def register(sub: Any) -> None:
    p = sub.add_parser("paper", help="run a strategy on live market data with simulated fills",
                       description="Run a strategy in paper mode: market data streams from the "
                                   "exchange's public endpoints (no keys), orders fill against "
                                   "the streamed book and trades. Ctrl-C (or SIGTERM) stops it "
                                   "cleanly and flushes its trace.")
    p.add_argument("strategy", help="strategy name or path")
    p.add_argument("--config", help="config file (default user/planar.toml)")
    p.add_argument("--exchange", help="[exchanges.NAME] table to use (default: the strategy's)")
    p.add_argument("--exchange-url", help="send every request to this base URL instead "
                                          "(the local exchange, a proxy)")
    p.add_argument("--cash", type=float,
                   help="starting cash (default: the strategy's initial_cash)")
    p.add_argument("--tick-interval", type=float,
                   help="seconds between on_interval calls within a candle (default: none; "
                        "tick runs once per closed candle)")
    p.add_argument("--trace-dir", default="traces",
                   help="where the EventTrace goes (default traces/)")
    p.add_argument("--no-trace", action="store_true", help="record nothing")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--status-every", type=float, default=5.0, help="seconds between status lines")
    p.set_defaults(func=run, mode="paper")


def run(args: argparse.Namespace) -> int:
    from ..modes.paper import start_paper
    cfg = load_config(args.config)
    cls = find_strategy(args.strategy, cfg)
    xcfg = exchange_config(args.exchange or cls.exchange, cfg, url=args.exchange_url)
    trace = None
    if not args.no_trace:
        from ..trace import EventTrace
        trace = EventTrace.open(strategy=cls.__name__, exchange=xcfg.id, root=args.trace_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    handle = start_paper(cls, exchange=args.exchange, exchange_url=args.exchange_url,
                         settings=cfg, cash=args.cash, trace=trace,
                         tick_interval=args.tick_interval)
    return supervise(handle, stop, args)
