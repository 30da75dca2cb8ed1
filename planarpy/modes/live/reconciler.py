"""The live fill reconciler: which of the exchange's reports change the state, and how.

An order's news reaches live mode three ways: the order's reply, the user-data stream,
and REST (a lookup, a fetch after a reconnect, the stall guard, the in-flight check). The
`Reconciler` reads every report, whichever way it came, and returns a `Verdict`: the
events to apply, in order, or why there are none. Its rules:

- a fill is applied once, whichever way it arrives first (by trade id; a fill an order's
  end implies but no report brought is emulated once, at the end);
- a balance or position older than a fill already applied is skipped (the stream lags
  the replies); a fill that a balance or position applied before it shows already is
  recorded but moves them no further (the snapshot came first: the streams race one
  another and the replies). `snapshots.py` holds these rules, the same millisecond too;
- an order of unknown outcome that any report shows is found (back to open);
- an order open on the exchange and unknown here is adopted if it is this strategy's, or
  placed by hand and hand orders are adopted; another strategy's is left alone. A
  conditional order is adopted as what it is, native (`Venue.conditional`: its type and
  trigger), unless planarpy does not follow its type;
- a native conditional order that the exchange holds apart from its orders (an algo
  order: `Venue.algo_report`) is followed through the order it places when it fires: the
  algo's reports say that it fired (`order_triggered`) and which order it placed, whose
  reports then bring the fills and the end. An algo that ended (FINISHED) never closes
  the order itself: its order's fills might not be in yet (`Verdict.child` says to
  fetch that order). Only an algo that ended without placing one (cancelled, expired,
  rejected) closes it.

It owns the state these rules need: exchange order ids, fills whose order is not known
yet, and (in `snapshots`) what the last snapshots showed and the fills that moved each
figure. It does no I/O and applies nothing: the session applies the events under its
state lock, and tells it what was applied.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import attrs

from ...core.accounting import fee_rate
from ...core.apply import Effect, trade_from_payload
from ...core.instances import AssetInstance, State
from ...core.orders import Order, OrderStatus
from ...exchanges.client import HAND_ORDERS
from ...exchanges.venues import Venue
from ...exchanges.venues.base import AlgoReport
from . import translate
from .snapshots import STREAM, Snapshots, balance_figures, position_figures

REPLY, REST = "reply", "rest"  # where a report came from (or STREAM)
Event = tuple[str, dict[str, Any], "str | None"]  # kind, payload, symbol
PENDING_ORDERS = 500  # orders whose fills are kept until the order is known


@attrs.frozen(slots=True)
class Verdict:
    """What one report changes: `events` to apply in order; `reason` says why there are
    none (or why the events, e.g. an adoption); `order` is the local order it is about;
    `unfilled` is the amount a closed order filled beyond the fills known (fetch them)."""

    events: tuple[Event, ...] = ()
    reason: str | None = None
    order: Order | None = None
    unfilled: float = 0.0
    child: str = ""  # the exchange id of the order a fired algo order placed, to fetch


class Reconciler:
    """Decides what each exchange report changes (see the module docstring)."""

    def __init__(self, venue: Venue, prefix: str, hand_orders: str = "adopt",
                 clock: Callable[[], int] = lambda: 0) -> None:
        if hand_orders not in HAND_ORDERS:
            raise ValueError(f"hand_orders must be one of {HAND_ORDERS}, not {hand_orders!r}")
        self.venue = venue
        self.prefix = prefix  # the client ids of this strategy's orders start with it
        self.hand_orders = hand_orders
        self.exchange_ids: dict[str, str] = {}  # exchange order id -> local order id
        self.pending: dict[str, list[Mapping[str, Any]]] = {}  # exchange order id -> fills
        self.snapshots = Snapshots()
        self.clock = clock  # the exchange's time, ms

    # ---- whose orders -----------------------------------------------------------------
    def owner(self, client_id: str) -> str:
        """"mine" (this strategy's prefix), "other" (another planarpy strategy's) or
        "hand" (placed by hand, or by a planarpy from before ids named their strategy)."""
        if client_id.startswith(self.prefix):
            return "mine"
        return "other" if translate.is_planarpy_id(client_id) else "hand"

    def owns(self, client_id: str) -> bool:
        """Whether an order is this strategy's to keep: its own, or one placed by hand
        when hand orders are adopted."""
        who = self.owner(client_id)
        return who == "mine" or (who == "hand" and self.hand_orders == "adopt")

    def _adoption(self, client_id: str) -> str | None:
        """Why an order unknown here is adopted, or None if it is not."""
        who = self.owner(client_id)
        if who == "mine":
            return "adopted: this strategy's order, not known here"
        if who == "hand" and self.hand_orders == "adopt":
            return "adopted: placed by hand"
        return None

    def _left(self, client_id: str) -> str:
        if self.owner(client_id) == "other":
            return "another strategy's order"
        return "placed by hand: ignored (hand_orders = 'ignore')"

    def local_order(self, ai: AssetInstance, o: Mapping[str, Any]) -> Order | None:
        """The local order a ccxt order (or trade: it has an `order` key) is about: by
        exchange id, else by client id (which teaches the exchange id)."""
        exid = str((o.get("order") if "order" in o else o.get("id")) or "")
        lid = self.exchange_ids.get(exid) or self.venue.client_id(o)
        order = ai.orders.get(lid) if lid else None
        if order is not None and exid:
            self.exchange_ids.setdefault(exid, lid)
        return order

    # ---- orders -----------------------------------------------------------------------
    def order(self, state: State, o: Mapping[str, Any], source: str) -> Verdict:
        """An order report: the order's reply, a stream update, a REST fetch."""
        ai = state.assets.get(o.get("symbol"))
        if ai is None:
            return Verdict(reason="not in the strategy's universe")
        trades = list(o.get("trades") or ())
        if source == STREAM:
            self.streamed(trades)
        order = self.local_order(ai, o)
        if order is None:
            return self._not_local(ai, o)
        if not order.is_open:
            return Verdict(reason="closed here already", order=order)
        algo = self.venue.algo_report(o)
        if algo is not None:
            return self._algo(state, ai, order, o, algo, source)
        events = _found(order)
        fills = trades + self.pending.pop(str(o.get("id") or ""), [])
        added = self._fills(state, ai, order, fills, int(o.get("timestamp") or 0), events)
        status = translate.STATUS.get(o.get("status") or "open")
        if status is not None:
            unfilled = float(o.get("filled") or 0.0) - order.filled - added
            if unfilled > ai.market.amount_step * 1e-6:
                return Verdict(tuple(events), _shown(events), order, unfilled)
            if not _completes(order, added):
                events.append(_closed(order, status))
        return Verdict(tuple(events), _shown(events) if events else "no change", order)

    def _algo(self, state: State, ai: AssetInstance, order: Order, o: Mapping[str, Any],
              algo: AlgoReport, source: str) -> Verdict:
        """A report of a native algo order (see the module docstring)."""
        events = _found(order)
        if algo.ended is not None:
            events.append(_closed(order, OrderStatus(algo.ended)))
            return Verdict(tuple(events), f"algo {algo.status}: it placed no order", order)
        if not algo.fired:
            return Verdict(tuple(events), None if events else "no change", order)
        self.exchange_ids.setdefault(algo.child, order.id)
        if not order.triggered:
            price = float(o.get("triggerPrice") or order.trigger or 0.0)
            events.append(("order_triggered", {
                "id": order.id, "symbol": ai.symbol, "trigger": price, "price": price,
                "child": algo.child, "ts": self.clock()}, ai.symbol))
        self._fills(state, ai, order, self.pending.pop(algo.child, []), 0, events)
        # its order's own report closes it: fetched when the algo says it is done, or
        # when the stream that brings that order's reports may not have (REST)
        fetch = algo.status == "FINISHED" or source != STREAM
        return Verdict(tuple(events), f"algo {algo.status}: its order {algo.child} brings "
                       "the fills and the end", order, child=algo.child if fetch else "")

    def _not_local(self, ai: AssetInstance, o: Mapping[str, Any]) -> Verdict:
        exid = str(o.get("id") or "")
        if exid in self.exchange_ids:
            return Verdict(reason="closed here already")
        cid = self.venue.client_id(o) or exid
        if translate.STATUS.get(o.get("status") or "open") is not None:
            return Verdict(reason="not open, and not known here" if self.owns(cid)
                           else self._left(cid))
        why = self._adoption(cid)
        if why is None:
            return Verdict(reason=self._left(cid))
        self.exchange_ids[exid] = cid
        self.pending.pop(exid, None)  # fills so far are in the order's `filled`
        payload = translate.order_payload(self.venue, ai, o, cid, ai.leverage)
        found = self.venue.conditional(o)
        if found is not None:
            algo = self.venue.algo_report(o)
            if algo is not None and algo.fired:
                return Verdict(reason=f"algo order {algo.status}: it fired already")
            if not found.kind:
                return Verdict(reason="a conditional order of a type planarpy does not follow")
            payload.update(translate.conditional_payload(found))
        return Verdict((("order_created", payload, ai.symbol),), why)

    def fetched(self, state: State, ai: AssetInstance, order: Order, o: Mapping[str, Any],
                trades: Iterable[Mapping[str, Any]]) -> Verdict:
        """The fills of closed order `o` among `trades` fetched by REST."""
        if not order.is_open:
            return Verdict(reason="closed here already", order=order)
        exid = str(o.get("id") or "")
        events: list[Event] = []
        self._fills(state, ai, order, [t for t in trades if str(t.get("order")) == exid], 0,
                    events)
        return Verdict(tuple(events), _shown(events) if events else "no new fill", order)

    def close(self, state: State, ai: AssetInstance, order: Order,
              o: Mapping[str, Any]) -> Verdict:
        """Closed order `o`'s end: the fill it implies beyond those applied (emulated from
        its `filled` and `cost`), then its status."""
        if not order.is_open:
            return Verdict(reason="closed here already", order=order)
        events: list[Event] = []
        added = 0.0
        emulated = translate.emulated_trade(ai, order, o, fee_rate(ai, order))
        if emulated is not None:
            events.append(self._fill(state, ai, order, emulated, "trade_emulated"))
            added = emulated["amount"]
        if not _completes(order, added):
            events.append(_closed(order, translate.STATUS.get(o.get("status") or "closed")
                                  or OrderStatus.CLOSED))
        return Verdict(tuple(events), _shown(events), order)

    def _fills(self, state: State, ai: AssetInstance, order: Order,
               trades: list[Mapping[str, Any]], when: int, events: list[Event]) -> float:
        """Append a trade_created event for each new fill of `order`; their amount."""
        added, seen = 0.0, set()
        for t in trades:
            tid = str(t.get("id") or "")
            if tid and (tid in ai.trade_ids or tid in seen):
                continue
            seen.add(tid)
            payload = translate.trade_payload(ai, t, order.id, order.side, order.pos,
                                              order.leverage, when)
            events.append(self._fill(state, ai, order, payload))
            added += payload["amount"]
        return added

    def _fill(self, state: State, ai: AssetInstance, order: Order, payload: dict[str, Any],
              kind: str = "trade_created") -> Event:
        """A fill's event, flagged with the parts the last snapshots show already
        (decided here, once: what a snapshot holds, a fill found in it uses up)."""
        payload.update(self.snapshots.in_snapshots(state, ai, order, trade_from_payload(payload)))
        return (kind, payload, ai.symbol)

    # ---- trades -----------------------------------------------------------------------
    def trade(self, state: State, t: Mapping[str, Any], source: str) -> Verdict:
        """One of my trades, from the trades stream or a REST fetch."""
        ai = state.assets.get(t.get("symbol"))
        if ai is None:
            return Verdict(reason="not in the strategy's universe")
        if source == STREAM:
            self.streamed([t])
        tid = str(t.get("id") or "")
        if tid and tid in ai.trade_ids:
            return Verdict(reason="duplicate: applied already")
        order = self.local_order(ai, t)
        if order is None:
            return self._orphan(t)
        if not order.is_open:
            return Verdict(reason="its order closed here already", order=order)
        events = _found(order)
        events.append(self._fill(state, ai, order, translate.trade_payload(
            ai, t, order.id, order.side, order.pos, order.leverage)))
        return Verdict(tuple(events), _shown(events), order)

    def _orphan(self, t: Mapping[str, Any]) -> Verdict:
        """A trade of no local order: kept until its order is known, unless it cannot be."""
        exid = str(t.get("order") or "")
        cid = self.venue.client_id(t)
        if exid in self.exchange_ids:
            return Verdict(reason="its order closed here already")
        if cid and not self.owns(cid):
            return Verdict(reason=self._left(cid))
        if not exid:
            return Verdict(reason="no order id")
        kept = self.pending.setdefault(exid, [])
        if all(k.get("id") != t.get("id") for k in kept):
            kept.append(t)
        while len(self.pending) > PENDING_ORDERS:  # the oldest orders' go first
            del self.pending[next(iter(self.pending))]
        return Verdict(reason="its order is not known here (yet): kept")

    # ---- balances and positions -------------------------------------------------------
    def balance(self, state: State, b: Mapping[str, Any], source: str) -> Verdict:
        payload = translate.balance_payload(self.venue, b)
        figures = balance_figures(state, payload["total"])
        return self._snapshot(figures, b, source, ("balance_updated", payload, None))

    def position(self, state: State, p: Mapping[str, Any], source: str) -> Verdict:
        ai = state.assets.get(p.get("symbol"))
        if ai is None:
            return Verdict(reason="not in the strategy's universe")
        payload = translate.position_payload(self.venue, ai, p)
        return self._snapshot(position_figures(ai, payload), p, source,
                              ("position_updated", payload, ai.symbol))

    def _snapshot(self, figures: Mapping[str, tuple[float, float]], update: Mapping[str, Any],
                  source: str, event: Event) -> Verdict:
        """A balance or position update: applied, unless stale (see snapshots.py)."""
        ms = self.venue.event_time(update)
        why = self.snapshots.stale(figures, ms, source)
        if why is not None:
            return Verdict(reason=why)
        self.snapshots.took(figures, ms, self.clock())
        return Verdict((event,))

    def baseline(self) -> None:
        """The start-up sync is done: what its snapshots found is where the run starts."""
        self.snapshots.baseline()

    # ---- what was applied -------------------------------------------------------------
    def applied(self, state: State, payload: Mapping[str, Any], effect: Effect,
                source: str) -> None:
        """Learn from an applied event: the figures a fill moved, and whether the stream
        has it."""
        if effect.trade is not None and effect.symbol is not None:
            self.snapshots.applied(state, payload, effect.trade, source)

    def streamed(self, trades: Iterable[Mapping[str, Any]]) -> None:
        """The stream brought these fills: balances it sends from now on include them."""
        self.snapshots.streamed(trades)


def _found(order: Order) -> list[Event]:
    """An order of unknown outcome that a report shows exists: it is open again."""
    if order.status is not OrderStatus.UNKNOWN:
        return []
    return [("order_updated", {"id": order.id, "symbol": order.symbol, "status": "open",
                               "reason": "found on the exchange"}, order.symbol)]


def _closed(order: Order, status: OrderStatus) -> Event:
    return ("order_closed", {"id": order.id, "symbol": order.symbol, "status": status.value},
            order.symbol)


def _shown(events: Iterable[Event]) -> str | None:
    """Why a verdict's fills move less than they would: snapshots show them already."""
    parts = {part for _, payload, _ in events for part in ("balance", "position")
             if payload.get(f"in_{part}")}
    if not parts:
        return None
    return (f"fill in the {' and '.join(sorted(parts))} snapshot already: recorded, "
            "counted once")


def _completes(order: Order, added: float) -> bool:
    """Whether fills of `added` more leave nothing of the order (apply_fill closes it)."""
    return added > 0 and order.filled + added >= order.amount * (1 - 1e-9)
