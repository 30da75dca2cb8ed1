"""`planarpy live STRATEGY`: trade an exchange, with a status line and a clean stop."""

from __future__ import annotations

import argparse
from typing import Any

from .. import validate as V
from ..config import load_config
from ..exchanges import exchange_config, load_keys
from ..loader import find_strategy
from ..params import parse_items
from .halt import control_dir
from .main import example
from .supervise import add_run_flags, run_handle


def register(sub: Any) -> None:
    p = sub.add_parser("live", help="run a strategy on an exchange",
                       description="Run a strategy live through ccxt. Ctrl-C (or SIGTERM) "
                                   "stops it cleanly (cancelling or closing as on_stop says) "
                                   "and flushes its trace; a second Ctrl-C forces the exit.",
                       epilog=example("planarpy live sma_cross --exchange-url "
                                      "http://127.0.0.1:8765 --on-stop cancel"))
    add_run_flags(p, "send every request to this base URL instead (a testnet, the local "
                     "exchange)")
    p.add_argument("--waitfor", type=V.flag(V.wait()), default=5.0,
                   help="default seconds an order waits for a fill (default 5)")
    p.set_defaults(func=run, mode="live")


def open_trace(args: argparse.Namespace, strategy: str, exchange: str, keys: Any) -> Any:
    if args.no_trace:
        return None
    from ..trace import EventTrace
    return EventTrace.open(strategy=strategy, exchange=exchange, root=args.trace_dir,
                           redact=[v for v in (keys.api_key, keys.secret, keys.password) if v])


def run(args: argparse.Namespace) -> int:
    from ..modes.live import live_run
    cfg = load_config(args.config)
    cls = find_strategy(args.strategy, cfg)
    xcfg = exchange_config(args.exchange or cls.exchange, cfg, url=args.exchange_url)
    keys = load_keys(xcfg.keys or xcfg.name)
    params = parse_items(cls, args.param)
    handle = live_run(cls, exchange=args.exchange, exchange_url=args.exchange_url, keys=keys,
                      settings=cfg, tick_interval=args.tick_interval, waitfor=args.waitfor,
                      on_stop=args.on_stop, stop_timeout=args.stop_timeout, params=params,
                      control=control_dir(args.trace_dir),
                      trace=None)  # opened below, under --trace-dir
    handle.session.recorder = open_trace(args, cls.__name__, xcfg.id, keys)
    return run_handle(handle, args)
