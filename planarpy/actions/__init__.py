"""The action vocabulary and `call`, dispatched on (mode, action).

A mode registers one handler per action it supports with `@handles(mode, action)`.
Strategies never ask which mode they run in: they `call` and the mode decides.
"""

from __future__ import annotations

import enum
from typing import Any, Callable

from .core.errors import UnsupportedAction
from .core.orders import PositionSide, Side, TimeInForce


class Mode(str, enum.Enum):
    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"


class Action(str, enum.Enum):
    MARKET_ORDER = "market_order"
    LIMIT_ORDER = "limit_order"
    CANCEL_ORDERS = "cancel_orders"
    UPDATE_LEVERAGE = "update_leverage"
    CLOSE_POSITION = "close_position"
    WATCH_OHLCV = "watch_ohlcv"


Handler = Callable[..., Any]
_HANDLERS: dict[tuple[Mode, Action], Handler] = {}


def handles(mode: Mode, action: Action) -> Callable[[Handler], Handler]:
    """Register the decorated function as `mode`'s handler of `action`."""
    def register(fn: Handler) -> Handler:
        _HANDLERS[(mode, action)] = fn
        return fn
    return register


def supported_actions(mode: Mode) -> list[str]:
    return [a.value for (m, a) in _HANDLERS if m is mode]


def call(s: Any, action: Action | str, *args: Any, **kwargs: Any) -> Any:
    """Ask the strategy's mode to perform `action`.

    Orders return a Trade, `missing` (accepted, no fill yet) or None (failed: an
    order-error event says why). Other actions return a bool. An action the mode does
    not support raises UnsupportedAction naming the ones it does.
    """
    try:
        act = Action(action)
    except ValueError:
        raise UnsupportedAction(f"unknown action {action!r}; actions are: "
                                f"{', '.join(a.value for a in Action)}") from None
    mode = s.mode
    handler = _HANDLERS.get((mode, act))
    if handler is None:
        raise UnsupportedAction(f"{mode.value} mode does not support {act.value!r}; "
                                f"it supports: {', '.join(supported_actions(mode)) or 'nothing yet'}")
    return handler(s, *args, **kwargs)


def parse_side(side: Side | str) -> Side:
    try:
        return Side(side)
    except ValueError:
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}") from None


def parse_pos(pos: PositionSide | str) -> PositionSide:
    try:
        return PositionSide(pos)
    except ValueError:
        raise ValueError(f"position side must be 'long' or 'short', got {pos!r}") from None


def order_sides(ai: Any, side: Side | str, pos: PositionSide | str) -> tuple[Side, PositionSide]:
    """Parsed side and position side; a short on a spot market is refused."""
    side, pos = parse_side(side), parse_pos(pos)
    if pos is PositionSide.SHORT and not ai.market.is_derivative:
        raise ValueError(f"{ai.symbol} is a spot market: it has no short positions")
    return side, pos


def order_request(kind: str, ai: Any, amount: float, price: float | None, side: Side,
                  pos: PositionSide, tif: TimeInForce, reduce_only: bool) -> dict[str, Any]:
    """What the strategy asked for, as the order-error event records it."""
    return {"type": kind, "symbol": ai.symbol, "amount": amount, "price": price,
            "side": side.value, "pos": pos.value, "tif": tif.value, "reduce_only": reduce_only}


_TIF_ALIASES = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK,
                "PO": TimeInForce.POST_ONLY, "POSTONLY": TimeInForce.POST_ONLY,
                "POST_ONLY": TimeInForce.POST_ONLY, "GTX": TimeInForce.POST_ONLY}


def parse_tif(tif: TimeInForce | str) -> TimeInForce:
    if isinstance(tif, TimeInForce):
        return tif
    try:
        return _TIF_ALIASES[str(tif).upper()]
    except KeyError:
        raise ValueError(f"time in force must be one of GTC, IOC, FOK, PO (post-only), "
                         f"got {tif!r}") from None
