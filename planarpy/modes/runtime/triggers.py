"""Conditional orders that a paper or live run holds itself, fired from the streamed trades.

Paper holds every conditional order this way (nothing is on an exchange); live holds
those its venue cannot (`Order.route` "emulated"). They live in the strategy's state like
any order: created, triggered, trailed and filled by events, so the trace has them and a
restart finds them again, armed, in the state it rebuilds. The rules are the sim's
(`core.triggers`), applied to each public trade instead of a candle's range:

- a trade at or through an order's trigger fires it; when one trade fires several orders
  of an asset, stops go before take-profits and limits, as in the sim;
- a trailing stop follows each trade's price (the best since it was armed), never back;
- after the stream was down, live's emulation applies the trades it missed in their
  order, as the stream's (a trailing stop follows a rally before a fall after it is
  checked against it); an order they reach may have fired while nobody watched: it fires
  now, at the market, and the run is told (an alert), since the price it fills at can be
  far from its trigger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ...core.instances import AssetInstance
from ...core.orders import STOPS, Order, OrderType
from ...core.triggers import reached, trail_to

if TYPE_CHECKING:  # for the annotations only
    from ...actions.engine import Engine

Fire = Callable[[AssetInstance, Order, float], None]
Only = Callable[[Order], bool] | None  # the orders the prices may fire or trail (None: all)
_TRAIL = OrderType.TRAILING_STOP


def held(ai: AssetInstance) -> list[Order]:
    """The conditional orders of `ai` the engine holds (not native on an exchange) and that
    have not fired yet."""
    return [o for o in ai.orders.values()
            if o.is_conditional and o.route != "native" and o.is_open]


def on_prices(e: Engine, ai: AssetInstance, low: float, high: float, fire: Fire,
              price: float | None = None, only: Only = None,
              ts: int | None = None) -> list[Order]:
    """Fire the held orders of `ai` that prices from `low` to `high` reach (`fire(ai,
    order, price)` executes one: `price` is where the market is, `high` by default), then
    move the trailing stops; `only`: of the orders it admits (those the prices are news
    to); `ts`: the exchange time of the newest trade in those prices, if known (a move
    records it as `trade_ts`). Returns the orders fired."""
    orders = [o for o in held(ai) if only is None or only(o)]
    if not orders:
        return []
    due = [o for o in orders if reached(o, low, high)]
    due.sort(key=lambda o: 0 if o.type in STOPS else 1)
    at = high if price is None else price
    for order in due:
        if order.is_open and not order.triggered:  # an OCO leg fired before may cancel it
            fire(ai, order, at)
    _trail(e, ai, low, high, only, ts)
    return due


def _trail(e: Engine, ai: AssetInstance, low: float, high: float, only: Only,
           ts: int | None) -> None:
    step = ai.market.price_step
    for order in held(ai):
        if order.type is _TRAIL and (only is None or only(order)):
            new = trail_to(order, low, high, step)
            if new is not None:
                moved = {"id": order.id, "symbol": ai.symbol, "trigger": new,
                         "ts": e.clock.now()}
                if ts is not None:
                    moved["trade_ts"] = ts
                e.emit("trigger_moved", moved, ai.symbol)
