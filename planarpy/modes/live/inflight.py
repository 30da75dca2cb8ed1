"""Orders in flight: sent and not yet known to exist, or of unknown outcome.

An order is in flight from the moment it is sent until a report of the exchange (its
reply, a stream message, a lookup) shows that it exists or that it ended. When the submit
gets no answer (a timeout, a 5xx, a dropped connection) its outcome is UNKNOWN: an event,
so that replay reproduces it. An unknown order keeps its funds, `call` returns `missing`
for it, and it is settled by its client id:

- any report of it (the stream, a lookup) finds it: it is open again, with its fills;
- the exchange's definite "does not exist", to a lookup sent once the submit window has
  passed (the time during which the exchange may still execute the lost request: on
  Binance recvWindow after the request's time stamp), closes it as never placed;
- "could not ask" (a timeout, a 5xx, a 429, a dropped connection) settles nothing.

The watchers settle it when the stream shows it; `check`, every `inflight_every`
seconds, asks. A cancel of an order in flight waits until the order is known and then
cancels it by client id; if its wait runs out, `check` sends the cancel once it is known.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

import attrs

from ...core.instances import AssetInstance
from ...core.orders import Order, OrderStatus
from . import reports
from .reconciler import REST

if TYPE_CHECKING:  # the session calls this module: imported for the annotations only
    from .session import LiveSession


@attrs.define(slots=True, eq=False)
class Flight:
    """One order in flight."""

    order: Order
    request: Mapping[str, Any]  # what the strategy asked for (for on_order_error)
    known: asyncio.Event = attrs.Factory(asyncio.Event)
    window_end: float | None = None  # monotonic; set once the outcome is unknown
    cancel: bool = False  # a cancel is due as soon as the order is known
    waiting: int = 0  # cancels waiting for `known`
    settled: list[Callable[[], None]] = attrs.Factory(list)  # run once it is known

    @property
    def unknown(self) -> bool:
        return self.window_end is not None and not self.known.is_set()


class Flights:
    """The orders in flight of one session, by local order id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Flight] = {}

    def start(self, order: Order, request: Mapping[str, Any]) -> Flight:
        """`order` is about to be sent (from any thread: before it is handed to the loop,
        so that a cancel right after it finds it)."""
        flight = self.by_id.get(order.id)
        if flight is None:
            flight = self.by_id[order.id] = Flight(order, request)
        return flight

    def get(self, order_id: str) -> Flight | None:
        return self.by_id.get(order_id)

    def cancel_later(self, order: Order) -> None:
        """Send `order`'s cancel again from `check`, until the order is closed: its cancel
        was not taken (one still in flight has its cancel due already)."""
        flight = self.by_id.get(order.id)
        if flight is None:
            flight = self.by_id[order.id] = Flight(order, {})
            flight.known.set()
        flight.cancel = True

    def seen(self, order: Order) -> None:
        """A report of `order` came: it exists (or it ended)."""
        flight = self.by_id.get(order.id)
        if flight is not None:
            flight.known.set()
            if not (flight.cancel and order.is_open):
                del self.by_id[order.id]
            then, flight.settled = flight.settled, []
            for fn in then:
                fn()

    def unknown(self) -> list[Flight]:
        return [f for f in list(self.by_id.values()) if f.unknown]

    def due_cancels(self) -> list[Flight]:
        """Known orders whose cancel nobody is waiting to send."""
        return [f for f in list(self.by_id.values())
                if f.cancel and f.known.is_set() and not f.waiting]

    def queued(self, symbol: str) -> list[Order]:
        """Orders of `symbol` handed to the loop and not yet created locally."""
        return [f.order for f in list(self.by_id.values())
                if f.order.symbol == symbol and not f.known.is_set() and f.order.is_open]

    def __len__(self) -> int:
        return len(self.by_id)


async def lookup(session: LiveSession, ai: AssetInstance, order: Order) -> Mapping[str, Any]:
    """The exchange's view of `order`, asked by client id (raises what the exchange does)."""
    return await session.request("fetch_order", *reports.lookup_args(session, order))


async def go_unknown(session: LiveSession, ai: AssetInstance, flight: Flight, reason: str) -> None:
    """The submit got no answer: the order's outcome is unknown until settled (unless a
    report of it came meanwhile)."""
    flight.window_end = time.monotonic() + session.venue.submit_window(session.client)
    order = flight.order
    if not flight.known.is_set() and order.status is OrderStatus.OPEN and order.id in ai.orders:
        await session.emit("order_updated", {"id": order.id, "symbol": ai.symbol,
                                             "status": OrderStatus.UNKNOWN.value,
                                             "reason": reason}, ai.symbol)


async def settle(session: LiveSession, flight: Flight) -> bool:
    """Ask the exchange about an unknown order once; whether it is settled now."""
    order = flight.order
    ai = session.e.state.assets[order.symbol]
    if order.status is not OrderStatus.UNKNOWN:  # a report found it meanwhile, or it ended
        session.flights.seen(order)
        return True
    asked = time.monotonic()
    try:
        found = await lookup(session, ai, order)
    except Exception as e:
        if not session.venue.does_not_exist(e):
            return False  # could not ask: nothing learnt
        if flight.window_end is None or asked < flight.window_end:
            return False  # it may still arrive
        await never_placed(session, ai, flight)
        return True
    await reports.on_order(session, found, REST)
    return order.status is not OrderStatus.UNKNOWN


async def never_placed(session: LiveSession, ai: AssetInstance, flight: Flight) -> None:
    """Close an unknown order the exchange never received, and tell the strategy."""
    order = flight.order
    if order.is_open:
        await session.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                            "status": OrderStatus.NOT_PLACED.value}, ai.symbol)
        async with session.engine.mutating():
            session.e.reject(ai, f"order {order.id} was never placed: the exchange does not "
                                 "know it, and its submit can no longer arrive", flight.request,
                             counted=True)  # as its submit's exchange error
    session.flights.seen(order)


async def settle_until(session: LiveSession, flight: Flight, deadline: float) -> None:
    """Ask about an unknown order until it is settled or the loop time `deadline`."""
    loop = asyncio.get_running_loop()
    wait = 0.05
    while not await settle(session, flight):
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(wait, left))
        wait = min(wait * 2, 1.0)


async def settle_then(session: LiveSession, flight: Flight, wait: float,
                      then: Callable[[], None]) -> None:
    """`settle_until` for `wait` seconds; if the order is still unknown then, `then` runs
    (as strategy code, on the loop) once it is settled, whenever that is."""
    await settle_until(session, flight, asyncio.get_running_loop().time() + wait)
    if flight.unknown:
        engine = session.engine
        flight.settled.append(lambda: engine.fire(engine.run_strategy(then)))


async def check(session: LiveSession) -> None:
    """Settle what can be settled: ask about each unknown order; send the cancels due.
    Nothing while the exchange's last rate limit asked for a pause (`limited_until`)."""
    from . import orders
    if time.monotonic() < session.limited_until:
        return
    for flight in session.flights.unknown():
        await settle(session, flight)
    for flight in session.flights.due_cancels():
        order = flight.order
        ai = session.e.state.assets[order.symbol]
        if not order.is_open or await orders.cancel_known(session, ai, order, confirm=False):
            flight.cancel = False
            session.flights.seen(order)  # else: tried again next time


async def sweep(session: LiveSession) -> None:
    """Look for orders that appeared open on the exchange (placed by hand, or this
    strategy's and unknown here): the open orders of every asset, as REST reports."""
    for ai in session.e.assets:
        await reports.on_orders(session, await reports.fetch_open(session, ai.symbol), REST)
