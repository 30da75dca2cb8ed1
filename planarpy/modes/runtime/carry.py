"""The trading state and the loss breakers' measurements, carried over a restart.

Both change only by events (`trading_state_changed`, `risk_measured`), so the trace has
them: a live run that restarts on the trace of an earlier run (the same strategy and
exchange: `planarpy live` appends to one trace) reads the newest of each and starts
where the earlier run ended. A run halted by its daily loss limit, or by the kill
switch, is still halted after a crash and a restart, until a reset; the day's loss and
the drawdown go on being measured from the same day start and peak.

The new run records what it carried over as its own first risk events (the state through
the pipeline's `trip`, with what the rules say a halt does: its open orders are
cancelled), so that its own replay reproduces it. A paper run carries the trading state
over in the same way, but not the measurements: its simulated account starts anew, so an
earlier run's day start and peak say nothing about it.

Paper and live runs of one strategy on one exchange record to one trace: a run carries
over only what runs of its own mode recorded (a paper run's reset or its simulated
equity is not the live account's, nor the reverse).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ...actions.engine import Engine
from ...actions.pipeline import trip
from ...core.apply import apply_event
from ...core.instances import State
from ...core.risk import Breach, TradingState

KINDS = ("trading_state_changed", "risk_measured")
RUNS = 1_000_000  # the runs' start events read at most (one a run)


def carried(path: str | Path, tail: Callable[..., list[dict[str, Any]]],
            mode: str) -> list[dict[str, Any]]:
    """The newest trading_state_changed and risk_measured events that runs in `mode`
    ("paper", "live") recorded in the trace at `path` (committed ones: a run killed loses
    only what it had not flushed), oldest first, read with `tail`
    (`planarpy.trace.trace_tail`, given by the mode: the runtime does not read traces
    itself). Damage is skipped with a warning: what cannot be read is not carried over."""
    runs = [e["run"] for e in tail(path, n=RUNS, kinds="strategy_started")
            if (e["payload"] or {}).get("mode") == mode]
    found: list[dict[str, Any]] = []
    for kind in KINDS:
        for run in reversed(runs):  # the newest first: a run records what it carried
            events = tail(path, n=1, kinds=kind, run=run)
            if events:
                found += events
                break
    return sorted(found, key=lambda e: (e["ts"], e["seq"] or 0))


def restore(e: Engine, events: list[dict[str, Any]], measurements: bool = True) -> None:
    """Start a strategy's engine `e` (as strategy code: it may cancel) from the risk
    state that `events` (see `carried`) leave: the trading state, and the loss breakers'
    measurements if `measurements` (the same account goes on)."""
    scratch = State(e.state.quote, 0.0)
    for event in events:
        apply_event(scratch, event["kind"], event["payload"] or {})
    risk, now = scratch.risk, e.clock.now()
    run = events[-1]["run"] if events else None
    if measurements and risk.day is not None:
        e.emit("risk_measured", {"day": risk.day, "day_start_equity": risk.day_start_equity,
                                 "peak_equity": risk.peak_equity, "ts": now,
                                 "carried_from": run})
    if risk.trading is not TradingState.ACTIVE and risk.changes:
        last = risk.changes[-1]
        trip(e, Breach(str(last.get("rule")), f"carried over from run {run}: "
                                              f"{last.get('reason')}", risk.trading))
