"""Live mode's emulated conditional orders: the engine holds the trigger, watches the
asset's public trades, and sends the order when it fires.

An emulated order (`route` "emulated": its venue cannot hold the type) is in the state
like any order and in the trace (order_created with its route). Its trades watcher
(`triggers:SYMBOL`) fires it by the rules of `runtime.triggers`: `order_triggered` is
applied at once (so no later trade fires it twice), then the order is sent as the market
(or limit) order it has become, under its own id as the client order id: the exchange's
reports of that order are the conditional order's fills.

A restart on the trace of earlier runs re-arms the emulated orders they left open: the
run's resume (resume.py) carries them over like any open order (the same id, trigger,
trailing reference and group) but asks no exchange about them, and `rearm` watches
their trades again. One that had fired was sent under its own id: the resume settles it
on the exchange like any order.

When the stream stalls or comes back after a loss, the watcher fetches the recent trades
by REST. Their range is where the market went while nobody watched: an order that range
reaches fires now, at the last price, and the run is told (`trigger_late` in the trace and
`on_error("trigger_late:SYMBOL", ...)` and a "trigger" alert), since its fill may be far
from its trigger.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from ...core.instances import AssetInstance
from ...core.orders import Order
from ...core.precision import floor_to_step
from ..runtime import triggers
from ..runtime.watchers import Watcher
from . import orders


async def watch(session: Any, symbol: str) -> None:
    """Start (or keep) the public trades watcher that fires `symbol`'s emulated orders."""
    name = f"triggers:{symbol}"
    w = session.watchers.get(name)
    if w is None:
        w = Watcher(session, name, session.stream("watch_trades", symbol),
                    lambda: session.request("fetch_trades", symbol),
                    lambda d: on_trades(session, symbol, d, late=False), symbol=symbol,
                    stall_after=session.stall_after,
                    process_rest=lambda d: on_trades(session, symbol, d, late=True))
        session.watchers[name] = w
    w.start()


def _fresh(session: Any, symbol: str, trades: Iterable[Mapping[str, Any]]) -> list[float]:
    """The prices of the trades newer than any seen before, oldest first."""
    seen = session.trigger_seen.get(symbol, 0)
    rows = sorted((int(t.get("timestamp") or 0), float(t["price"])) for t in trades or ()
                  if t.get("price") and int(t.get("timestamp") or 0) > seen)
    if rows:
        session.trigger_seen[symbol] = rows[-1][0]
    return [p for _, p in rows]


async def on_trades(session: Any, symbol: str, trades: Any, late: bool) -> None:
    """Fire what these public trades reach; `late`: a REST batch after a stall or a loss."""
    ai = session.e.state.assets.get(symbol)
    prices = _fresh(session, symbol, trades)
    if ai is None or not prices or not triggers.held(ai):
        return
    fired: list[tuple[Order, list[str]]] = []
    alerts: list[str] = []
    async with session.engine.mutating():
        fire = lambda a, o, p: _trigger(session, a, o, p, fired)  # noqa: E731
        if late:
            triggers.catch_up(session.e, ai, min(prices), max(prices), prices[-1], fire,
                              alerts.append)
        else:
            for price in prices:
                triggers.on_prices(session.e, ai, price, price, fire)
    for message in alerts:
        await session.record("trigger_late", {"symbol": symbol, "message": message}, symbol)
        session.tell_error(f"trigger_late:{symbol}", message)
        session.alert("trigger", message, {"symbol": symbol})
    for order, pair in fired:
        await _send_fired(session, ai, order, pair)


def _trigger(session: Any, ai: AssetInstance, order: Order, price: float,
             fired: list[tuple[Order, list[str]]]) -> None:
    """Mark `order` fired (the caller holds the state lock); it is sent after, with the
    ids of its OCO pair's other legs: those open now, and the group's first leg (its id
    is the group's), which may have filled and closed already."""
    session.apply_now("order_triggered", {"id": order.id, "symbol": ai.symbol,
                                          "trigger": order.trigger, "price": price,
                                          "client_id": order.id,
                                          "ts": session.e.clock.now()}, ai.symbol)
    pair = {o.id for o in ai.orders.values()
            if order.group and o.group == order.group and o is not order}
    if order.group and order.group != order.id:
        pair.add(order.group)
    fired.append((order, sorted(pair)))


async def _send_fired(session: Any, ai: AssetInstance, order: Order, pair: list[str]) -> None:
    """Send a fired order. The other legs of its OCO pair are cancelled first (on the
    exchange they hold the funds); if one of them filled meanwhile (the exchange matched
    it before the cancel arrived), the pair sells (or buys) once: the fired order goes
    only for what that fill left (`_rest_of_pair`)."""
    others = [oid for oid in pair if oid in ai.orders and ai.orders[oid].is_open]
    if others:
        await orders.cancel(session, ai, None, others, waitfor=session.waitfor, confirm=True)
    taken = math.fsum(t.amount for t in ai.trades if t.order_id in pair)
    if taken > 0:
        await _rest_of_pair(session, ai, order, taken)
        return
    request = {"type": order.type.value, "symbol": ai.symbol, "trigger": order.trigger,
               "emulated": True}
    await orders.submit(session, ai, order, request, 0.0, False)


async def _rest_of_pair(session: Any, ai: AssetInstance, order: Order, taken: float) -> None:
    """The other leg of `order`'s pair filled `taken` before it could be cancelled: the
    fired order is closed unsent, and what the pair still had to sell (or buy) goes as a
    market order of its own (none when that fill took it all, or left less than the
    market's minimum). The run is told (on_error "oco:SYMBOL")."""
    from ...actions.gate import new_order
    from ...actions.requests import MarketOrder

    m = ai.market
    left = floor_to_step(order.remaining - taken, m.amount_step)
    message = (f"{order.type.value} {order.id} fired after the other leg of its OCO pair "
               f"filled {taken:g} of {order.remaining:g} on the exchange: ")
    coro = None
    async with session.engine.mutating():
        session.apply_now("order_closed", {"id": order.id, "symbol": ai.symbol,
                                           "status": "canceled"}, ai.symbol)
        if left <= 0 or left < m.min_amount:
            message += "nothing more is sent" + (f" ({left:g} left is below the minimum)"
                                                 if left > 0 else "")
        else:
            req = MarketOrder(ai, left, order.side, order.pos, order.reduce_only)
            rest = new_order(ai, req, order.trigger, session.e.clock.now())
            rest.id = session.new_client_id()
            coro = orders.send(session, ai, rest, {**req.payload(), "rest_of": order.id},
                               0.0, False)
            message += f"the rest, {left:g}, goes at the market as {rest.id}"
    session.tell_error(f"oco:{ai.symbol}", message)
    if coro is not None:
        await coro


async def rearm(session: Any) -> list[Order]:
    """Watch again the emulated orders the run holds at its start (carried over from the
    earlier runs of its trace); returns them."""
    held = [o for ai in session.e.assets for o in triggers.held(ai) if o.route == "emulated"]
    for sym in {o.symbol for o in held}:
        await watch(session, sym)
    return held
