"""The trading state and the loss breakers' measurements, carried over a restart.

Both change only by events (`trading_state_changed`, `risk_measured`), so the trace has
them: a live run that restarts on the trace of an earlier run (the same strategy and
exchange: `planarpy live` appends to one trace) reads the newest of each and starts
where the earlier run ended. A run halted by its daily loss limit, or by the kill
switch, is still halted after a crash and a restart, until a reset; the day's loss and
the drawdown go on being measured from the same day start and peak. A restart on a later
UTC day starts that day from the equity at its midnight close, as a run that stayed up
would have (`EquityWatch.resume`): the loss of the day while the run was down counts.

The new run records what it carried over as its own first risk events (the state through
the pipeline's `trip`, with what the rules say a halt does to open orders: those that
add exposure are cancelled, a kept position's stop-loss stays; positions are closed
only where the halt was to close them, which a crash may have cut short: that close goes
on), so that its own replay reproduces it. A
paper run carries the trading state over in the same way, but not the measurements: its
simulated account starts anew, so an earlier run's day start and peak say nothing
about it. It carries the rate windows too (`windows`: the last minute's order creations,
which the throttle counts, and order errors, which the error-rate breaker counts), as a
live run does with the rest of its state (live/resume.py), as one `risk_carried` event.

Paper and live runs of one strategy on one exchange record to one trace: a run carries
over only what runs of its own mode recorded (a paper run's reset or its simulated
equity is not the live account's, nor the reverse). Damage in the trace where the
newest of these events may be leaves the state unknown: the run starts HALTED
("trace_damaged") until a reset, which the next restart then reads first; so does damage
where events of the rate windows' last minute may be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ...actions.engine import Engine
from ...actions.pipeline import trip
from ...core.apply import apply_event
from ...core.errors import PlanarError
from ...core.instances import AssetInstance, State
from ...core.risk import MINUTE_MS, Breach, RiskState, TradingState, count_order

KINDS = ("trading_state_changed", "risk_measured")
DAMAGED = ("trace_damaged", "the trace's risk history cannot be read (it is damaged where "
                            "the newest trading state may be): halted until a reset")
# what feeds the rate windows (core/apply.py): order creations, order errors, a reset
# (it forgives the errors), and what an earlier restart carried
WINDOW_KINDS = ("order_created", "order_error", "exchange_error", "trading_state_changed",
                "risk_carried")
WINDOWS_DAMAGED = ("trace_damaged", "the trace is damaged within the last minute: the orders "
                                    "and order errors the rate windows count are unknown: "
                                    "halted until a reset")


def carried(path: str | Path, tail: Callable[..., list[dict[str, Any]]], mode: str,
            wanted: tuple[str, ...] = KINDS) -> list[dict[str, Any]] | None:
    """The newest event of each kind in `wanted` (trading_state_changed, and
    risk_measured) that runs in `mode` ("paper", "live") recorded in the trace at `path`
    (committed ones: a run killed loses only what it had not flushed), oldest first, read
    with `tail` (`planarpy.trace.trace_tail`, given by the mode: the runtime does not read
    traces itself). The trace is read back from its end, twice as far each time, until each
    kind in `wanted` is found or it has no more. Where damage stops the reading, what is
    before it is used; None if the newest trading state is not found there: what the
    damage hid is not known."""
    def read(n: int) -> list[dict[str, Any]] | None:
        try:
            return tail(path, n=n, kinds=("strategy_started", *wanted), errors="raise")
        except PlanarError:  # TraceError: damage among the newest n
            return None

    mode_of = _mode_of(path, tail)
    n, good, found = 4, [], {}
    while (events := read(n)) is not None:
        good, found = events, _newest(events, mode, mode_of)
        if all(kind in found for kind in wanted) or len(events) < n:
            return _oldest_first(found)
        n *= 2
    low, high = len(good), n  # as many as can be read before the damage, by halves
    while high - low > 1:
        mid = (low + high) // 2
        events = read(mid)
        if events is None:
            high = mid
        else:
            low, good = mid, events
    found = _newest(good, mode, mode_of)
    return _oldest_first(found) if KINDS[0] in found else None


def windows(path: str | Path, tail: Callable[..., list[dict[str, Any]]], mode: str,
            state: State, now: int) -> tuple[RiskState, int | None] | None:
    """The rate windows (`RiskState.orders`, `.errors`) that runs in `mode` left in the
    trace at `path`, rebuilt from the events of the last minute before `now` (ms) that feed
    them, read with `tail` (see `carried`), on an empty state with `state`'s markets; and
    the newest of those runs (None: none). None if damage may hide some of those events:
    what the windows hold is not known."""
    # the windows hold times after now - MINUTE_MS (ms); the trace's times are ns
    since = (now - MINUTE_MS + 1) * 1_000_000
    n = 64
    while True:
        try:
            events = tail(path, n=n, kinds=("strategy_started", *WINDOW_KINDS), since=since,
                          errors="raise")
        except PlanarError:  # TraceError: damage where events of the minute may be
            return None
        if len(events) < n:
            break
        n *= 2
    scratch = State(state.quote, 0.0, assets={sym: AssetInstance(ai.market)
                                               for sym, ai in state.assets.items()})
    run = None
    for event in _of_mode(events, mode, _mode_of(path, tail)):
        payload = event["payload"] or {}
        if event["kind"] == "order_created" and payload.get("symbol") not in scratch.assets:
            # of a market the strategy no longer trades: no asset to hold it, but the
            # throttle counts every order
            count_order(scratch.risk.orders, int(payload["date"]))
        else:
            apply_event(scratch, event["kind"], payload)
        run = event["run"]
    return scratch.risk, run


def _mode_of(path: str | Path, tail: Callable[..., list[dict[str, Any]]]
             ) -> Callable[[int], str | None]:
    """The mode of a run whose start is older than what was read."""
    def mode_of(run: int) -> str | None:
        started = tail(path, n=1, kinds="strategy_started", run=run, errors="skip")
        return (started[0]["payload"] or {}).get("mode") if started else None
    return mode_of


def _of_mode(events: list[dict[str, Any]], mode: str,
             mode_of: Callable[[int], str | None]) -> list[dict[str, Any]]:
    """The events of `events` (oldest first, with the strategy_started of the runs that
    started among them) that runs in `mode` recorded, their starts left out."""
    modes: dict[int, str | None] = {}
    out = []
    for event in events:
        run = event["run"]
        if event["kind"] == "strategy_started":
            modes[run] = (event["payload"] or {}).get("mode")
            continue
        if run not in modes:
            modes[run] = mode_of(run)
        if modes[run] == mode:
            out.append(event)
    return out


def _newest(events: list[dict[str, Any]], mode: str,
            mode_of: Callable[[int], str | None]) -> dict[str, dict[str, Any]]:
    """The newest event of each kind that a run in `mode` recorded, from `events`."""
    return {event["kind"]: event for event in _of_mode(events, mode, mode_of)}


def _oldest_first(found: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(found.values(), key=lambda e: (e["ts"], e["seq"] or 0))


def unknown_windows(e: Engine) -> None:
    """Halt (until a reset) a run whose rate windows could not be read back (`windows`
    found damage): whether a rate rule should stop it is not known. Positions are not
    closed, and a run halted already stays as it is."""
    trip(e, Breach(*WINDOWS_DAMAGED, TradingState.HALTED), close=False)


def restore(e: Engine, events: list[dict[str, Any]] | None, measurements: bool = True) -> None:
    """Start a strategy's engine `e` (as strategy code: it may cancel) from the risk
    state that `events` (see `carried`) leave: the trading state, and the loss breakers'
    measurements if `measurements` (the same account goes on). None (a damaged trace):
    trading HALTED, as unknown, until a reset; positions are not closed (not knowing the
    state is no breach to act on)."""
    if events is None:
        trip(e, Breach(*DAMAGED, TradingState.HALTED), close=False)
        return
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
        # a restart is no new breach: it closes nothing unless the halt was to close, whose
        # close may not have finished before the run ended: that goes on (its event says
        # so again, for the next restart); a position the halt kept stays
        close = risk.trading is TradingState.HALTED and bool(last.get("close"))
        trip(e, Breach(str(last.get("rule")), f"carried over from run {run}: "
                                              f"{last.get('reason')}", risk.trading), close=close)
