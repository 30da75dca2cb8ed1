"""How the sim fires conditional orders inside one candle (stated, conservative, no chance).

The sim sees only a candle's open, high, low and close, so the order of prices inside it
is unknown. The rules:

1. A sell stop fires when the candle's low reaches its trigger, a buy stop when its high
   does; a take-profit the other way round (`core.triggers`). A trailing stop is checked
   against the stop it had at the last close: its reference follows closed candles only
   (a sell trailing stop follows the highs, a buy one the lows), after the candle's
   triggers are settled.
2. Several orders of one asset that one candle could fire are taken in this order: first
   those the open already passes (a gap: they certainly fired first), then stops, then
   take-profits and limits. So when a stop and a target are both inside one candle, the
   stop wins (as in backtesting.py). The first fill (or trigger) of an OCO leg cancels
   the other leg before it is looked at.
3. A stop-market (or take-profit-market, trailing) order fills at its trigger, or at the
   open when the open is already through it (a gap), moved against it by the sim's
   slippage (the gap between the last close and the open, times `slippage`, as market
   orders), never beyond the candle's range. It is a taker fill; what the volume cap
   leaves stays triggered and fills at the next candles' opens.
4. A stop-limit (take-profit-limit) turns into a limit at its limit price when it fires:
   it fills at once (a taker, at the trigger or the gapped open) if the limit is
   marketable there, else it rests as a limit from the next candle on.
5. A leveraged position whose liquidation price the candle reaches: the price is taken
   as moving straight from the open to the liquidation price, so the orders it meets on
   the way act before the liquidation: first those the open already passes (at the open,
   even when the open is beyond the liquidation price too: a stop fires on the trade,
   the liquidation follows the mark price, which trails it; paper and the local
   exchange fire a trade's orders before they liquidate), then the triggers and limits
   between the open and the liquidation price, nearest the open first, each against the
   liquidation price as it stands after the fills before it (a buy limit that adds to a
   long moves it). A position still reached then is liquidated (which cancels its
   reducing orders), then the other orders act: a take-profit on the far side of the
   open never saves a position the candle liquidates.
6. Exits of a bracket are placed when the entry is done; they are first checked on the
   candle after the fill (a market entry at tick i fills at the open of i+1 and its exits
   are checked in candle i+1, as backtesting.py does).
"""

from __future__ import annotations

from ...core.orders import CONDITIONAL, LIMIT_AFTER_TRIGGER, STOPS, Order, Side
from ...core.precision import ceil_to_step, floor_to_step
from ...core.triggers import falls_to_fire, marketable, passed
from .fills import market_price


_MARKET_AFTER = CONDITIONAL - LIMIT_AFTER_TRIGGER
_SELL = Side.SELL
_BUY = Side.BUY


def waits(order: Order) -> bool:
    """Whether `order` is a conditional order still waiting for its trigger, or a triggered
    market-type one with a rest to fill (not what acts as a plain limit)."""
    return order.type in CONDITIONAL and (not order.triggered or order.type in _MARKET_AFTER)


def may_trail(order: Order, low: float, high: float) -> bool:
    """Whether prices from `low` to `high` may move an untriggered trailing stop: a cheap
    necessary condition for `core.triggers.trail_to` (which rounds the new stop away from
    the price, so it moves only when the best price less the trail passes the stop), which
    the sim checks every candle instead of settling the asset."""
    t = order.trigger
    if order.side is _SELL:
        if t <= 0.0:
            return high >= order.activation
        return (high - high * order.trail if order.trail_pct else high - order.trail) > t
    if t <= 0.0:
        return low <= order.activation
    return (low + low * order.trail if order.trail_pct else low + order.trail) < t


def rank(order: Order, open_: float) -> int:
    """Where `order` comes in a candle: 0 if the open passes it, 1 a stop, 2 the rest."""
    if waits(order):
        if order.triggered or passed(order, open_):
            return 0
        return 1 if order.type in STOPS else 2
    return 0 if marketable(order.side, order.price, open_) else 2


def meets(order: Order, open_: float, falling: bool) -> float | None:
    """Where a price moving straight from `open_` (down if `falling`, else up) makes `order`
    act: the open if the open already passes it, its trigger or limit if the move reaches
    it on the way, None if only the other way does (rule 5)."""
    if waits(order):
        if order.triggered or passed(order, open_):
            return open_
        if order.trigger <= 0.0 or falls_to_fire(order) is not falling:
            return None
        return order.trigger
    if marketable(order.side, order.price, open_):
        return open_
    return order.price if (order.side is _BUY) is falling else None


def fill_price(order: Order, ref: float, open_: float, prev_close: float, low: float,
               high: float, amount: float, volume: float, scale: float, step: float) -> float:
    """Where a fired market-type order fills: at `ref` (its trigger, or the gapped open),
    moved against it by a market order's slippage (`fills.market_price`: `amount` of the
    candle's `volume`), kept inside the candle, on the price step."""
    moved = ref - open_ + market_price(order.side, open_, prev_close, amount, volume, scale)
    if order.side is Side.BUY:
        return min(ceil_to_step(moved, step), high)
    return max(floor_to_step(moved, step), low)
