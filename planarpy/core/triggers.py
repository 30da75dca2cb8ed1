"""When a conditional order fires, and where a trailing stop stands: pure rules that sim,
paper and live's emulation share, so a stop means the same in every mode.

A stop (stop-market, stop-limit, trailing) guards against an adverse move: a sell stop
fires when the price falls to its trigger, a buy stop when it rises to it. A take-profit
fires on the favourable move: a sell when the price rises to its trigger, a buy when it
falls to it. A price exactly at the trigger fires it.
"""

from __future__ import annotations

from .orders import STOPS, Order, OrderType, Side
from .precision import ceil_to_step, floor_to_step

_BUY = Side.BUY  # read once (3.11: an enum member read in a function costs a __getattr__ hook)

_SELL = Side.SELL


def falls_to_fire(order: Order) -> bool:
    """Whether `order` fires on a falling price (a sell stop, a buy take-profit)."""
    return (order.type in STOPS) == (order.side is _SELL)


def reached(order: Order, low: float, high: float) -> bool:
    """Whether prices from `low` to `high` reach the trigger of an armed conditional order."""
    t = order.trigger
    if t <= 0.0:
        return False  # a trailing stop waiting for its activation price
    return low <= t if falls_to_fire(order) else high >= t


def passed(order: Order, price: float) -> bool:
    """Whether `price` alone is at or through the trigger (a gap through it, a price the
    market already trades at)."""
    return reached(order, price, price)


def marketable(side: Side, limit: float, price: float) -> bool:
    """Whether a limit order at `limit` takes liquidity (trades) at the market `price`:
    a buy at or above it, a sell at or below it. The one test of sim, paper and the OCO
    placement rule."""
    return limit >= price if side is _BUY else limit <= price


def immediate_error(type_: OrderType, side: Side, trigger: float, price: float) -> str | None:
    """Why a new conditional order would fire at once at the market `price`, or None:
    refused, as Binance refuses it ("order would immediately trigger")."""
    probe = Order("", "", side, type_, 0.0, trigger, 0, trigger=trigger)
    if not passed(probe, price):
        return None
    what = "stop" if type_ in STOPS else "take-profit"
    where = "at or below" if falls_to_fire(probe) else "at or above"
    return (f"{side.value} {what} at {trigger:g} would trigger immediately: the price "
            f"{price:g} is {where} it")


def trailing_trigger(order: Order, ref: float, step: float) -> float:
    """The stop of a trailing order whose best price so far is `ref`, on the price step
    (away from the price: down for a sell stop, up for a buy stop)."""
    trail = ref * order.trail if order.trail_pct else order.trail
    if order.side is _SELL:
        return max(floor_to_step(ref - trail, step), step)
    return ceil_to_step(ref + trail, step)


def trail_to(order: Order, low: float, high: float, step: float) -> float | None:
    """The new stop of an untriggered trailing stop after prices from `low` to `high`, or
    None when it stays: it arms once the price reaches its activation, then follows the
    best price, never back."""
    sell = order.side is _SELL
    ref = high if sell else low
    t = order.trigger
    if t <= 0.0 and (ref < order.activation if sell else ref > order.activation):
        return None
    new = trailing_trigger(order, ref, step)
    if t <= 0.0 or (new > t if sell else new < t):
        return new
    return None
