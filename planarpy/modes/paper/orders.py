"""Paper orders on the engine's loop: book sweeps, fills from public trades, cancels.

A market order sweeps the streamed book (capped by the day's volume) and fills at the
volume-weighted price of the levels it takes, as a taker. A limit order first takes what
the book offers up to its price (a taker), then rests and fills at its price (a maker)
from the public trades that cross it, never more than they traded. Each fill's
`basis` in the trace names the book levels or the public trades it came from.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping

from ...core.accounting import fill_fee, funds_error, leverage_error, liquidation_trade
from ...core.apply import order_payload, trade_payload
from ...core.instances import AssetInstance
from ...core.risk import spot_position
from ...core.orders import (Order, OrderStatus, OrderType, PositionSide, Side, TimeInForce,
                            Trade, missing)
from .fills import Resting, crosses, share_trade, sweep, volume_left, would_take
from .market import AssetMarket, PublicTrade


async def _reject(session: Any, ai: AssetInstance | None, reason: str,
                  request: Mapping[str, Any]) -> None:
    async with session.engine.mutating():
        session.s.reject(ai, reason, request)
    session.last_event = time.monotonic()


async def place(session: Any, ai: AssetInstance, type_: OrderType, amount: float,
                price: float | None, side: Side, pos: PositionSide, tif: TimeInForce,
                reduce_only: bool, request: Mapping[str, Any],
                waitfor: float) -> Trade | Any | None:
    """Check, create and fill (what can fill now) one paper order."""
    s = session.s
    m: AssetMarket = session.markets[ai.symbol]
    mk = ai.market
    now = s.clock.now()
    limit = price if type_ is OrderType.LIMIT else None
    levels = m.side_for(side)
    cap = volume_left(m.day_volume(), m.taken_today(now))
    taken = sweep(levels, min(amount, cap), side, limit, step=mk.amount_step)
    ref = price if limit is not None else \
        (taken.vwap if taken else (levels[0][0] if levels else None))
    if ref is None:
        reason = f"no order book for {ai.symbol} yet" if not m.book_updates else \
            f"market order found no liquidity in the book of {ai.symbol}"
        await _reject(session, ai, reason, request)
        return None
    reason = (mk.check_limit_price(ref) if limit is not None else None) or \
        mk.check_order(amount, ref)
    order = Order(id=session.new_id(), symbol=ai.symbol, side=side, type=type_, amount=amount,
                  price=ref, date=now, tif=tif, pos=pos, reduce_only=reduce_only,
                  leverage=ai.leverage if mk.is_derivative else 1.0)
    if reason is None:
        reason = funds_error(s.state, ai, order) or _immediate_error(
            m, order, taken.amount, levels, cap)
    if reason is not None:
        await _reject(session, ai, reason, request)
        return None
    session.marks[order.id] = m.last_trade_ts
    if taken:  # before any await: the book taken is the book swept
        m.take(side, taken, now)
    order = (await session.emit("order_created", order_payload(order), ai.symbol)).order or order
    trade = None
    if taken:
        basis = {"source": "book", "book_ts": m.book_ts, "levels": [list(x) for x in taken.taken]}
        trade = await fill(session, ai, order, taken.amount, taken.vwap, True, basis)
    if tif is not TimeInForce.GTC and tif is not TimeInForce.POST_ONLY:
        await close_rest(session, ai, order)  # market, IOC, FOK: nothing rests
    elif trade is None and waitfor > 0 and order.is_open:
        waiter = session.waiters[order.id] = asyncio.Event()
        try:
            await asyncio.wait_for(waiter.wait(), waitfor)
        except asyncio.TimeoutError:
            pass
        finally:
            session.waiters.pop(order.id, None)
        trade = session.first_trades.pop(order.id, None)
    return trade if trade is not None else missing


def _immediate_error(m: AssetMarket, order: Order, fillable: float, levels: Any,
                     cap: float) -> str | None:
    """Why the immediate part of `order` refuses it (post-only, FOK, IOC, market), or None."""
    tif, side, limit = order.tif, order.side, order.price
    if order.type is OrderType.MARKET or tif is TimeInForce.IOC:
        if fillable > 0:
            return None
        what = "market order" if order.type is OrderType.MARKET else \
            f"immediate-or-cancel order at {limit:g}"
        if cap <= 0:
            return f"{what} refused: the day's volume of {m.symbol} ({m.day_volume():g}) is used up"
        return f"{what} found no liquidity in the book of {m.symbol}" + (
            f" at {limit:g} or better" if order.type is OrderType.LIMIT else "")
    if tif is TimeInForce.FOK and fillable < order.amount:
        return (f"fill-or-kill order at {limit:g} killed: {fillable:g} of {order.amount:g} "
                f"available in the book")
    if tif is TimeInForce.POST_ONLY and would_take(side, limit, levels):
        return f"post-only order at {limit:g} would take liquidity at {levels[0][0]:g}"
    return None


async def fill(session: Any, ai: AssetInstance, order: Order, amount: float, price: float,
               taker: bool, basis: Mapping[str, Any]) -> Trade | None:
    """Emit the trade that fills `amount` of `order` at `price`, with what it came from."""
    s = session.s
    mk = ai.market
    cost = mk.value(amount, price)
    fee, currency = fill_fee(mk, order.side, amount, cost, mk.taker if taker else mk.maker)
    trade = Trade(order_id=order.id, symbol=ai.symbol, side=order.side, pos=order.pos,
                  date=s.clock.now(), amount=amount, price=price, cost=cost,
                  fee=fee, fee_currency=currency,
                  leverage=order.leverage, taker=taker,
                  id=f"{order.id}-{round(order.filled / mk.amount_step)}")
    payload = {**trade_payload(trade), "basis": dict(basis)}
    return (await session.emit("trade_created", payload, ai.symbol)).trade


async def close_rest(session: Any, ai: AssetInstance, order: Order) -> None:
    """Cancel what is left of an order that may not rest."""
    if order.is_open:
        await session.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                            "status": OrderStatus.CANCELED.value}, ai.symbol)
    session.marks.pop(order.id, None)


async def on_public_trades(session: Any, ai: AssetInstance, fresh: list[PublicTrade]) -> None:
    """Fill resting limit orders from the public trades that cross them; liquidate positions
    that a trade reaches."""
    step = ai.market.amount_step
    for t in fresh:
        if ai.orders:
            resting = [Resting(o.id, o.side, o.price, o.remaining) for o in ai.orders.values()
                       if o.type is OrderType.LIMIT and o.is_open
                       and t.ts >= session.marks.get(o.id, 0)]
            for oid, amount in share_trade(resting, t.price, t.amount, step):
                order = ai.orders.get(oid)
                if order is None:
                    continue
                basis = {"source": "trades", "trades": [[t.id, t.ts, t.price, t.amount]]}
                await fill(session, ai, order, amount, order.price, False, basis)
                if not order.is_open:
                    session.marks.pop(oid, None)
        pos = ai.open_position()
        # a long is liquidated by a trade at or below its liquidation price, a short at or above
        if pos is not None and crosses(Side.BUY if pos.side is PositionSide.LONG else Side.SELL,
                                       pos.liquidation_price, t.price):
            trade = liquidation_trade(ai, pos.side, session.s.clock.now(), session.new_id())
            await session.emit("liquidation", trade_payload(trade), ai.symbol)


async def cancel(session: Any, ai: AssetInstance, side: Side | None,
                 ids: list[str] | None) -> set[str]:
    """Cancel the open orders of `ai` on `side` (None: both), or those in `ids`; their ids."""
    found = set()
    for order in list(ai.orders.values()):
        if (side is None or order.side is side) and (ids is None or order.id in ids):
            found.add(order.id)
            await session.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                                "status": "canceled"}, ai.symbol)
            session.marks.pop(order.id, None)
    return found


async def cancel_all(session: Any, assets: list[AssetInstance], side: Side | None,
                     ids: list[str] | None) -> bool:
    found: set[str] = set()
    for ai in assets:
        found |= await cancel(session, ai, side, ids)
    if ids is not None and set(ids) - found:
        unknown = sorted(set(ids) - found)
        await _reject(session, None, f"no open order with id {', '.join(unknown)}",
                      {"type": "cancel", "ids": list(ids)})
        return False
    return True


async def set_leverage(session: Any, ai: AssetInstance, leverage: float, pos: PositionSide) -> bool:
    reason = leverage_error(ai, leverage)
    if reason is not None:
        await _reject(session, ai, reason, {"type": "leverage", "symbol": ai.symbol,
                                            "leverage": leverage})
        return False
    await session.emit("leverage_updated", {"symbol": ai.symbol, "leverage": leverage,
                                            "pos": pos.value}, ai.symbol)
    return True


async def close_position(session: Any, ai: AssetInstance, pos: PositionSide | None) -> bool:
    """What `planarpy.actions.pipeline.close_position` means, until paper orders go
    through the pipeline: cancel every open order of the asset, then close what it holds
    with one market order (spot: the base the strategy's own fills bought)."""
    from ...actions import order_request
    mk = ai.market
    p = ai.open_position()
    if mk.is_derivative and pos is not None and (p is None or p.side is not pos):
        return True
    await cancel(session, ai, None, None)
    if mk.is_derivative:
        if p is None:
            return True
        side = Side.SELL if p.side is PositionSide.LONG else Side.BUY
        amount, reduce_only, pside = p.amount, True, p.side
    else:
        amount = spot_position(ai)
        if amount < max(mk.min_amount, mk.amount_step):
            return True
        side, reduce_only, pside = Side.SELL, False, PositionSide.LONG
    request = order_request("market", ai, amount, None, side, pside, TimeInForce.IOC, reduce_only)
    trade = await place(session, ai, OrderType.MARKET, amount, None, side, pside,
                        TimeInForce.IOC, reduce_only, request, 0.0)
    if mk.is_derivative:
        return trade is not None and ai.open_position() is None
    return trade is not None and spot_position(ai) < max(mk.min_amount, mk.amount_step)
