"""Paper mode's side of the order pipeline: orders fill from the streamed book and trades.

Nothing is sent to the exchange. Parsing, the Order and the gate are the pipeline's
(`planarpy.actions.pipeline`); this module executes, in the caller's context and under
the state lock, what an order can do at once (take from the book), and waits on the
engine's loop only for what the streams bring later: a resting order's first fill.
"""

from __future__ import annotations

import asyncio
from typing import Sequence

import ccxt

from ...actions.requests import CancelOrders, OrderRequest, UpdateLeverage, WatchOHLCV
from ...core.instances import AssetInstance
from ...core.orders import (CONDITIONAL, EXPIRE_UNFILLED, Order, OrderType, TimeInForce, Trade,
                            _Missing, missing)
from ..runtime.executor import GRACE, SessionExecutor
from . import orders

_LIMIT = OrderType.LIMIT
_RESTS = (TimeInForce.GTC, TimeInForce.POST_ONLY)


class PaperExecutor(SessionExecutor):
    """Executes the orders of one paper run (implements `pipeline.Executor`)."""

    cancels_at_once = True  # a cancel only changes local state: OCO groups settle at once

    def new_id(self) -> str:
        return self.session.new_id()

    def _taking(self, ai: AssetInstance, req: OrderRequest) -> orders.Taking:
        session = self.session
        limit = req.price if req.type is _LIMIT else None
        return orders.taking(session.markets[ai.symbol], ai, req.side, req.amount, limit,
                             session.e.clock.now())

    def order_price(self, ai: AssetInstance, req: OrderRequest) -> float | str:
        """A limit order's limit; for a market order the volume-weighted price of the
        levels it would take from the book now."""
        limit = req.price if req.type is _LIMIT else None
        m = self.session.markets[ai.symbol]
        return orders.reference(m, ai, self._taking(ai, req), limit)

    def trigger_price(self, ai: AssetInstance) -> float | str:
        """The last public trade streamed (else the middle of the book): the trades that
        fire paper's conditional orders, not the last candle's close."""
        price = self.session.markets[ai.symbol].price()
        return price if price is not None else \
            f"no price known for {ai.symbol} yet: no trade or book streamed"

    def place(self, ai: AssetInstance, order: Order, req: OrderRequest) -> Trade | _Missing | None:
        """Take what the book offers now (up to the limit), then, for GTC and post-only,
        rest and fill from the public trades that cross it, waiting up to `waitfor` for a
        first fill. IOC keeps what fills at once; FOK fills whole at once or not at all;
        post-only is refused when it would take."""
        session = self.session
        m = session.markets[ai.symbol]
        if order.type in CONDITIONAL:  # held here and fired by the public trades
            session.marks[order.id] = m.last_trade_ts
            session.apply_now("order_created", order, ai.symbol)
            return missing
        t = self._taking(ai, req)
        reason = orders.immediate_error(m, order, t.taken.amount, t.levels, t.cap)
        if reason is not None:
            if order.type is _LIMIT and order.tif in EXPIRE_UNFILLED:  # taken, then expired,
                session.apply_now("order_created", order, ai.symbol)  # as a venue does: an
                orders.close_rest(session, ai, order)  # order the throttle counts
            session.e.reject(ai, reason, req.payload())
            return None
        session.marks[order.id] = m.last_trade_ts
        if t.taken:  # before the order exists: the book taken is the book swept
            m.take(order.side, t.taken, order.date)
        session.apply_now("order_created", order, ai.symbol)
        trade = None
        if t.taken:
            basis = {"source": "book", "book_ts": m.book_ts,
                     "levels": [list(x) for x in t.taken.taken]}
            trade = orders.fill(session, ai, order, t.taken.amount, t.taken.vwap, True, basis)
        if order.tif not in _RESTS or order.type is not _LIMIT:
            orders.close_rest(session, ai, order)  # market, IOC, FOK: nothing rests
            return trade
        wait = self.wait(req.waitfor)
        if trade is None and wait > 0 and order.is_open:
            trade = self._first_fill(order, wait)
        return trade if trade is not None else missing

    def _first_fill(self, order: Order, wait: float) -> Trade | None:
        """Wait on the engine's loop up to `wait` s for the first fill of a resting order."""
        session = self.session
        waiter = session.waiters[order.id] = asyncio.Event()

        async def first() -> Trade | None:
            try:
                await asyncio.wait_for(waiter.wait(), wait)
            except asyncio.TimeoutError:
                pass
            return session.first_trades.get(order.id)
        try:
            return self.block(first(), wait + GRACE, None, "limit_order")
        finally:
            session.waiters.pop(order.id, None)
            session.first_trades.pop(order.id, None)

    def cancel(self, ai: AssetInstance, orders_: Sequence[Order], req: CancelOrders) -> bool:
        session = self.session
        for order in orders_:
            if order.is_open:
                session.apply_now("order_closed", {"id": order.id, "symbol": ai.symbol,
                                                   "status": "canceled"}, ai.symbol)
            session.marks.pop(order.id, None)
        return True

    def set_leverage(self, ai: AssetInstance, req: UpdateLeverage) -> bool:
        self.session.apply_now("leverage_updated", {"symbol": ai.symbol, "leverage": req.leverage,
                                                    "pos": req.pos.value}, ai.symbol)
        return True

    def watch_ohlcv(self, req: WatchOHLCV) -> bool:
        """Start (or keep) the market streams of the asset(s) and refresh their candles now."""
        session = self.session
        assets = session.e.assets if req.ai is None else [req.ai]

        async def run() -> bool:
            try:
                for a in assets:
                    session.watch_ohlcv(a.symbol)
                await session.refresh_candles()
            except ccxt.BaseError as e:  # told to on_error, credentials removed; never raised
                await session.report_error(e, where="watch_ohlcv")
                return False
            return True
        return bool(self.block(run(), session.waitfor + GRACE, False, "watch_ohlcv"))


__all__ = ["PaperExecutor"]
