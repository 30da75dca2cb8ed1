"""Live orders: submit with a local client id, wait for fills, reconcile with the exchange."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping

import ccxt

from ...core.accounting import fee_rate, funds_error, leverage_error
from ...core.apply import order_payload
from ...core.instances import AssetInstance
from ...core.orders import (Order, OrderType, PositionSide, Side, TimeInForce, Trade, missing)
from . import translate

# errors after which the order surely does not exist on the exchange (rate-limit and
# time-stamp refusals included: the request was turned away unprocessed)
REFUSED = (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.BadSymbol,
           ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended,
           ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.InvalidNonce)
# errors after which the request may have worked or not, and a retry may work: ccxt's
# OperationFailed covers network errors, timeouts and "execution status unknown"
TRANSIENT = (ccxt.OperationFailed,)


def _params(session: Any, ai: AssetInstance, order: Order) -> dict[str, Any]:
    params: dict[str, Any] = {"clientOrderId": order.id}
    if order.type is OrderType.LIMIT:
        if order.tif is TimeInForce.POST_ONLY:
            params["postOnly"] = True
        else:
            params["timeInForce"] = order.tif.value
    if order.reduce_only and ai.market.is_derivative:
        params["reduceOnly"] = True
    return params


async def submit(session: Any, ai: AssetInstance, order: Order, request: Mapping[str, Any],
                 waitfor: float, synced: bool) -> Trade | Any | None:
    """Send an order and wait up to `waitfor` for it to fill.

    The order is committed locally (order_created) before it is sent, under its client
    id, so that exchange events racing the reply find it. A timeout retries with the same
    client id, which the exchange refuses as a duplicate: then the order is looked up.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(waitfor, 0.0)
    waiter = session.waiters[order.id] = asyncio.Event()
    try:
        return await _submit(session, ai, order, request, deadline, waiter, synced)
    finally:
        session.waiters.pop(order.id, None)
        session.first_trades.pop(order.id, None)


async def _submit(session: Any, ai: AssetInstance, order: Order, request: Mapping[str, Any],
                  deadline: float, waiter: asyncio.Event, synced: bool) -> Trade | Any | None:
    loop = asyncio.get_running_loop()
    order = (await session.emit("order_created", order_payload(order), ai.symbol)).order or order
    session.watch_orders(ai.symbol)
    try:
        reply = await _send(session, ai, order, deadline)
    except REFUSED as e:
        await _fail(session, ai, order, request, session.describe(e))
        return None
    except Exception as e:  # unknown outcome: the order may exist; the sync will find it
        await session.report_error(e, where="create_order", symbol=ai.symbol)
        if synced and not await _lookup(session, ai, order):
            await _fail(session, ai, order, request, session.describe(e))
            return None
        return _result(session, order)
    await on_order(session, reply, from_reply=True)
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
            session.s.reject(ai, f"the exchange closed the order ({order.status.value}) "
                                 "with no fill", request)
    return result


async def _send(session: Any, ai: AssetInstance, order: Order, deadline: float) -> Any:
    """create_order, made safe to retry: after an unclear failure (a timeout, a dropped
    connection) the order is first looked up by its client id, and sent again (with the
    same id) only if the exchange does not know it."""
    loop = asyncio.get_running_loop()
    price = order.price if order.type is OrderType.LIMIT else None
    attempt = 0
    unclear = False  # whether an earlier try may have placed the order
    while True:
        try:
            return await session.request("create_order", ai.symbol, order.type.value,
                                         order.side.value, order.amount, price,
                                         _params(session, ai, order))
        except ccxt.InvalidOrder as e:
            # an earlier try did reach the exchange: spot says "Duplicate order sent.",
            # USD-M "ClientOrderId is duplicated."
            if attempt and "duplicate" in str(e).lower():
                return await session.request("fetch_order", None, ai.symbol,
                                             {"origClientOrderId": order.id})
            raise
        except ccxt.InvalidNonce:  # refused, and the clock resync did not help
            raise
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as e:
            # refused unprocessed (429, or 418: banned): nothing to look up. Send again
            # only after the wait the exchange asked for, and only within the deadline
            attempt += 1
            wait = _retry_after(session)
            if _banned(e) or loop.time() + wait >= deadline or attempt >= 5:
                if unclear:  # this try was refused, an earlier one may have got through
                    raise ccxt.ExchangeNotAvailable(f"gave up after {session.describe(e)}") from e
                raise
            await asyncio.sleep(wait)
        except TRANSIENT:
            attempt += 1
            unclear = True
            for wait in (0.0, 0.1, 0.3):  # the first try may still be on its way
                await asyncio.sleep(wait)
                found = await _find(session, ai, order)
                if found is not None:
                    return found
            if loop.time() >= deadline or attempt >= 5:
                raise


def _retry_after(session: Any) -> float:
    """The seconds a rate-limited exchange asked us to wait (its Retry-After), 1 by default."""
    headers = getattr(session.client, "last_response_headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else 1.0
    except ValueError:
        return 1.0


def _banned(e: Exception) -> bool:
    """Whether a rate-limit refusal is an IP ban (HTTP 418: every request lengthens it)."""
    text = str(e).lower()
    return "banned" in text or " 418 " in text


async def _find(session: Any, ai: AssetInstance, order: Order) -> Any:
    """The exchange's view of `order` by client id, or None if it does not know it (yet)."""
    try:
        return await session.request("fetch_order", None, ai.symbol,
                                     {"origClientOrderId": order.id})
    except (ccxt.OrderNotFound, *TRANSIENT):
        return None


async def _lookup(session: Any, ai: AssetInstance, order: Order) -> bool:
    """Find an order by its client id after an unclear submit; apply what is found."""
    try:
        found = await session.request("fetch_order", None, ai.symbol, {"origClientOrderId": order.id})
    except Exception:
        return False
    await on_order(session, found, from_reply=True)
    return True


async def _fail(session: Any, ai: AssetInstance, order: Order, request: Mapping[str, Any],
                reason: str) -> None:
    if order.is_open:
        await session.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                            "status": "rejected"}, ai.symbol)
    async with session.engine.mutating():
        session.s.reject(ai, reason, request)


def _result(session: Any, order: Order) -> Trade | Any | None:
    """The order's first fill, else `missing` while it is open, else None."""
    trade = session.first_trades.get(order.id)
    if trade is not None:
        return trade
    return missing if order.is_open else None


def local_order(session: Any, ai: AssetInstance, o: Mapping[str, Any]) -> Order | None:
    """The local order a ccxt order (or trade, which has an `order` key) belongs to.

    Looked up by exchange id first (learnt from replies and order events), then by client
    id; each match teaches the exchange id, so later trades without a client id map too.
    """
    exid = str((o.get("order") if "order" in o else o.get("id")) or "")
    lid = session.exchange_ids.get(exid) or translate.client_id(o)
    if lid and exid:
        session.exchange_ids.setdefault(exid, lid)
    return ai.orders.get(lid) if lid else None


async def on_orders(session: Any, orders: Any) -> None:
    for o in orders or []:
        await on_order(session, o)


async def on_order(session: Any, o: Mapping[str, Any], from_reply: bool = False) -> None:
    """Apply a ccxt order update (`from_reply`: a REST answer, not the stream): its
    embedded fills, then its end when it is done."""
    ai = session.s.state.assets.get(o.get("symbol"))
    if ai is None:
        return
    if not from_reply:  # even for an order closed here already: its fills came by REST
        for t in o.get("trades") or []:
            session.seen_fill(t)
    order = local_order(session, ai, o)
    if order is None:
        return
    session.order_activity = time.monotonic()
    before = _snapshot(order)
    exid = str(o.get("id"))
    for t in list(o.get("trades") or []) + session.pending_trades.pop(exid, []):
        if order.is_open:
            emit = session.emit_rest_fill if from_reply else session.emit
            await emit("trade_created", _fill(ai, t, order, int(o.get("timestamp") or 0)),
                       ai.symbol)
    status = translate.STATUS.get(o.get("status") or "open")
    if status is not None and order.is_open:
        # an order that ends with more filled than the trades we have: fetch them, and if
        # they still do not come, emulate the rest. Not while it is open: its real trade
        # may still come, and would count twice beside an emulated one
        if float(o.get("filled") or 0.0) > order.filled + ai.market.amount_step * 1e-6:
            await _fetch_trades(session, ai, order, o)
            emulated = translate.emulated_trade(ai, order, o, fee_rate(ai, order))
            if emulated is not None and order.is_open:
                await session.emit_rest_fill("trade_emulated", emulated, ai.symbol)
        if order.is_open:
            await session.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                                "status": status.value}, ai.symbol)
    session.s.invoke(session.s.on_order_update, ai, before, _snapshot(order))


def _fill(ai: AssetInstance, t: Mapping[str, Any], order: Order, when: int = 0) -> dict[str, Any]:
    """The trade_created payload of ccxt trade `t` of local `order`."""
    return translate.trade_payload(ai, t, order.id, order.side, order.pos, order.leverage, when)


def _snapshot(order: Order) -> dict[str, Any]:
    return {"id": order.id, "status": order.status.value, "filled": order.filled,
            "cost": order.cost, "amount": order.amount, "price": order.price}


async def on_trades(session: Any, trades: Any) -> None:
    for t in trades or []:
        await on_trade(session, t)


async def on_trade(session: Any, t: Mapping[str, Any]) -> None:
    """Apply one of my trades, or keep it until its order's exchange id is known."""
    ai = session.s.state.assets.get(t.get("symbol"))
    if ai is None:
        return
    session.seen_fill(t)  # even when its order is closed here already (filled by REST)
    order = local_order(session, ai, t)
    if order is None:  # its order may not be known yet; or it is another strategy's
        exid = str(t.get("order") or "")
        if exid and exid not in session.exchange_ids:
            _keep_pending(session.pending_trades, exid, t)
        return
    session.order_activity = time.monotonic()
    if str(t.get("id") or "") in ai.trade_ids:  # the stream's copy of a fill applied already
        return
    before = _snapshot(order)
    effect = await session.emit("trade_created", _fill(ai, t, order), ai.symbol)
    if effect.trade is not None:
        session.s.invoke(session.s.on_order_update, ai, before, _snapshot(order))


PENDING_ORDERS = 500  # orders whose trades are kept until the order is known


def _keep_pending(pending: dict[str, list[Any]], exid: str, t: Mapping[str, Any]) -> None:
    """Keep a trade (once) for when its order becomes known; the oldest orders' trades go
    first, since on a shared key most belong to other strategies and never will."""
    kept = pending.setdefault(exid, [])
    if all(k.get("id") != t.get("id") for k in kept):
        kept.append(t)
    while len(pending) > PENDING_ORDERS:
        del pending[next(iter(pending))]


async def _fetch_trades(session: Any, ai: AssetInstance, order: Order, o: Mapping[str, Any]) -> None:
    """Fetch the order's trades by REST (the stream may not have delivered them)."""
    try:
        trades = await session.request("fetch_my_trades", ai.symbol, o.get("timestamp"), 100)
    except (ccxt.NotSupported, *TRANSIENT):
        return
    exid = str(o.get("id"))
    for t in trades:
        if str(t.get("order")) == exid and order.is_open:
            await session.emit_rest_fill("trade_created", _fill(ai, t, order), ai.symbol)


async def sync_order(session: Any, ai: AssetInstance, order: Order) -> None:
    """Force-fetch an order and its trades: the `synced` last resort."""
    try:
        o = await session.request("fetch_order", None, ai.symbol, {"origClientOrderId": order.id})
    except Exception as e:
        await session.report_error(e, where="sync_order", symbol=ai.symbol)
        return
    session.exchange_ids.setdefault(str(o.get("id")), order.id)
    if float(o.get("filled") or 0.0) > order.filled:
        await _fetch_trades(session, ai, order, o)
    await on_order(session, o, from_reply=True)


async def fetch_order_updates(session: Any, symbols: list[str]) -> list[Any]:
    """REST fallback of the orders stream: the open orders of `symbols`, plus every order
    still open locally that the exchange no longer lists as open."""
    found: dict[str, Any] = {}
    for symbol in symbols:
        ai = session.s.state.assets[symbol]
        listed = {str(o.get("id")): o for o in await session.request("fetch_open_orders", symbol)}
        for exid, lid in list(session.exchange_ids.items()):
            if lid in ai.orders and exid not in listed:
                try:
                    listed[exid] = await session.request("fetch_order", exid, symbol)
                except ccxt.OrderNotFound:
                    continue
        found.update(listed)
    return list(found.values())


async def fetch_trade_updates(session: Any, symbols: list[str]) -> list[Any]:
    """REST fallback of the my-trades stream: the recent trades of `symbols`."""
    out: list[Any] = []
    for symbol in symbols:
        out += await session.request("fetch_my_trades", symbol, None, 50)
    return out


async def cancel(session: Any, ai: AssetInstance, side: Side | None, ids: list[str] | None, *,
                 waitfor: float, confirm: bool) -> bool:
    """Cancel open orders on the exchange; with `confirm`, wait until each is closed."""
    targets = [o for o in list(ai.orders.values())
               if (side is None or o.side is side) and (ids is None or o.id in ids)]
    ok = True
    for order in targets:
        try:
            reply = await session.request("cancel_order", None, ai.symbol,
                                          {"origClientOrderId": order.id})
        except ccxt.OrderNotFound:
            await sync_order(session, ai, order)
            continue
        except Exception as e:
            await session.report_error(e, where="cancel_order", symbol=ai.symbol)
            ok = False
            continue
        # the reply's clientOrderId is the cancel request's own id: match on the original
        reply = dict(reply, clientOrderId=order.id)
        await on_order(session, reply, from_reply=True)
        if confirm and order.is_open:
            await sync_order(session, ai, order)
            ok = ok and not order.is_open
    return ok


async def set_leverage(session: Any, ai: AssetInstance, leverage: float) -> bool:
    reason = leverage_error(ai, leverage)
    if reason is None:
        try:
            # Binance takes whole leverages only
            await session.request("set_leverage", int(leverage) if leverage == int(leverage)
                                  else leverage, ai.symbol)
        except Exception as e:
            reason = session.describe(e)
    if reason is not None:
        async with session.engine.mutating():
            session.s.reject(ai, reason, {"type": "leverage", "symbol": ai.symbol,
                                          "leverage": leverage})
        return False
    await session.emit("leverage_updated", {"symbol": ai.symbol, "leverage": float(leverage)},
                       ai.symbol)
    return True


async def close_position(session: Any, ai: AssetInstance, pos: PositionSide | None) -> bool:
    """Cancel the asset's orders, then close its position with a reduce-only market order."""
    await cancel(session, ai, None, None, waitfor=session.waitfor, confirm=True)
    if ai.market.is_derivative:
        p = ai.open_position()
        if p is None or (pos is not None and p.side is not pos):
            return True
        side = Side.SELL if p.side is PositionSide.LONG else Side.BUY
        amount = ai.market.floor_amount(p.amount)
    else:  # what this run's own fills bought, not coins held before or by others
        bought = _net_bought(ai, session.first_trade.get(ai.symbol, 0))
        side, amount = Side.SELL, ai.market.floor_amount(min(ai.free_balance, bought))
        if amount < max(ai.market.min_amount, ai.market.amount_step):
            return True
        p = None
    order = new_order(session, ai, OrderType.MARKET, amount, _reference_price(ai), side,
                      p.side if p else PositionSide.LONG, TimeInForce.IOC, reduce_only=p is not None)
    result = await submit(session, ai, order, {"type": "close", "symbol": ai.symbol},
                          session.waitfor, True)
    return result is not None


def _net_bought(ai: AssetInstance, first: int) -> float:
    """Base bought less base sold by the asset's trades from index `first` on (fees paid
    in the base currency are not held)."""
    net = 0.0
    for t in ai.trades[first:]:
        fee = t.fee if t.fee_currency == ai.market.base else 0.0
        net += (t.amount - fee) if t.side is Side.BUY else -(t.amount + fee)
    return max(net, 0.0)


def _reference_price(ai: AssetInstance) -> float:
    o = ai.ohlcv
    return float(o.close[-1]) if o is not None and len(o) else 0.0


def new_order(session: Any, ai: AssetInstance, type_: OrderType, amount: float, price: float,
              side: Side, pos: PositionSide, tif: TimeInForce, reduce_only: bool) -> Order:
    return Order(id=session.new_client_id(), symbol=ai.symbol, side=side, type=type_,
                 amount=amount, price=price, date=session.s.clock.now(), tif=tif, pos=pos,
                 reduce_only=reduce_only, leverage=ai.leverage if ai.market.is_derivative else 1.0)


def precheck(session: Any, ai: AssetInstance, order: Order, limit: bool) -> str | None:
    """The local checks an order must pass before it is sent."""
    m = ai.market
    if order.price <= 0:
        return f"no price known for {ai.symbol} yet: cannot check the order"
    reason = (m.check_limit_price(order.price) if limit else None) or \
        m.check_order(order.amount, order.price)
    return reason or funds_error(session.s.state, ai, order)
