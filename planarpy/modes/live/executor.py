"""Live mode's side of the order pipeline: orders go to the exchange through the venue.

Parsing, the Order and the gate are the pipeline's (`planarpy.actions.pipeline`); this
module hands what passed to `orders.py` (submit by client id, the unknown state, cancels
of orders in flight) and waits for the answer on the engine's loop, up to `waitfor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from ...actions.requests import CancelOrders, OrderRequest, UpdateLeverage, WatchOHLCV
from ...core.instances import AssetInstance
from ...core.orders import CONDITIONAL, Order, OrderType, Trade, _Missing, missing
from ..runtime.executor import GRACE, SessionExecutor
from . import emulation, inflight, orders

if TYPE_CHECKING:  # for the annotations only: the session imports this module
    from .session import LiveSession

_LIMIT = OrderType.LIMIT


class LiveExecutor(SessionExecutor):
    """Executes the orders of one live run (implements `pipeline.Executor`)."""

    def new_id(self) -> str:
        """A client order id: the exchange knows the order by it from its first request."""
        return self.session.new_client_id()

    def order_price(self, ai: AssetInstance, req: OrderRequest) -> float | str:
        """A limit order's limit; for a market order the newest close."""
        if req.type is _LIMIT:
            return req.price
        price = self.last_close(ai)
        if not price > 0:
            return f"no price known for {ai.symbol} yet: cannot check the order"
        return price

    def trigger_price(self, ai: AssetInstance) -> float | str:
        """The newest public trade the run's trades stream brought, while that stream is
        live (its trades fire the emulated orders); else the exchange's last price, asked
        now (its ticker). Never the last candle's close: that is up to a timeframe old."""
        session = self.session
        w = session.watchers.get(f"triggers:{ai.symbol}")
        seen = session.last_trade.get(ai.symbol)
        if seen is not None and w is not None and w.running and w.connected and \
                session.engine.loop.time() - w.last_message < w.stall_after:
            return seen[1]
        unknown = f"no price known for {ai.symbol}: the exchange's last price could not be read"
        return self.block(_last_price(session, ai.symbol, unknown), session.waitfor + GRACE,
                          unknown, "trigger_price")

    def place(self, ai: AssetInstance, order: Order, req: OrderRequest) -> Trade | _Missing | None:
        """Send the order and wait up to `waitfor` for its first fill (then, if `synced`,
        look it up); `waitfor=0, synced=False` sends it and returns `missing` at once."""
        session = self.session
        if order.type in CONDITIONAL and not self._native(ai, order):
            return self._hold(ai, order)
        wait = self.wait(req.waitfor)
        if order.type in CONDITIONAL:  # it rests until it fires: the answer is enough
            coro = orders.send(session, ai, order, req.payload(), 0.0, False)
            return self.block(coro, wait + GRACE, missing, f"{order.type.value}_order")
        coro = orders.send(session, ai, order, req.payload(), wait, req.synced)
        if wait <= 0 and not req.synced:  # fire and forget
            session.engine.fire(coro)
            return missing
        return self.block(coro, wait + GRACE, missing, f"{order.type.value}_order")

    def _native(self, ai: AssetInstance, order: Order) -> bool:
        """Whether the conditional `order` goes to the exchange as its own type (its route
        is set either way). USD-M's algo orders are native too, followed through the order
        each places when it fires (reconciler.py). The stop leg of a pair with a limit
        (`Order.pair`, whichever leg is placed first) is emulated (`emulation.py` cancels
        the other leg on the exchange before it sends this one), unless both legs may
        rest on the exchange (`_both_rest`). The replacement of an amended stop goes like
        the stop it replaces."""
        session = self.session
        market = orders.market_of(session, ai.symbol)
        native = session.venue.native(order, market) is not None and (
            not order.pair or self._both_rest(ai, order, market))
        order.route = "native" if native else "emulated"
        return native

    def _both_rest(self, ai: AssetInstance, order: Order, market: Any) -> bool:
        """Whether the stop leg of a pair may rest on the exchange beside its limit: its
        venue holds it without funds (USD-M), so the pair holds its margin once, and the
        legs are reduce-only on a derivative, so that if both fill before the other is
        cancelled the exchange caps the second at what is left of the position (none):
        it is closed once, never turned. Else (spot: both legs would hold the base) the
        engine holds the stop."""
        return order.reduce_only and ai.market.is_derivative and \
            not self.session.venue.conditional_holds_funds(market)

    def _hold(self, ai: AssetInstance, order: Order) -> _Missing:
        """An emulated conditional order: the engine holds it (created here, nothing sent)
        and watches the public trades of its asset to fire it (session.watch_triggers)."""
        session = self.session
        session.apply_now("order_created", order, ai.symbol)
        session.engine.fire(session.watch_triggers(ai.symbol))
        return missing

    def replaces(self, old: Order, new: Order) -> bool:
        """Whether the native stop `old` moves to `new` in one cancel-replace request (the
        venue has one, and allows it on the market); else the new stop is placed first and
        the old one cancelled."""
        venue = self.session.venue
        market = self.session.client.markets.get(old.symbol) or {}
        return old.route == "native" and venue.replacement(new) is not None and \
            venue.can_replace(market)

    def replace(self, ai: AssetInstance, old: Order, new: Order,
                req: OrderRequest) -> Trade | _Missing | None:
        """Move the native stop `old` to `new` (see orders.replace)."""
        new.route = "native"
        session = self.session
        return self.block(orders.replace(session, ai, old, new, req.payload()),
                          session.waitfor + GRACE, missing, "amend_stop")

    def settle(self, ai: AssetInstance, order: Order, then: Callable[[], None]) -> None:
        """Settle `order`, whose submit got no answer, by its client id (inflight.py),
        asking for up to the run's `waitfor`. If it is still unknown then, `then` runs
        (as strategy code) once it is settled."""
        session = self.session
        flight = session.flights.get(order.id)
        if flight is None or not flight.unknown:
            return
        self.block(inflight.settle_then(session, flight, session.waitfor, then),
                   session.waitfor + GRACE, None, "settle")

    def cancel(self, ai: AssetInstance, orders_: Sequence[Order], req: CancelOrders) -> bool:
        """Cancel on the exchange by client id; an order still in flight is cancelled once
        the exchange knows it (see orders.cancel). An emulated order that has not fired,
        or fired and its send has not started, is on no exchange: it is closed here (it
        is never sent)."""
        session = self.session
        held = [o for o in orders_ if emulation.unsent(session, o)]
        emulation.close(session, ai, held)
        sent = [o.id for o in orders_ if o not in held]
        if not sent:
            return True
        wait = self.wait(req.waitfor)
        coro = orders.cancel(session, ai, None, sent, waitfor=wait,
                             confirm=req.confirm or req.synced, retry=req.retry)
        return bool(self.block(coro, wait + GRACE, False, "cancel_orders"))

    def set_leverage(self, ai: AssetInstance, req: UpdateLeverage) -> bool:
        """Set the leverage on the exchange, then locally."""
        session = self.session
        return bool(self.block(orders.set_leverage(session, ai, req.leverage),
                               session.waitfor + GRACE, False, "update_leverage"))

    def watch_ohlcv(self, req: WatchOHLCV) -> bool:
        """Fetch the candles closed since the last refresh now (the tick loop does at every
        close; the candles are ticked by the loop, not here)."""
        session = self.session
        done = self.block(session.refresh_candles(), session.waitfor + GRACE, False,
                          "watch_ohlcv")
        return done is not False  # refresh_candles answers None when it is done

    def own_trades(self, ai: AssetInstance) -> Sequence[Trade]:
        """All but the exchange's history that this run's sync, or the syncs of the
        earlier runs it resumes, found: the fills of orders the trace did not know (an
        earlier run on another trace, or none; the strategy's own name, but not known to
        be its position). Told apart by position, as `ai.trades` only grows: a trade id
        may be missing, and the exchange numbers trades per symbol."""
        history = self.session.history_trades.get(ai.symbol)
        return [t for k, t in enumerate(ai.trades) if k not in history] if history else ai.trades


async def _last_price(session: LiveSession, symbol: str, unknown: str) -> float | str:
    """The exchange's last traded price of `symbol` (its ticker's), or `unknown`."""
    last = (await session.request("fetch_ticker", symbol) or {}).get("last")
    return float(last) if last else unknown


__all__ = ["LiveExecutor"]
