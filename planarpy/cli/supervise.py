"""Running a paper or live strategy from the command line: start-up, status lines, and a
stop that nothing can skip.

SIGINT (Ctrl-C) and SIGTERM act alike. The first stops the run through its stop sequence
(the strategy's stop, on_stop's cancel or close retried until the stop deadline, the
trace flushed); during start-up it abandons the start-up. A second one forces the exit
at once, after saying what may be left open. All output goes through `console`, so a
broken or closed stdout/stderr never skips a step.

Exit codes: 0 a clean stop; 1 the stop could not do all on_stop asked (what is still
open is listed), or the trace could not be written at some point; 130 start-up
interrupted, or forced exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any

from .. import validate as V
from ..core.display import rules_text
from ..core.errors import StartupInterrupted
from ..exchanges.client import ON_STOP
from . import console
from .trace import trace_outcome

INTERRUPTED = 130
FORCE_FLUSH = 2.0  # seconds a forced exit gives the trace to write what it holds


def add_run_flags(p: argparse.ArgumentParser, url_help: str) -> None:
    """The flags paper and live share, each checked as it is read."""
    p.add_argument("strategy", help="strategy name or path")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a strategy parameter (repeatable)")
    p.add_argument("--config", help="config file (default user/planar.toml)")
    p.add_argument("--exchange", type=V.flag(V.nonempty()),
                   help="[exchanges.NAME] table to use (default: the strategy's)")
    p.add_argument("--exchange-url", type=V.flag(V.url()), help=url_help)
    p.add_argument("--tick-interval", type=V.flag(V.positive("seconds")),
                   help="seconds between on_interval calls within a candle (default: none; "
                        "tick runs once per closed candle)")
    p.add_argument("--trace-dir", type=V.flag(V.nonempty()), default="traces",
                   help="where the EventTrace goes (default traces/)")
    p.add_argument("--no-trace", action="store_true", help="record nothing")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--on-stop", choices=ON_STOP,
                      help="on stopping, keep the open orders and positions, cancel the "
                           "orders, or close all (default: planar.toml's, else keep)")
    when.add_argument("--cancel-on-stop", dest="on_stop", action="store_const",
                      const="cancel", help="the same as --on-stop cancel")
    when.add_argument("--close-on-stop", dest="on_stop", action="store_const",
                      const="close", help="the same as --on-stop close")
    p.add_argument("--stop-timeout", type=V.flag(V.positive("seconds")),
                   help="seconds a stop keeps retrying to cancel or close before it lists "
                        "what is still open and exits with 1 (default: planar.toml's, else 30)")
    p.add_argument("--duration", type=V.flag(V.positive("seconds")),
                   help="stop after this many seconds")
    p.add_argument("--status-every", type=V.flag(V.positive("seconds")), default=5.0,
                   help="seconds between status lines (default 5)")


def run_handle(handle: Any, args: argparse.Namespace) -> int:
    """Start `handle` under the signal handlers, supervise it, stop it."""
    with Signals(handle) as signals:
        code = start(handle, signals)
        return code if code is not None else supervise(handle, signals, args)


class Signals:
    """SIGINT and SIGTERM handlers for one run, restored on exit: the first asks the run
    to stop, the second forces the exit."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.reason: str | None = None  # set by the first signal (a handler takes no lock)
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Signals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.reason is not None:
            force_exit(self.handle)
        self.reason = signal.Signals(signum).name
        self.handle.session.request_stop(self.reason)

    def pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, less if a signal comes (polled: a handler must not take
        a lock the code it interrupts may hold, as Event.set would)."""
        end = time.monotonic() + seconds
        while self.reason is None and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))


def force_exit(handle: Any) -> None:
    """Say what may be left open, record it, give the trace a moment, and exit now."""
    session = handle.session
    items = session.open_now()
    lines = ["planarpy: forced to exit before the stop finished"]
    lines += ["may be left open:", *(f"  {i}" for i in items)] if items else \
        ["no order or position was open as far as the local state knows"]
    console.say_now("\n".join(lines))
    recorder = session.recorder
    if recorder is not None and session.s is not None:
        def flush() -> None:
            try:
                recorder.record("strategy_stopped", {"reason": "forced", "forced": True,
                                                     "still_open": items},
                                ts=session.e.clock.now_ns())
                recorder.flush()
            except Exception:
                pass
        writer = threading.Thread(target=flush, daemon=True)
        writer.start()
        writer.join(FORCE_FLUSH)
    os._exit(INTERRUPTED)


def start(handle: Any, signals: Signals, timeout: float = 60.0) -> int | None:
    """Start the run; None once it runs, else the exit code (start-up interrupted)."""
    s = handle.session
    console.say(f"starting {s.cls.__name__} on {s.exchange.id} (on_stop = {s.on_stop}; risk "
                f"rules: {rules_text(s.risk.in_force()) or 'none'}); "
                "Ctrl-C stops it")
    try:
        handle.start(timeout)
    except StartupInterrupted:
        report = s.stop_report
        console.say(f"planarpy: start-up interrupted ({signals.reason or s.stop_reason})")
        for line in report.lines() if report is not None else []:
            console.say(line)
        return INTERRUPTED
    return None


def supervise(handle: Any, signals: Signals, args: argparse.Namespace) -> int:
    """Print the status line until a signal, the duration or the engine's end; then stop
    (always, whatever happened meanwhile) and report what was left open."""
    reason = "error"
    try:
        reason = _watch(handle, signals, args)
    finally:
        console.say(f"stopping... ({reason}; on_stop = {handle.session.on_stop})")
        report = handle.session.stop(reason=reason)
    console.say(handle.status())
    console.say(handle.format_summary(), out="stdout")  # like sim's: PnL, fills, fees, open
    for line in report.lines():
        console.say(line)
    return max(0 if report.complete else 1, trace_outcome(handle.session.recorder))


def _watch(handle: Any, signals: Signals, args: argparse.Namespace) -> str:
    """The status lines while the run runs; why it must stop."""
    tty = _isatty()
    end = time.monotonic() + args.duration if args.duration is not None else None
    try:
        while True:
            line = handle.status()
            console.say(("\r" + line + "   ") if tty else line, end="" if tty else "\n")
            wait = args.status_every if end is None else \
                min(args.status_every, end - time.monotonic())
            if signals.reason is not None:
                return signals.reason
            if not handle.running:
                return "the engine stopped"
            if wait <= 0:
                return "duration"
            signals.pause(wait)
    finally:
        if tty:
            console.say("")


def _isatty() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (OSError, ValueError):
        return False
