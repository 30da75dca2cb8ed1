"""Sim mode's side of the order pipeline: orders fill against candles, never the future.

At a tick the strategy has seen candle `i` (closed at the tick's time). A market order
fills at the open of candle i+1, plus adverse slippage; a limit order that the open of
candle i+1 already crosses fills there (better than its limit), otherwise it waits for a
later candle to reach its price (`engine.SimEngine.match`). An order placed while a
candle is matched (by a callback of a fill) rests through the tick on that candle and
executes as if placed at its close when the next candle's matching begins
(`engine.SimEngine.place_after`). Parsing, the Order and the
gate are the pipeline's (`planarpy.actions.pipeline`); this module only executes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from ...actions.requests import CancelOrders, OrderRequest, UpdateLeverage, WatchOHLCV
from ...core.accounting import shortfall
from ...core.errors import InvalidArgument, UnsupportedAction
from ...core.instances import AssetInstance
from ...core.orders import (CONDITIONAL, EXPIRE_UNFILLED, Order, OrderStatus, OrderType, Side,
                            TimeInForce, Trade, _Missing, missing)
from ...core.precision import ceil_to_step, floor_to_step
from ...core.risk import TradingState
from ...core.triggers import marketable
from .engine import SimEngine

if TYPE_CHECKING:  # a backtest runs a strategy: imported for the annotations only
    from ...strategy import Strategy
from .fills import market_price

_MARKET = OrderType.MARKET
_OPEN = OrderStatus.OPEN
_BUY = Side.BUY
_CANCELED = OrderStatus.CANCELED.value
_REJECTED = OrderStatus.REJECTED.value
_POST_ONLY, _FOK, _IOC = TimeInForce.POST_ONLY, TimeInForce.FOK, TimeInForce.IOC


class SimExecutor:
    """Executes the orders of one backtest (implements `pipeline.Executor`)."""

    cancels_at_once = True  # a cancel only changes local state: OCO groups settle at once

    __slots__ = ("s", "e", "engine", "new_id")

    def __init__(self, s: Strategy, engine: SimEngine) -> None:
        self.s = s  # the strategy: the index `i` of the candle its tick is on
        self.e = s.engine  # its engine side
        self.engine = engine
        self.new_id = engine.new_id  # a fresh id for an order that passed the gate

    def own_trades(self, ai: AssetInstance) -> Sequence[Trade]:
        return ai.trades  # a backtest starts with no trades

    def settle(self, ai: AssetInstance, order: Order, then: Callable[[], None]) -> None:
        """Nothing to settle: a sim order's outcome is always known."""

    def mark(self, ai: AssetInstance) -> float:
        """The close of the candle the strategy last saw (the first open before any)."""
        i = self.s.i
        eng = self.engine
        opens, closes, _ = eng._views.get(ai.symbol) or eng.views(ai)
        return closes[i] if i >= 0 else opens[0]

    def trigger_price(self, ai: AssetInstance) -> float:
        """`mark`: a tick's price now is the close of its candle, as the triggers see it."""
        return self.mark(ai)

    def _index(self, date: int | None, action: str) -> int:
        i = self.s.i
        now = self.e.clock.now()
        if i < 0:
            raise UnsupportedAction(f"{action}: a backtest places orders from tick() and the "
                                    "callbacks after it, not before its first candle "
                                    "(reset, start)")
        if date is not None and date != now:
            raise InvalidArgument(f"{action}: date must be None or the time now, {now} (a "
                                  f"backtest places an order when it is called), got {date}")
        return i

    def order_price(self, ai: AssetInstance, req: OrderRequest, i: int | None = None) -> float:
        """A limit order's limit; for a market order the next open moved against it. With
        `i`: for an order placed at candle `i`'s close (its date checked already)."""
        placed_now = i is None
        if placed_now:
            i = self.s.i
            if i < 0 or req.date is not None:
                i = self._index(req.date, f"{req.type.value}_order")
        if req.type is not _MARKET:
            return req.price
        eng = self.engine
        open_, close, volume = eng._views.get(ai.symbol) or eng.views(ai)
        if placed_now and eng.matching and i + 2 < len(open_):
            # placed by a fill inside candle i + 1: it executes as if placed at that
            # candle's close (place_after), and is checked at that price, not this one
            i += 1
        side = req.side
        raw = market_price(side, open_[i + 1], close[i], req.amount, volume[i],
                           eng.config.slippage)
        step = ai.market.price_step  # the tick against the order: up for buys, down for sells
        return ceil_to_step(raw, step) if side is _BUY else floor_to_step(raw, step)

    def place(self, ai: AssetInstance, order: Order, req: OrderRequest) -> Trade | _Missing | None:
        eng = self.engine
        if order.type is _MARKET and not eng.matching:
            return self._market(ai, order, req)
        if order.type in CONDITIONAL or eng.matching:
            # a conditional order waits for its trigger (engine.match fires it); an order a
            # fill placed inside a candle rests until the next candle (engine.place_after)
            self.e.emit("order_created", order, ai.symbol)
            if eng.matching:
                eng.defer(ai, order, req)
            return missing
        return self._limit(ai, order, req)

    def place_after(self, ai: AssetInstance, order: Order, req: OrderRequest) -> None:
        """Execute `order`, placed while the candle the strategy is now on was matched and
        left open by its tick, as if placed at that candle's close (engine.place_after)."""
        if order.type is _MARKET:
            self._market(ai, order, req, placed=True)
        else:
            self._limit(ai, order, req, placed=True)

    def _refuse(self, ai: AssetInstance, order: Order, reason: str, req: OrderRequest,
                placed: bool) -> None:
        if placed and order.status is _OPEN:  # created already: closed as refused, which
            # the throttle does not count (paper and live refuse it before it is created)
            self.e.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                         "status": _REJECTED}, ai.symbol)
        self.e.reject(ai, reason, req.payload())

    def _market(self, ai: AssetInstance, order: Order, req: OrderRequest,
                placed: bool = False) -> Trade | None:
        """Fill at the next candle's open plus slippage, capped by volume; cancel the rest.
        (`placed`: created while a candle was matched; priced now, when it executes.)"""
        e, eng, i = self.e, self.engine, self.s.i
        volume = (eng._views.get(ai.symbol) or eng.views(ai))[2][i]
        fill = eng.fillable(ai, order.amount, volume) if eng.volume_cap else order.amount
        if fill <= 0:
            self._refuse(ai, order, f"no liquidity: the last candle traded {volume:g} "
                         f"{ai.market.base}, too little for a market order of {order.amount:g}",
                         req, placed)
            return None
        price = order.price
        if placed:
            price = self.order_price(ai, req, i)  # its date was checked when it was placed
            reason = shortfall(e.state, ai, order, fill, price)
            if reason is not None:
                self._refuse(ai, order, f"market {order.id} at {price:g}: {reason}", req, True)
                return None
        else:
            e.emit("order_created", order, ai.symbol)
        # positional, with the order's date (made at this tick: the time now)
        trade = eng.fill(ai, order, price, fill, True, i + 1, None if placed else order.date)
        if order.status is _OPEN:  # the volume cap left a rest: it is cancelled
            eng.close_rest(ai, order)
        return trade

    def _limit(self, ai: AssetInstance, order: Order, req: OrderRequest,
               placed: bool = False) -> Trade | _Missing | None:
        """Queue a limit order; one the next open crosses fills there at once (a taker).

        GTC rests until filled or cancelled; IOC keeps what fills at once; FOK fills whole
        at once or not at all; post-only (PO) is refused when it would take.
        (`placed`: created while a candle was matched, executed now.)
        """
        e, eng, i = self.e, self.engine, self.s.i
        price, amount, tif = order.price, order.amount, order.tif
        opens, _, volume = eng.views(ai)
        open_ = opens[i + 1]
        takes = marketable(order.side, price, open_)
        fill = eng.fillable(ai, amount, volume[i]) if takes else 0.0
        reason = None
        if tif is _POST_ONLY and takes:
            reason = f"post-only order at {price:g} would take liquidity at {open_:g}"
        elif tif is _FOK and fill < amount:
            reason = f"fill-or-kill order at {price:g} killed: " + (
                f"{fill:g} of {amount:g} available" if takes else f"the price is {open_:g}")
        elif tif is _IOC and fill <= 0:
            reason = (f"immediate-or-cancel order at {price:g} cancelled: "
                      + ("no liquidity" if takes else f"the price is {open_:g}"))
        if reason is not None:
            if tif in EXPIRE_UNFILLED:  # taken, then expired, as a venue does: an order
                if not placed:  # the throttle counts
                    e.emit("order_created", order, ai.symbol)
                eng.close_rest(ai, order)
                e.reject(ai, reason, req.payload())
            else:
                self._refuse(ai, order, reason, req, placed)
            return None
        if not placed:
            e.emit("order_created", order, ai.symbol)
        trade = eng.fill(ai, order, open_, fill, taker=True, effective=i + 1) if fill > 0 else None
        if tif is _IOC:
            eng.close_rest(ai, order)
        return trade if trade is not None else missing

    def cancel(self, ai: AssetInstance, orders: Sequence[Order], req: CancelOrders) -> bool:
        emit = self.e.emit
        for order in orders:
            emit("order_closed", {"id": order.id, "symbol": ai.symbol, "status": _CANCELED},
                 ai.symbol)
        return True

    def set_leverage(self, ai: AssetInstance, req: UpdateLeverage) -> bool:
        self.e.emit("leverage_updated", {"symbol": ai.symbol, "leverage": req.leverage,
                                         "pos": req.pos.value}, ai.symbol)
        return True

    def watch_ohlcv(self, req: WatchOHLCV) -> bool:
        """Sim data is all there already: nothing to do."""
        return True

    def on_trading_state(self, state: TradingState) -> None:
        if self.engine.guard is not None:
            self.engine.guard.rebase()

    def soon(self, fn: Callable[[], None], order: Order | None = None) -> None:
        fn()  # a backtest runs its actions at once
