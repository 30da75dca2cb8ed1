"""`planarpy live STRATEGY`: trade an exchange, with a status line and a clean stop."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

from ..config import load_config
from ..exchanges import exchange_config, load_keys
from ..loader import find_strategy


def register(sub: Any) -> None:
    p = sub.add_parser("live", help="run a strategy on an exchange",
                       description="Run a strategy live through ccxt. Ctrl-C (or SIGTERM) "
                                   "stops it cleanly and flushes its trace.")
    p.add_argument("strategy", help="strategy name or path")
    p.add_argument("--config", help="config file (default user/planar.toml)")
    p.add_argument("--exchange", help="[exchanges.NAME] table to use (default: the strategy's)")
    p.add_argument("--exchange-url", help="send every request to this base URL instead "
                                          "(a testnet, the local exchange)")
    p.add_argument("--tick-interval", type=float,
                   help="seconds between on_interval calls within a candle (default: none; "
                        "tick runs once per closed candle)")
    p.add_argument("--waitfor", type=float, default=5.0, help="default seconds an order waits for a fill")
    p.add_argument("--trace-dir", default="traces", help="where the EventTrace goes (default traces/)")
    p.add_argument("--no-trace", action="store_true", help="record nothing")
    p.add_argument("--cancel-on-stop", action="store_true", help="cancel open orders when stopping")
    p.add_argument("--close-on-stop", action="store_true",
                   help="cancel orders and close positions when stopping")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--status-every", type=float, default=5.0, help="seconds between status lines")
    p.set_defaults(func=run, mode="live")


def open_trace(args: argparse.Namespace, strategy: str, exchange: str, keys: Any) -> Any:
    if args.no_trace:
        return None
    from ..trace import EventTrace
    return EventTrace.open(strategy=strategy, exchange=exchange, root=args.trace_dir,
                           redact=[v for v in (keys.api_key, keys.secret, keys.password) if v])


def run(args: argparse.Namespace) -> int:
    from ..modes.live import start_live
    cfg = load_config(args.config)
    cls = find_strategy(args.strategy, cfg)
    xcfg = exchange_config(args.exchange or cls.exchange, cfg, url=args.exchange_url)
    keys = load_keys(xcfg.keys or xcfg.name)
    trace = open_trace(args, cls.__name__, xcfg.id, keys)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    handle = start_live(cls, exchange=args.exchange, exchange_url=args.exchange_url, keys=keys,
                        settings=cfg, trace=trace, tick_interval=args.tick_interval,
                        waitfor=args.waitfor, cancel_on_stop=args.cancel_on_stop,
                        close_on_stop=args.close_on_stop)
    return supervise(handle, stop, args)


def supervise(handle: Any, stop: threading.Event, args: argparse.Namespace) -> int:
    """Print the status line until a signal, the duration or the engine ends; then stop."""
    tty = sys.stderr.isatty()
    end = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.is_set() and handle.running:
            line = handle.status()
            print(("\r" + line + "   ") if tty else line, file=sys.stderr, end="" if tty else "\n",
                  flush=True)
            timeout = args.status_every
            if end is not None:
                timeout = min(timeout, max(0.0, end - time.monotonic()))
                if timeout == 0.0:
                    break
            stop.wait(timeout)
    finally:
        if tty:
            print(file=sys.stderr)
        print("stopping...", file=sys.stderr, flush=True)
        handle.stop()
    print(handle.status(), file=sys.stderr)
    return 0
