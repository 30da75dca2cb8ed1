"""EventTrace: the Zarr event log of a paper or live run, tailed live and replayed later.

    with EventTrace.open(strategy="SmaCross", exchange="binance") as trace:
        trace.record("strategy_started", {"cash": 1000})
        trace.record("order_created", {"id": "1", "amount": 0.5}, symbol="ETH/BTC")
    trace_tail("traces/SmaCross/binance", n=5)
"""

from .layout import FORMAT, TraceDamageWarning, TraceError, default_root, trace_path
from .payload import MASK, is_secret_key, scrub
from .reader import follow, iter_events, last_run, trace_info, trace_tail
from .replay import ReplayReport, replay_from_trace
from .writer import EventTrace, TraceHealth

__all__ = [
    "EventTrace", "FORMAT", "MASK", "ReplayReport", "TraceDamageWarning", "TraceError",
    "TraceHealth", "default_root", "follow", "is_secret_key", "iter_events", "last_run",
    "replay_from_trace", "scrub", "trace_info", "trace_path", "trace_tail",
]
