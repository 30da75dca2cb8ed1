"""Applying what the exchange reports: orders, trades, balances and positions.

Every report (an order's reply, a stream message, an item of a REST answer) goes through
`take`: under the state lock the reconciler decides what it changes, the trace records
the report with that verdict (applied, or skipped and why: stale, duplicate, another
strategy's...), and the events are applied. So the trace holds every message received,
including those that change nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

import ccxt

from ...core.instances import AssetInstance
from ...core.orders import Order
from . import translate
from .reconciler import REST, STREAM, Verdict

if TYPE_CHECKING:  # the session calls this module: imported for the annotations only
    from .session import LiveSession

# errors after which a request may have worked or not, and asking again may work:
# ccxt's OperationFailed covers network errors, timeouts and "execution status unknown"
TRANSIENT = (ccxt.OperationFailed,)


async def take(session: LiveSession, channel: str, source: str, item: Mapping[str, Any],
               decide: Callable[[], Verdict]) -> Verdict:
    """Decide what report `item` changes, record it with the verdict, apply the events."""
    async with session.engine.mutating():
        verdict = decide()
        if session.recorder is not None:
            await session.record("exchange_message", _message(session, channel, source, item,
                                                              verdict), item.get("symbol"))
        order = verdict.order
        before = snapshot(order) if order is not None else None
        state = session.e.state
        for kind, payload, symbol in verdict.events:
            session.fills.applied(state, payload, session.apply_now(kind, payload, symbol), source)
        if order is not None:
            session.order_activity = time.monotonic()
            session.flights.seen(order)
            if verdict.events:
                ai = session.e.state.assets[order.symbol]
                session.e.invoke(session.s.on_order_update, ai, before, snapshot(order))
        elif verdict.events and verdict.events[0][0] == "order_created":  # adopted
            session.watch_orders(verdict.events[0][2])
    return verdict


def _message(session: LiveSession, channel: str, source: str, item: Mapping[str, Any],
             verdict: Verdict) -> dict[str, Any]:
    return {"channel": channel, "source": source,
            "exchange_ms": session.venue.event_time(item),
            "outcome": "applied" if verdict.events else "skipped", "reason": verdict.reason,
            "events": [kind for kind, _, _ in verdict.events],
            "data": translate.message_summary(session.venue, channel, item)}


def snapshot(order: Order) -> dict[str, Any]:
    """An order as on_order_update sees it."""
    return {"id": order.id, "status": order.status.value, "filled": order.filled,
            "cost": order.cost, "amount": order.amount, "price": order.price}


# ---- orders and trades ---------------------------------------------------------------
async def on_orders(session: LiveSession, orders: Any, source: str = STREAM) -> None:
    for o in orders or []:
        await on_order(session, o, source)


async def on_order(session: LiveSession, o: Mapping[str, Any], source: str) -> Verdict:
    """Apply an order report; a closed order's fills that no report brought are fetched,
    and if they still do not come, emulated."""
    state = session.e.state
    verdict = await take(session, "orders", source, o,
                         lambda: session.fills.order(state, o, source))
    order = verdict.order
    if verdict.child and order is not None and order.is_open:
        await follow_child(session, state.assets[order.symbol], verdict.child)
        return verdict
    if verdict.unfilled > 0 and order is not None and order.is_open:
        ai = state.assets[order.symbol]
        trades = await fetch_trades(session, ai, o)
        if trades:
            await take(session, "trades", REST, {"symbol": ai.symbol, "order": o.get("id")},
                       lambda: session.fills.fetched(state, ai, order, o, trades))
        await take(session, "orders", REST, o, lambda: session.fills.close(state, ai, order, o))
    return verdict


async def follow_child(session: LiveSession, ai: AssetInstance, child: str) -> None:
    """Fetch the order a fired algo order placed and apply its report (its fills, its
    end) as any order's; if it cannot be asked now, the next report or REST round will."""
    try:
        o = await session.request("fetch_order", child, ai.symbol)
    except Exception as e:
        await session.report_error(e, where="fetch_order", symbol=ai.symbol)
        return
    await on_order(session, o, REST)


async def fetch_open(session: LiveSession, symbol: str) -> list[Any]:
    """The open orders of `symbol` on the exchange, with the native conditional orders it
    keeps apart (algo orders: see `Venue.algo_params`)."""
    found = list(await session.request("fetch_open_orders", symbol))
    ai = session.e.state.assets.get(symbol)
    params = session.venue.algo_params(ai is not None and ai.market.is_derivative)
    if params is not None:
        found += await session.request("fetch_open_orders", symbol, None, None, params)
    return found


def on_exchange(ai: AssetInstance) -> set[str]:
    """The ids of `ai`'s open orders that the exchange should list open: all but the
    emulated conditional orders the engine holds until they fire."""
    return {i for i, o in ai.orders.items() if o.route != "emulated" or o.triggered}


async def fetch_trades(session: LiveSession, ai: AssetInstance, o: Mapping[str, Any]) -> list[Any]:
    """The account's trades of the asset since order `o` was placed (the stream may not
    have delivered its fills); none if they cannot be fetched."""
    try:
        return list(await session.request("fetch_my_trades", ai.symbol, o.get("timestamp"), 100))
    except (ccxt.NotSupported, *TRANSIENT) as e:
        await session.report_error(e, where="fetch_my_trades", symbol=ai.symbol)
        return []


async def on_trades(session: LiveSession, trades: Any, source: str = STREAM) -> None:
    state = session.e.state
    for t in trades or []:
        await take(session, "trades", source, t, lambda t=t: session.fills.trade(state, t, source))


# ---- balances and positions ----------------------------------------------------------
async def on_balance(session: LiveSession, b: Mapping[str, Any], source: str = STREAM) -> None:
    """Apply balances, unless older than a fill already applied."""
    state = session.e.state
    await take(session, "balance", source, b, lambda: session.fills.balance(state, b, source))


async def on_positions(session: LiveSession, positions: Any, source: str = STREAM) -> None:
    state = session.e.state
    for p in positions or []:
        await take(session, "positions", source, p, lambda p=p: session.fills.position(state, p, source))


# ---- the REST fallbacks of the orders and trades streams -----------------------------
async def fetch_order_updates(session: LiveSession, symbols: list[str]) -> list[Any]:
    """The open orders of `symbols`, plus every order still open locally that the
    exchange no longer lists as open (fetched by its exchange id)."""
    found: dict[str, Any] = {}
    for symbol in symbols:
        ai = session.e.state.assets[symbol]
        listed = {str(o.get("id")): o for o in await fetch_open(session, symbol)}
        ids = session.fills.exchange_ids
        known = {ids.get(x) or session.venue.client_id(o) for x, o in listed.items()}
        for exid, lid in list(ids.items()):
            order = ai.orders.get(lid)
            if order is None or lid in known:
                continue
            known.add(lid)  # asked once (a fired algo order has two exchange ids)
            try:
                listed[exid] = await session.request("fetch_order", *lookup_args(
                    session, order, exid))
            except ccxt.OrderNotFound:
                continue
        found.update(listed)
    return list(found.values())


def lookup_args(session: LiveSession, order: Order, exid: str | None = None) -> tuple[Any, ...]:
    """fetch_order's arguments for `order`: a native algo order by its client id (with the
    venue's params: the algo, which names the order it placed once it fired), any other
    by exchange id `exid`, else by client id."""
    params = session.venue.conditional_params(order) if order.route == "native" else {}
    if params:
        return None, order.symbol, {**session.venue.by_client_id(order.id), **params}
    if exid:
        return exid, order.symbol
    return None, order.symbol, session.venue.by_client_id(order.id)


async def fetch_trade_updates(session: LiveSession, symbols: list[str]) -> list[Any]:
    """The recent trades of `symbols`."""
    out: list[Any] = []
    for symbol in symbols:
        out += await session.request("fetch_my_trades", symbol, None, 50)
    return out
