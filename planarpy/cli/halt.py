"""`planarpy halt STRATEGY`: the kill switch of a running `planarpy live` or `planarpy paper`.

It connects to the run's control socket (see `planarpy.modes.runtime.control`), which the
run keeps under its trace directory, and asks it to halt: trading goes HALTED (every
later order is denied until the strategy resets it), the open orders are cancelled, and
with --close the positions are closed. The run itself keeps running (ticks, watchers,
trace); it stops as usual, with Ctrl-C.

Exit codes: 0 halted with no order open; 1 halted, but orders are still open (listed),
or --close has still to close something (listed: it goes once the orders are cancelled),
or the halt could not be written to the trace yet, or the run refused; 2 no such run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .. import validate as V
from . import console
from .main import example


def register(sub: Any) -> None:
    p = sub.add_parser("halt", help="halt a running paper or live strategy (the kill switch)",
                       description="Halt a strategy that `planarpy live` or `planarpy paper` "
                                   "runs (in another terminal): trading is halted, every "
                                   "later order is denied until the strategy resets it, and "
                                   "its open orders are cancelled. The run keeps running; "
                                   "stop it with Ctrl-C as usual.",
                       epilog=example("planarpy halt SmaCross",
                                      "planarpy halt sma_cross --close --reason 'bad fills'"))
    p.add_argument("strategy", help="the strategy: its class name, or the name or path "
                                    "given to live/paper")
    p.add_argument("--trace-dir", type=V.flag(V.nonempty()), default="traces",
                   help="the --trace-dir the run was started with (default traces/)")
    p.add_argument("--exchange", type=V.flag(V.nonempty()),
                   help="the exchange id, when the strategy runs on several at once")
    p.add_argument("--reason", type=V.flag(V.nonempty()), default="halted from the command line",
                   help="why, as the trace and the strategy's on_risk see it")
    p.add_argument("--close", action="store_true", help="also close its positions")
    p.add_argument("--config", help="config file (default user/planar.toml), to resolve a "
                                    "strategy name or path")
    p.set_defaults(func=run)


def control_dir(trace_dir: str | Path) -> Path:
    """Where paper and live runs started from the command line keep their control files."""
    from ..modes.runtime.control import DIR
    return Path(trace_dir) / DIR


def run(args: argparse.Namespace) -> int:
    from ..modes.runtime.control import request
    info = _find(args)
    began = time.monotonic()
    answer = request(info, {"command": "halt", "reason": args.reason,
                            "close": True if args.close else None})
    took = time.monotonic() - began
    who = f"{info['strategy']} ({info.get('mode')} on {info.get('exchange')}, pid {info.get('pid')})"
    if not answer.get("ok"):
        console.say(f"planarpy: {who} refused: {answer.get('error')}")
        return 1
    console.say(f"halted {who} in {took:.2f} s: trading {answer.get('state')}", out="stdout")
    if answer.get("unrecorded"):  # a crash now would lose the halt: the user must know
        console.say(f"  not in the trace yet: {answer['unrecorded']}", out="stdout")
    still = list(answer.get("open_orders") or [])
    for line in still:
        console.say(f"  still open: {line}", out="stdout")
    for line in answer.get("positions") or []:
        console.say(f"  position: {line}", out="stdout")
    closing = list(answer.get("to_close") or [])  # --close could not finish yet
    for line in closing:
        console.say(f"  {line}", out="stdout")
    return 1 if still or closing or answer.get("unrecorded") else 0


def _find(args: argparse.Namespace) -> dict[str, Any]:
    """The run file of the strategy named by its class name, else by the name or path
    given to live/paper (resolved as they resolve it)."""
    from ..config import load_config
    from ..core.errors import StrategyNotFound
    from ..loader import find_strategy
    from ..modes.runtime.control import RunNotFound, find_run
    root, name = control_dir(args.trace_dir), args.strategy
    if not name.isidentifier():  # a path: its class
        return find_run(root, find_strategy(name, load_config(args.config)).__name__,
                        args.exchange)
    try:
        return find_run(root, name, args.exchange)
    except RunNotFound as e:
        try:
            cls = find_strategy(name, load_config(args.config))
        except StrategyNotFound:
            raise e from None
        return find_run(root, cls.__name__, args.exchange)
