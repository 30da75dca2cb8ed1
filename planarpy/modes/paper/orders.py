"""Paper orders: book sweeps, fills from public trades.

A market order sweeps the streamed book (capped by the day's volume) and fills at the
volume-weighted price of the levels it takes, as a taker. A limit order first takes what
the book offers up to its price (a taker), then rests and fills at its price (a maker)
from the public trades that cross it, never more than they traded. Each fill's
`basis` in the trace names the book levels or the public trades it came from.

The market data changes on the engine's loop under the state lock, so what an order is
checked at (`executor.py`, in the caller's context, holding the lock) is what it takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import attrs

from ...core.accounting import liquidation_trade, new_trade, reducible, shortfall
from ...core.instances import AssetInstance
from ...core.orders import (LIMIT_AFTER_TRIGGER, Order, OrderStatus, OrderType, PositionSide, Side,
                            TimeInForce, Trade)
from ...core.triggers import marketable
from .fills import Level, Resting, Sweep, share_trade, sweep, volume_left, would_take
from ..runtime.triggers import on_prices
from .market import AssetMarket, PublicTrade

_NEVER = 2 ** 62  # a mark no trade reaches

if TYPE_CHECKING:  # the session calls this module: imported for the annotations only
    from .session import PaperSession


@attrs.frozen(slots=True)
class Taking:
    """What an order of one side would take from the book now, and what bounds it."""

    taken: Sweep
    levels: list[Level]  # the side of the book it takes from, best first
    cap: float  # what the day's volume leaves to take


def taking(m: AssetMarket, ai: AssetInstance, side: Side, amount: float, limit: float | None,
           now: int) -> Taking:
    levels = m.side_for(side)
    cap = volume_left(m.day_volume(), m.taken_today(now))
    return Taking(sweep(levels, min(amount, cap), side, limit, step=ai.market.amount_step),
                  levels, cap)


def reference(m: AssetMarket, ai: AssetInstance, t: Taking, limit: float | None) -> float | str:
    """The price a new order is checked at (a limit order's limit; where a market order
    fills), or why there is none."""
    if limit is not None:
        return limit
    if t.taken:
        return t.taken.vwap
    if t.levels:
        return t.levels[0][0]
    return f"no order book for {ai.symbol} yet" if not m.book_updates else \
        f"market order found no liquidity in the book of {ai.symbol}"


def immediate_error(m: AssetMarket, order: Order, fillable: float, levels: Any,
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


def fill(session: PaperSession, ai: AssetInstance, order: Order, amount: float, price: float,
         taker: bool, basis: Mapping[str, Any]) -> Trade | None:
    """Emit the trade that fills `amount` of `order` at `price`, with what it came from
    (the caller holds the state lock). A reduce-only order takes at most what its
    position holds; its rest is then cancelled, and says why (`reducible`)."""
    amount, cut = reducible(ai, order, amount)
    applied = None
    if amount > 0:
        trade = new_trade(ai, order, amount, price, taker, session.e.clock.now())
        applied = session.apply_now("trade_created", trade, ai.symbol,
                                    {"basis": dict(basis)}).trade
    if cut is not None:
        close_rest(session, ai, order)
        session.e.reject(ai, cut, {"id": order.id, "symbol": ai.symbol})
    return applied


def close_rest(session: PaperSession, ai: AssetInstance, order: Order) -> None:
    """Cancel what is left of an order that may not rest (the caller holds the lock)."""
    if order.is_open:
        session.apply_now("order_closed", {"id": order.id, "symbol": ai.symbol,
                                           "status": OrderStatus.CANCELED.value}, ai.symbol)
    session.marks.pop(order.id, None)


async def on_public_trades(session: PaperSession, ai: AssetInstance, fresh: list[PublicTrade]) -> None:
    """Fill resting limit orders from the public trades that cross them; liquidate positions
    that a trade reaches."""
    for t in fresh:
        async with session.engine.mutating():
            _on_public_trade(session, ai, t)


def _fire(session: PaperSession, ai: AssetInstance, order: Order, t: PublicTrade) -> None:
    """A held conditional order fires at the public trade `t`, then executes against the
    first book streamed at or after `t` (`execute`): now if the book is that recent, else
    when the next book comes (`session.fired`), so it never takes quotes the market had
    already left (a gap through a stop, a jump through a take-profit)."""
    session.apply_now("order_triggered", {"id": order.id, "symbol": ai.symbol,
                                          "trigger": order.trigger, "price": t.price,
                                          "ts": session.e.clock.now()}, ai.symbol)
    book_ts = session.markets[ai.symbol].book_ts
    if book_ts is None or book_ts < t.ts:  # a book of unknown age: the next one
        session.fired[order.id] = t
        session.marks[order.id] = _NEVER  # no trade fills it before it executed
    else:
        execute(session, ai, order, t)


def on_book(session: PaperSession, ai: AssetInstance) -> None:
    """A new book of `ai`: execute the fired orders that waited for it (the caller holds
    the state lock); a book of unknown age (no time stamp) came after the trade."""
    book_ts = session.markets[ai.symbol].book_ts
    for oid, t in list(session.fired.items()):
        order = ai.orders.get(oid)
        if order is None or not order.is_open:
            session.fired.pop(oid, None)
        elif book_ts is None or book_ts >= t.ts:
            del session.fired[oid]
            execute(session, ai, order, t)


def at_trade(m: AssetMarket, ai: AssetInstance, order: Order, limit: float | None,
             t: PublicTrade, now: int) -> tuple[Sweep, Sweep]:
    """What a fired order takes: the book's levels, each priced no better than the trade
    `t` that fired it (a sell's bids at most `t.price`, a buy's asks at least), since the
    market traded there (a later book may have moved on: a burst of trades beyond it).
    Returns (what it takes of the book as it stands, at the prices it fills at)."""
    sell = order.side is Side.SELL
    levels = [(p, q) for p, q in m.side_for(order.side) if p > 0 and q > 0]
    priced = [(min(p, t.price) if sell else max(p, t.price), q) for p, q in levels]
    cap = volume_left(m.day_volume(), m.taken_today(now))
    taken = sweep(priced, min(order.remaining, cap), order.side, limit,
                  step=ai.market.amount_step)
    book = Sweep(tuple((levels[i][0], q) for i, (_, q) in enumerate(taken.taken)))
    return book, taken


def execute(session: PaperSession, ai: AssetInstance, order: Order, t: PublicTrade) -> None:
    """A fired order takes from the book what it can, as a market order does, at prices
    no better than the trade that fired it (`at_trade`; a limit-type one up to its limit,
    the rest then rests as a limit and fills from later trades). A
    market-type rest the book cannot fill is cancelled, as a market order's; a buy the
    cash cannot pay for at the book's prices is cancelled, as an exchange expires it. Each
    says why (on_order_error)."""
    e = session.e
    limit = order.price if order.type in LIMIT_AFTER_TRIGGER else None
    m = session.markets[ai.symbol]
    book, taken = at_trade(m, ai, order, limit, t, e.clock.now())
    what = f"{order.type.value} {order.id} fired at {t.price:g}"
    reason = shortfall(e.state, ai, order, taken.amount, taken.vwap) if taken else None
    if reason is None and taken:
        m.take(order.side, book, order.date)
        fill(session, ai, order, taken.amount, taken.vwap, True,
             {"source": "book", "book_ts": m.book_ts, "trigger_trade": [t.id, t.ts, t.price],
              "levels": [list(x) for x in taken.taken]})
    if order.is_open and (limit is None or reason is not None):
        close_rest(session, ai, order)
        e.reject(ai, f"{what}: {reason or 'the book could not fill the rest'}",
                 {"id": order.id, "symbol": ai.symbol})
    elif order.is_open:
        session.marks[order.id] = t.ts + 1  # rests as a limit: later trades fill it


def _on_public_trade(session: PaperSession, ai: AssetInstance, t: PublicTrade) -> None:
    if ai.orders:
        marks = session.marks

        def news(o: Order) -> bool:
            """Whether `t` came after `o` was placed: a `call` may place an order between a
            batch's intake (which moved the mark) and the matching of its older trades."""
            return t.ts >= marks.get(o.id, 0)

        # the mark gates the trailing as well as the firing
        on_prices(session.e, ai, t.price, t.price, lambda a, o, p: _fire(session, a, o, t),
                  only=news)
        resting = [Resting(o.id, o.side, o.price, o.remaining) for o in ai.orders.values()
                   if (o.type is OrderType.LIMIT or o.triggered and o.type in LIMIT_AFTER_TRIGGER)
                   and o.is_open and news(o)]
        for oid, amount in share_trade(resting, t.price, t.amount, ai.market.amount_step):
            order = ai.orders.get(oid)
            if order is None:
                continue
            basis = {"source": "trades", "trades": [[t.id, t.ts, t.price, t.amount]]}
            fill(session, ai, order, amount, order.price, False, basis)
            if not order.is_open:
                session.marks.pop(oid, None)
    pos = ai.open_position()
    # a long is liquidated by a trade at or below its liquidation price, a short at or above
    if pos is not None and marketable(Side.BUY if pos.side is PositionSide.LONG else Side.SELL,
                                   pos.liquidation_price, t.price):
        trade = liquidation_trade(ai, pos.side, session.e.clock.now(), session.new_id())
        session.apply_now("liquidation", trade, ai.symbol)
