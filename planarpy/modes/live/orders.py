"""Live orders: submit with a local client id, cancel by it, wait for fills.

`submit` takes a built Order and sends it. An answer the exchange gave settles the order
at once (a reply, or a refusal); a submit that got no answer leaves it UNKNOWN, to be
settled by client id (see inflight.py). An order is never sent twice: a retry goes out
only after a refusal that left nothing behind (a rate limit).
"""

from __future__ import annotations

import asyncio
import enum
import time
from typing import TYPE_CHECKING, Any, Coroutine, Final, Mapping

import attrs
import ccxt

from ...core.instances import AssetInstance
from ...core.orders import (CONDITIONAL, LIMIT_AFTER_TRIGGER, Order, OrderStatus, OrderType, Side,
                            TimeInForce, Trade, missing)
from ...core.precision import is_on_step, round_to_step
from . import inflight, reports
from .reconciler import REPLY

if TYPE_CHECKING:  # the session calls this module: imported for the annotations only
    from .session import LiveSession

# how long an order that protects a position is sent again after rate limits (429): a
# stop put back after its replacement failed, an emulated stop that fired; until it is
# placed the position has no protection
PROTECTIVE_RESEND = 30.0
# errors after which the order surely does not exist on the exchange (rate-limit and
# time-stamp refusals included: the request was turned away unprocessed)
REFUSED = (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.BadSymbol,
           ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended,
           ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.InvalidNonce)


def market_of(session: LiveSession, symbol: str) -> Any:
    """The client's market `symbol` (its filters: what a venue may hold natively)."""
    return (getattr(session.client, "markets", None) or {}).get(symbol)


def shape(session: LiveSession, ai: AssetInstance,
          order: Order) -> tuple[str, float | None, dict[str, Any]]:
    """What create_order sends for `order`: ccxt's type, the price and extra params. A
    native conditional order goes with its venue's trigger parameters; an emulated one
    that fired goes as the market (or limit) order it has become."""
    if order.type in CONDITIONAL:
        if order.route == "native":
            n = session.venue.native(order, market_of(session, ai.symbol))
            return n.type, n.price, n.params
        if order.type in LIMIT_AFTER_TRIGGER:
            return "limit", order.price, {}
        return "market", None, {}
    return order.type.value, order.price if order.type is OrderType.LIMIT else None, {}


def quantity(ai: AssetInstance, amount: float) -> float:
    """What the exchange is asked to trade for `amount`: on the market's amount step, the
    step multiple it stands for. The gate passed it as on the step within float noise,
    and ccxt truncates amounts to the step, so a hair below a multiple (a computed size,
    or a rest after a fill) would lose a whole step, which the sim trades."""
    step = ai.market.amount_step
    return round_to_step(amount, step) if is_on_step(amount, step) else amount


def _params(session: LiveSession, ai: AssetInstance, order: Order, kind: str) -> dict[str, Any]:
    params: dict[str, Any] = session.venue.order_params(order.id)
    if kind == "limit":
        if order.tif is TimeInForce.POST_ONLY:
            params["postOnly"] = True
        else:
            params["timeInForce"] = order.tif.value
    if order.reduce_only and ai.market.is_derivative:
        params["reduceOnly"] = True
    return params


def send(session: LiveSession, ai: AssetInstance, order: Order, request: Mapping[str, Any],
         waitfor: float, synced: bool) -> Coroutine[Any, Any, Trade | Any | None]:
    """The live executor's entry: `submit` of a built order that passed the gate, to run
    on the engine's loop. The caller holds the state lock: the order is created locally
    here (order_created), before it is sent and under its client id, so that the next
    order's gate counts it and exchange reports racing the reply find it; and it is in
    flight from here on, so that a cancel issued right after it, before the loop has run
    the submit, waits for it."""
    order = session.apply_now("order_created", order, ai.symbol).order or order
    session.flights.start(order, request)
    return submit(session, ai, order, request, waitfor, synced)


async def submit(session: LiveSession, ai: AssetInstance, order: Order, request: Mapping[str, Any],
                 waitfor: float, synced: bool, resend_for: float = 0.0) -> Trade | Any | None:
    """Send an order created locally (`send`) and wait up to `waitfor` for it to fill:
    its first Trade, `missing` (open with no fill seen, or of unknown outcome), or None
    (refused, or closed with no fill). A rate limit (429) is waited out and the order
    sent again within `waitfor`, or within `resend_for` if that is longer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(waitfor, 0.0)
    waiter = session.waiters[order.id] = asyncio.Event()
    session.callers[order.id] = session.engine.calling()
    try:
        return await _submit(session, ai, order, request, deadline, waiter, synced,
                             max(deadline, loop.time() + resend_for))
    finally:
        session.waiters.pop(order.id, None)
        session.callers.pop(order.id, None)
        session.first_trades.pop(order.id, None)


async def _submit(session: LiveSession, ai: AssetInstance, order: Order, request: Mapping[str, Any],
                  deadline: float, waiter: asyncio.Event, synced: bool,
                  resend_until: float) -> Trade | Any | None:
    loop = asyncio.get_running_loop()
    flight = session.flights.start(order, request)
    session.watch_orders(ai.symbol)
    try:
        reply = await _send(session, ai, order, resend_until)
    except REFUSED as e:
        await _fail(session, ai, order, request, session.describe(e))
        session.flights.seen(order)
        return None
    except Exception as e:  # no answer: the order may exist or not
        await session.report_error(e, where="create_order", symbol=ai.symbol, request=request)
        await inflight.go_unknown(session, ai, flight, session.describe(e))
        if synced:
            await inflight.settle_until(session, flight, deadline)
        return _result(session, order)
    await reports.on_order(session, reply, REPLY)
    remaining = deadline - loop.time()
    if order.id not in session.first_trades and order.is_open and remaining > 0:
        try:
            await asyncio.wait_for(waiter.wait(), remaining)
        except asyncio.TimeoutError:
            pass
    if synced and order.id not in session.first_trades and order.is_open:
        await sync_order(session, ai, order)
    result = _result(session, order)
    if result is None:  # closed by the exchange with no fill: IOC/FOK killed, no liquidity
        async with session.engine.mutating():
            session.e.reject(ai, f"the exchange closed the order ({order.status.value}) "
                                 "with no fill", request)
    return result


async def _send(session: LiveSession, ai: AssetInstance, order: Order, deadline: float) -> Any:
    """create_order, sent again only after a refusal that left nothing behind: a rate
    limit (429), after the wait the exchange asked for and within the deadline. Any
    other failure raises: a refusal (REFUSED), or no answer (the outcome is unknown)."""
    loop = asyncio.get_running_loop()
    kind, price, extra = shape(session, ai, order)
    params = {**_params(session, ai, order, kind), **extra}
    attempt = 0
    while True:
        try:
            return await session.request("create_order", ai.symbol, kind, order.side.value,
                                         quantity(ai, order.remaining), price, params)
        except ccxt.InvalidOrder as e:
            # a try before this one did reach the exchange after all: its order is ours
            if attempt and session.venue.is_duplicate(e):
                return await inflight.lookup(session, ai, order)
            raise
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as e:
            attempt += 1
            wait = session.venue.retry_after(session.client)
            if session.venue.is_ban(e) or loop.time() + wait >= deadline or attempt >= 5:
                raise
            await asyncio.sleep(wait)


async def replace(session: LiveSession, ai: AssetInstance, old: Order, new: Order,
                  request: Mapping[str, Any]) -> Trade | Any | None:
    """Move a native stop with the venue's cancel-replace: one request that cancels `old`
    and places `new`, so the exchange holds one or the other at every trade. Refused as a
    whole: `old` stays. An answer that one part failed (the venue reads it, whatever
    ccxt class it comes as) is applied part by part (`_replaced_in_part`). No answer: the
    new stop is unknown, the old one looked up."""
    order = (await session.emit("order_created", new, ai.symbol)).order or new
    session.watch_orders(ai.symbol)
    how = session.venue.replacement(order)
    params = {**how.params, "cancelOrigClientOrderId": old.id,
              **session.venue.order_params(order.id)}
    params["newClientOrderId"] = order.id
    flight = session.flights.start(order, request)
    try:
        reply = await session.request("edit_order", None, ai.symbol, how.type,
                                      order.side.value, quantity(ai, order.remaining), how.price,
                                      params)
    except Exception as e:
        parts = session.venue.replace_outcome(e)
        if parts is not None:
            await _replaced_in_part(session, ai, old, order, request, session.describe(e),
                                    *parts)
            return _result(session, order)
        if isinstance(e, REFUSED):
            await _fail(session, ai, order, request, session.describe(e))
            session.flights.seen(order)
            return None
        # no answer: the new stop may exist, the old one may be gone
        await session.report_error(e, where="edit_order", symbol=ai.symbol, request=request)
        await inflight.go_unknown(session, ai, flight, session.describe(e))
        await sync_order(session, ai, old)
        if old.status is OrderStatus.CANCELED and order.status is OrderStatus.UNKNOWN:
            # the exchange executed the request, so the new stop's fate is decided: a
            # "does not exist" now means it was refused after the cancel
            flight.window_end = time.monotonic()
            await inflight.settle(session, flight)
            if order.status is OrderStatus.NOT_PLACED:
                again = await _replant(session, ai, old)
                async with session.engine.mutating():
                    session.e.reject(ai, f"amend_stop: the exchange cancelled stop {old.id} "
                                         f"and its replacement {order.id} was never placed: "
                                         f"{_again(again)}", request)
        return _result(session, order)
    await session.emit("order_closed", {"id": old.id, "symbol": ai.symbol,
                                        "status": "canceled"}, ai.symbol)
    await reports.on_order(session, reply, REPLY)
    return _result(session, order)


async def _replaced_in_part(session: LiveSession, ai: AssetInstance, old: Order, new: Order,
                            request: Mapping[str, Any], reason: str, cancelled: bool,
                            placed: bool) -> None:
    """Apply what the exchange says each part of a failed cancel-replace did. `old`
    cancelled and `new` refused (Binance's "partially failed"): a stop like `old` is
    placed again at once, and the run told. `new` placed and `old` not cancelled: `new`
    is open (looked up for its state); `old`, whose cancel failed (it may have filled),
    is looked up; amend_stop cancels it if it is still open. Neither: `old` stays."""
    if cancelled:
        await session.emit("order_closed", {"id": old.id, "symbol": ai.symbol,
                                            "status": "canceled"}, ai.symbol)
    if placed:
        session.flights.seen(new)
        await sync_order(session, ai, new)
    else:
        if cancelled:
            again = await _replant(session, ai, old)
            reason += f"; the exchange cancelled stop {old.id}: {_again(again)}"
        await _fail(session, ai, new, request, reason)
        session.flights.seen(new)
    if not cancelled:
        await sync_order(session, ai, old)


async def _replant(session: LiveSession, ai: AssetInstance, old: Order) -> Order:
    """Place a stop like `old` again under a new client id: the order, as it ended up."""
    again = attrs.evolve(old, id=session.new_client_id(), filled=0.0, cost=0.0, fee=0.0,
                         committed=0.0, amount=old.remaining, status=OrderStatus.OPEN)
    again = (await session.emit("order_created", again, ai.symbol)).order or again
    await submit(session, ai, again, {"type": again.type.value, "replant": old.id}, 0.0, False,
                 resend_for=PROTECTIVE_RESEND)
    return again


def _again(again: Order) -> str:
    """What became of the stop placed again (its send may still be without an answer)."""
    if again.status is OrderStatus.UNKNOWN:
        return f"placed again as {again.id}, whose outcome is unknown yet"
    return f"placed again as {again.id}" if again.is_open else \
        f"it could not be placed again ({again.id})"


async def _fail(session: LiveSession, ai: AssetInstance, order: Order, request: Mapping[str, Any],
                reason: str) -> None:
    if order.is_open:
        await session.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                            "status": "rejected"}, ai.symbol)
    async with session.engine.mutating():
        session.e.reject(ai, reason, request)


def _result(session: LiveSession, order: Order) -> Trade | Any | None:
    """The order's first fill, else `missing` while it is open (or unknown), else None."""
    trade = session.first_trades.get(order.id)
    if trade is not None:
        return trade
    return missing if order.is_open else None


class Lookup(enum.Enum):
    """What `sync_order` learnt besides the order's report."""

    GONE = "the exchange knows no order by that id"


GONE: Final = Lookup.GONE


async def sync_order(session: LiveSession, ai: AssetInstance, order: Order, *,
                     gone: bool = False, where: str = "sync_order",
                     origin: str = REPLY) -> Mapping[str, Any] | Lookup | None:
    """Force-fetch an order by client id and apply what the exchange says (and, if it
    ended, its fills): the exchange's view of it. None when the exchange could not be
    asked (the error reported to the run, at `where`). With `gone`, the exchange's
    "does not exist" is `GONE`, for the caller to settle; without, an error like any."""
    try:
        o = await inflight.lookup(session, ai, order)
    except Exception as e:
        if gone and session.venue.does_not_exist(e):
            return GONE
        await session.report_error(e, where=where, symbol=ai.symbol)
        return None
    await reports.on_order(session, o, origin)
    return o


async def cancel(session: LiveSession, ai: AssetInstance, side: Side | None, ids: list[str] | None, *,
                 waitfor: float, confirm: bool, retry: bool = False) -> bool:
    """Cancel open orders on the exchange; True once each target is cancelled (with
    `confirm`: closed here, whatever the exchange answered) or closed anyway.

    An order still in flight is cancelled once the exchange knows it (waited for until
    `waitfor` runs out; after that the cancel goes as soon as it is known, and this
    returns False). With `retry`, a cancel the exchange did not take (a 5xx, a 429, no
    answer) is sent again by `inflight.check` until the order is closed."""
    deadline = asyncio.get_running_loop().time() + max(waitfor, 0.0)
    orders = {o.id: o for o in list(ai.orders.values()) + session.flights.queued(ai.symbol)}
    targets = [o for o in orders.values()
               if (side is None or o.side is side) and (ids is None or o.id in ids)]
    ok = True
    for order in targets:
        done = await _cancel(session, ai, order, deadline, confirm)
        if not done and retry and order.is_open:
            session.flights.cancel_later(order)
        ok = done and ok
    return ok


async def _cancel(session: LiveSession, ai: AssetInstance, order: Order, deadline: float,
                  confirm: bool) -> bool:
    flight = session.flights.get(order.id)
    if flight is not None and not flight.known.is_set():
        flight.cancel = True
        flight.waiting += 1
        try:
            left = deadline - asyncio.get_running_loop().time()
            await asyncio.wait_for(flight.known.wait(), max(left, 0.0))
        except asyncio.TimeoutError:
            return False  # still in flight: `inflight.check` cancels it once it is known
        finally:
            flight.waiting -= 1
        flight.cancel = False
        order = flight.order  # the state's own object, once created there
        session.flights.seen(order)
    if not order.is_open:
        return True
    return await cancel_known(session, ai, order, confirm)


async def cancel_known(session: LiveSession, ai: AssetInstance, order: Order, confirm: bool) -> bool:
    """Cancel an order the exchange knows, by client id. "No such open order" (-2011 on
    Binance) is not taken as done: the order is looked up, and its state applied."""
    params = session.venue.by_client_id(order.id)
    if order.route == "native" and not order.triggered:  # an algo order, where it is one
        params.update(session.venue.conditional_params(order))
    try:
        reply = await session.request("cancel_order", None, ai.symbol, params)
    except Exception as e:
        if not session.venue.cancel_unknown(e):
            await session.report_error(e, where="cancel_order", symbol=ai.symbol,
                                       request={"type": "cancel", "symbol": ai.symbol,
                                                "ids": [order.id]})
            return False
        await _settle_gone(session, ai, order)  # filled or cancelled meanwhile?
        return not order.is_open
    # the reply's clientOrderId may be the cancel request's own id: match on the original
    await reports.on_order(session, dict(reply, clientOrderId=order.id), REPLY)
    if confirm and order.is_open:
        await sync_order(session, ai, order)
        return not order.is_open
    return True


async def _settle_gone(session: LiveSession, ai: AssetInstance, order: Order) -> None:
    """The exchange has no open order by `order`'s id: look it up and apply what it says;
    one it says does not exist at all is closed here (`close_missing`), and the run told."""
    if await sync_order(session, ai, order, gone=True) is GONE:
        await close_missing(session, ai, order.id)
        session.tell_error(f"cancel:{ai.symbol}", (
            f"{order.id} was open here, but the exchange knows no order by that id: it "
            "is closed as not on the exchange"))


async def close_missing(session: LiveSession, ai: AssetInstance, oid: str) -> None:
    """Close an order the exchange says does not exist."""
    await session.emit("order_closed", {"id": oid, "symbol": ai.symbol, "status": "canceled",
                                        "reason": "not on the exchange"}, ai.symbol)


async def set_leverage(session: LiveSession, ai: AssetInstance, leverage: float) -> bool:
    """Set the leverage on the exchange (the venue's own rule first), then locally."""
    reason = session.venue.leverage_error(leverage)
    if reason is None:
        try:
            await session.request("set_leverage", session.venue.leverage_arg(leverage), ai.symbol)
        except Exception as e:
            reason = session.describe(e)
    if reason is not None:
        async with session.engine.mutating():
            session.e.reject(ai, reason, {"type": "leverage", "symbol": ai.symbol,
                                          "leverage": leverage})
        return False
    await session.emit("leverage_updated", {"symbol": ai.symbol, "leverage": float(leverage)},
                       ai.symbol)
    return True
