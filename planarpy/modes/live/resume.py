"""A live run that starts on the trace of earlier runs resumes where they ended.

After a crash (SIGKILL, power loss) the trace holds every event it had committed. A new
run on the same trace (the same strategy and exchange; `planarpy live` appends to one
trace) replays those events to the state the earlier runs left, and carries it over as
its own first events, before the exchange sync:

1. the earlier runs' fills, as a `sync_result` history (the balances the sync reads
   include them: history only, and each fill's id is known, so none counts twice);
   they stay the strategy's own (`close_position` on spot sells what they bought), but
   the exchange's history their own syncs found stays history;
2. each order they left open, as `order_created` with what it had filled, and the
   rate windows of the last minute (the throttle's order times, the order errors the
   error-rate breaker counts), as `risk_carried`;
3. each of those orders looked up by client id and settled through the one fill
   reconciler: its fills while the run was down applied once (fetched, for an order
   still open), its end (filled, cancelled) applied. An order the exchange says does not exist is closed; one it
   could not be asked about stays open, for the periodic reconciliation. What those
   fills and ends set off (a bracket's exits, an OCO's other leg cancelled) waits for
   the sync (`EngineThread.holding`): a bracket's exits need the balances it reads.

First of all, the strategy's variables come back from its newest checkpoint
(supervision.py), so that the fills it missed reach a strategy that knows its own
state. After it, the ordinary sync brings the balances and positions and adopts orders
that appeared. Then what an earlier run left halfway is finished: an amend whose old stop
is still open (`finish_amends`), a bracket's exits recorded as covering a part and never
placed, and a fill of an entry that the run ended before covering (`finish_exits`).
Recording the carried state in the new run keeps both replays equal to the live state:
that of the new run alone, and that of the whole trace across the crash (where the
carried events change nothing twice: an order or a fill already there is a duplicate).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ...actions import contingent
from ...core.apply import apply_event, order_payload, trade_payload
from ...core.instances import AssetInstance, State
from ...core.orders import Order, OrderStatus, Side
from ...core.precision import floor_to_step
from . import emulation, orders, reports
from .reconciler import REST

if TYPE_CHECKING:  # for the annotations only: the session imports this module
    from .session import LiveSession


@attrs.define(slots=True)
class Brackets:
    """The bracket entries and exits the earlier runs placed (`earlier_state`), and the
    ids of the entries among them with a fill after their last cover: the run ended
    between the fill and its `legs_covered` (a cover taken back because no exit could be
    placed is a cover: the restart does not try again)."""

    orders: list[Order]
    lost: set[str]


def earlier_state(path: str | Path, s: Any
                  ) -> tuple[State, int, Brackets, dict[str, list[int]]] | None:
    """The state the earlier live runs of the trace at `path` left (committed events
    only), the newest run's id, every bracket entry and exit they placed, closed ones
    too (an entry with what its exits cover, and whether a fill of it came after its
    last cover), and by symbol the indexes in its trades of the exchange's history their
    syncs found (not their own fills); None if there is no earlier live run."""
    from ...trace import iter_events
    from ...trace.layout import TraceError
    state = State(s.state.quote, 0.0, assets={sym: AssetInstance(ai.market)
                                               for sym, ai in s.state.assets.items()})
    live, run = False, 0
    brackets: dict[str, Order] = {}
    lost: set[str] = set()  # entries filled after their last cover (or never covered)
    history: dict[str, list[int]] = {sym: [] for sym in state.assets}
    try:
        events = list(iter_events(path, run=None))
    except TraceError:  # a new, empty trace
        return None
    for e in events:
        kind, payload = e["kind"], e["payload"] or {}
        if kind == "strategy_started":
            live = payload.get("mode") == "live"
            run = e.get("run") or run
        if not live:
            continue
        found = kind == "sync_result" and "carried_from" not in payload
        before = {sym: len(ai.trades) for sym, ai in state.assets.items()} if found else {}
        apply_event(state, kind, payload)
        for sym, n in before.items():
            history[sym] += range(n, len(state.assets[sym].trades))
        if kind == "order_created":
            o = state.assets[payload["symbol"]].orders.get(str(payload["id"]))
            if o is not None and (o.legs or o.entry):
                brackets.setdefault(o.id, o)
        elif kind == "legs_covered":  # a done entry is no longer in the state: kept here
            o = brackets.get(str(payload["id"]))
            if o is not None and o.legs:
                o.legs = {**o.legs, "covered": float(payload["covered"])}
            lost.discard(str(payload["id"]))
        elif kind == "trade_created" and str(payload.get("order_id")) in brackets:
            o = brackets[str(payload["order_id"])]
            if o.legs:
                lost.add(o.id)
    return (state, run, Brackets(list(brackets.values()), lost), history) if run else None


def last_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The newest committed `checkpoint` event of the trace at `path`, or None."""
    from ...trace import trace_tail
    from ...trace.layout import TraceError
    try:
        found = trace_tail(path, n=1, kinds="checkpoint")
    except TraceError:  # a new, empty trace
        return None
    return found[-1] if found else None


async def carry_over(session: LiveSession) -> Brackets:
    """The strategy's variables from the newest checkpoint, then the earlier runs' fills
    and open orders carried into this run and settled (see the module docstring); the
    bracket entries and exits they placed, for `finish_exits`."""
    path = getattr(session.recorder, "path", None)
    if path is None:
        return Brackets([], set())
    await session.supervisor.restore(await asyncio.to_thread(last_checkpoint, path))
    found = await asyncio.to_thread(earlier_state, path, session.s)
    if found is None:
        return Brackets([], set())
    before, run, brackets, history = found
    trades = [trade_payload(t) for t in before.trades]
    if trades:
        await session.emit("sync_result", {"trades": trades, "carried_from": run})
    # the new run held no trades before these: their indexes are the earlier state's
    session.history_trades = {sym: set(ks) for sym, ks in history.items() if ks}
    carried = [o for ai in before.assets.values() for o in ai.orders.values()]
    for o in carried:
        payload = order_payload(o)
        await session.emit("order_created", {**payload, "carried_from": run}, o.symbol)
        if o.status is OrderStatus.UNKNOWN:
            await session.emit("order_updated", {"id": o.id, "symbol": o.symbol,
                                                 "status": "unknown",
                                                 "reason": "unknown when the run ended"},
                               o.symbol)
    await session.carry_windows(before.risk, run, session.s.clock.now())
    now = session.s.state.assets
    # a carried exit as this run holds it: settling it may find it never placed
    brackets.orders = [now[o.symbol].orders.get(o.id, o) if o.entry else o
                       for o in brackets.orders]
    for o in carried:
        if o.route == "emulated" and not o.triggered:
            continue  # held by the engine, on no exchange: emulation.rearm watches it
        await settle(session, session.s.state.assets[o.symbol], o.id)
    for ai in session.s.state.assets.values():
        await finish_amends(session, ai)
    return brackets


async def finish_amends(session: LiveSession, ai: AssetInstance) -> None:
    """Finish the amends an earlier run left halfway: a stop and its replacement both open
    (it ended between placing the replacement and cancelling the old stop, or before the
    replacement's unknown outcome was settled). Two stops open in one group are only ever
    that (a pair is a limit and a stop). Once the newest is known open, the older ones
    are cancelled, as the amend would have done; while it is unknown, both stay (a gap
    could fire both) and the run is told."""
    groups: dict[str, list[Order]] = {}
    for o in ai.orders.values():
        if o.is_conditional and o.is_open and o.group:
            groups.setdefault(o.group, []).append(o)
    for stops in groups.values():
        if len(stops) < 2:
            continue
        newest, older = stops[-1], stops[:-1]
        names = ", ".join(o.id for o in older)
        if newest.status is not OrderStatus.OPEN:
            session.tell_error(f"amend:{ai.symbol}", (
                f"stop {names} and its replacement {newest.id} are both open after a restart, "
                f"and the replacement's outcome is unknown: both stay until it is known"))
            continue
        async with session.engine.mutating():
            held = [o for o in older if emulation.unsent(session, o)]
            emulation.close(session, ai, held)
        sent = [o.id for o in older if o not in held]
        if sent and not await orders.cancel(session, ai, None, sent, waitfor=session.waitfor,
                                            confirm=True):
            session.tell_error(f"amend:{ai.symbol}", (
                f"stop {names}, replaced by {newest.id} before a restart, is to be cancelled, "
                "but its cancel is not confirmed: both may be open"))
            continue
        session.tell_error(f"amend:{ai.symbol}", (
            f"stop {names}, replaced by {newest.id} before a restart, is cancelled now"))


_NEVER_PLACED = (OrderStatus.NOT_PLACED, OrderStatus.REJECTED)


async def finish_exits(session: LiveSession, brackets: Brackets) -> None:
    """Place the exits an earlier run left halfway: a bracket entry's recorded `covered`
    (what its exits cover, recorded before they are placed: contingent.release_legs)
    above what the exits that name it cover: the run ended between the two. Every exit
    that was placed counts, open, filled, cancelled or of unknown outcome (an OCO pair
    once); one never placed or refused does not. Only what the earlier runs recorded is
    compared (this run's own covers and exits agree already). The difference is placed
    now, through the pipeline (`contingent.restore_exits`), or reported when it cannot
    be; the run is told either way. A fill the run ended before covering is covered now
    (`_cover_lost`). A pair of exits with one leg open and the other never placed
    (refused, or the run ended between the two) is told too. After the sync: they need
    the balances."""
    covers: dict[str, dict[str, float]] = {}
    pairs: dict[str, list[Order]] = {}
    for o in brackets.orders:
        if o.entry and o.status not in _NEVER_PLACED:
            legs = covers.setdefault(o.entry, {})
            legs[o.group or o.id] = max(legs.get(o.group or o.id, 0.0), o.amount)
            if o.pair == "exits":
                pairs.setdefault(o.group, []).append(o)
    for group, (*more, leg) in pairs.items():
        if not more and leg.is_open:
            session.tell_error(f"exits:{leg.symbol}", (
                f"bracket_order: the exits of entry {leg.entry}: only the "
                f"{'stop' if leg.is_conditional else 'limit'} leg {leg.id} of pair {group} is "
                "open; the other was never placed (refused, or the run ended between the two)"))
    for entry in brackets.orders:
        if not entry.legs or not entry.legs.get("named"):
            continue  # not an entry, or one of an older trace: its exits do not name it
        ai = session.s.state.assets[entry.symbol]
        amount = floor_to_step(entry.legs.get("covered", 0.0) -
                               sum(covers.get(entry.id, {}).values()), ai.market.amount_step)
        if amount > 0:
            told = await session.engine.run_strategy(
                lambda: contingent.restore_exits(session.e, ai, entry, amount))
            session.tell_error(f"exits:{ai.symbol}", told)
        if entry.id in brackets.lost:
            await _cover_lost(session, ai, entry)


async def _cover_lost(session: LiveSession, ai: AssetInstance, entry: Order) -> None:
    """The exits of what a bracket `entry` filled before the earlier run ended, when it
    ended before covering it (between the fill and its `legs_covered`). An entry that
    was done then has its exits placed for that part: what its fills bought (on spot,
    less the fees taken in the base: `covered` never counts those) that no cover
    counts. One it left open (carried into this run, where a fill or its end while no
    run was up covered it already) gets them as a fill of this run would
    (`release_legs`: a part that reaches the minimum)."""
    if entry.is_open:
        now = ai.orders.get(entry.id)
        if now is None or not now.legs:  # done since: its end placed the exits
            return
        before = now.legs.get("covered", 0.0)
        placed = await session.engine.run_strategy(
            lambda: contingent.release_legs(session.e, ai, now))
        if placed is not None:
            session.tell_error(f"exits:{ai.symbol}", (
                f"bracket_order: entry {entry.id} filled {now.filled - before:g} that no exit "
                f"covered (the run ended before covering it); placed now"))
        return
    m = ai.market
    got = entry.filled
    if not m.is_derivative and entry.side is Side.BUY:  # less the fees taken in the base
        got -= sum(t.fee for t in ai.trades if t.order_id == entry.id and t.fee_currency == m.base)
    amount = floor_to_step(got - (entry.legs or {}).get("covered", 0.0), m.amount_step)
    if amount > 0:
        told = await session.engine.run_strategy(
            lambda: contingent.restore_exits(session.e, ai, entry, amount, recorded=False))
        session.tell_error(f"exits:{ai.symbol}", told)


async def settle(session: LiveSession, ai: AssetInstance, oid: str) -> None:
    """Ask the exchange about a carried order and apply what it says."""
    order = ai.orders.get(oid)
    if order is None:
        return
    o = await orders.sync_order(session, ai, order, gone=True, where="resume", origin=REST)
    if o is orders.GONE:
        if order.route == "emulated":
            session.trigger_unsent.add(oid)  # it fired and was never sent: rearm sends it
        else:
            await orders.close_missing(session, ai, oid)
        return
    if o is None:  # could not ask: it stays as it is, for the reconciliation
        return
    order = ai.orders.get(oid)
    behind = float(o.get("filled") or 0.0) - (order.filled if order is not None else 0.0)
    if order is not None and behind > ai.market.amount_step * 1e-6:
        # still open, with fills while the run was down: an open order's report brings
        # its `filled`, not its fills; they are fetched (never emulated: it goes on)
        trades = await reports.fetch_trades(session, ai, o)
        state = session.s.state
        await reports.take(session, "trades", REST, {"symbol": ai.symbol, "order": o.get("id")},
                           lambda: session.fills.fetched(state, ai, order, o, trades))
