"""The actions as small types, and `call`'s arguments parsed into them once.

Each parser has the action's own signature, so Python itself refuses a missing or an
unknown argument; the parser then checks every value's type and range and raises
InvalidArgument naming the argument, its value and what is allowed. A mode never sees an
unchecked argument. Requests are slots classes that nothing changes after parsing.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from ..core.clock import MAX_WAIT
from ..core.errors import InvalidArgument, UnknownSymbol, shown
from ..core.instances import AssetInstance
from ..core.orders import OrderType, PositionSide, Side, TimeInForce, opens_position

if TYPE_CHECKING:  # the engine's methods take requests: for the annotations only
    from .engine import Engine

_INF = math.inf
_LONG = PositionSide.LONG
_SIDES = {"buy": Side.BUY, "sell": Side.SELL, Side.BUY: Side.BUY, Side.SELL: Side.SELL}
_POS = {"long": PositionSide.LONG, "short": PositionSide.SHORT,
        PositionSide.LONG: PositionSide.LONG, PositionSide.SHORT: PositionSide.SHORT}
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK,
        "PO": TimeInForce.POST_ONLY, "POSTONLY": TimeInForce.POST_ONLY,
        "POST_ONLY": TimeInForce.POST_ONLY, "GTX": TimeInForce.POST_ONLY}


@attrs.define(slots=True)
class MarketOrder:
    """Buy or sell `amount` at the market."""

    ai: AssetInstance
    amount: float
    side: Side = Side.BUY
    pos: PositionSide = PositionSide.LONG
    reduce_only: bool = False
    date: int | None = None
    waitfor: float | None = None
    synced: bool = True

    type = OrderType.MARKET
    tif = TimeInForce.IOC
    price = None

    def payload(self) -> dict[str, Any]:
        """What the strategy asked for, as order-error and risk events record it."""
        return _order_payload(self)


@attrs.define(slots=True)
class LimitOrder:
    """Buy or sell `amount` at `price` or better, for as long as `tif` says."""

    ai: AssetInstance
    amount: float
    price: float
    side: Side = Side.BUY
    tif: TimeInForce = TimeInForce.GTC
    pos: PositionSide = PositionSide.LONG
    reduce_only: bool = False
    date: int | None = None
    waitfor: float | None = None
    synced: bool = True

    type = OrderType.LIMIT

    def payload(self) -> dict[str, Any]:
        return _order_payload(self)


OrderRequest = MarketOrder | LimitOrder


def _order_payload(r: OrderRequest) -> dict[str, Any]:
    return {"type": r.type.value, "symbol": r.ai.symbol, "amount": r.amount, "price": r.price,
            "side": r.side.value, "pos": r.pos.value, "tif": r.tif.value,
            "reduce_only": r.reduce_only}


@attrs.define(slots=True)
class CancelOrders:
    """Cancel the open orders of one asset (None: all) on one side (None: both), or by id.
    `retry`: a cancel the exchange did not take is sent again until the order is closed
    (a halt's: live sends it every `inflight_every` s)."""

    ai: AssetInstance | None = None
    side: Side | None = None
    ids: tuple[str, ...] | None = None
    waitfor: float | None = None
    confirm: bool = False
    synced: bool = True
    retry: bool = False

    def payload(self) -> dict[str, Any]:
        return {"type": "cancel", "symbol": self.ai.symbol if self.ai else None,
                "side": self.side.value if self.side else "both",
                "ids": list(self.ids) if self.ids is not None else None}


@attrs.define(slots=True)
class UpdateLeverage:
    """Set the leverage of an isolated-margin asset for its next orders."""

    ai: AssetInstance
    leverage: float
    pos: PositionSide = PositionSide.LONG

    def payload(self) -> dict[str, Any]:
        return {"type": "leverage", "symbol": self.ai.symbol, "leverage": self.leverage,
                "pos": self.pos.value}


@attrs.define(slots=True)
class ClosePosition:
    """Bring one asset (None: every asset) back to flat: see `pipeline.close_position`."""

    ai: AssetInstance | None = None
    pos: PositionSide | None = None

    def payload(self) -> dict[str, Any]:
        return {"type": "close", "symbol": self.ai.symbol if self.ai else None,
                "pos": self.pos.value if self.pos else None}


@attrs.define(slots=True)
class WatchOHLCV:
    """Start or refresh live candles of one asset (None: all), of the strategy's own
    timeframe; nothing to do in a backtest."""

    ai: AssetInstance | None = None
    timeframe: str | None = None


@attrs.define(slots=True)
class ResetTradingState:
    """Leave REDUCING or HALTED: trading is ACTIVE again, the loss breakers measure from now."""

    reason: str = ""


Request = (MarketOrder | LimitOrder | CancelOrders | UpdateLeverage | ClosePosition | WatchOHLCV
           | ResetTradingState)


# ---- checks of single values -------------------------------------------------------------
def _bad(action: str, name: str, value: Any, allowed: str) -> InvalidArgument:
    return InvalidArgument(f"{action}: {name} must be {allowed}, got {shown(value)}"
                           + ("" if isinstance(value, (str, int, float)) or value is None
                              else f" ({type(value).__name__})"))


def check_number(action: str, name: str, value: Any, low: float = 0.0,
                 low_ok: bool = False) -> float:
    """`value` as a finite float above `low` (at or above it with `low_ok`); bools refused."""
    given = value
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _bad(action, name, value, "a number")
        try:
            value = float(value)
        except OverflowError:  # an int (or a Fraction) beyond any float
            value = _INF
    if not (value > low or low_ok and value == low) or value == _INF:
        raise _bad(action, name, given, f"a finite number {'>=' if low_ok else '>'} {low:g}")
    return value


def check_flag(action: str, name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise _bad(action, name, value, "True or False")


def check_side(action: str, value: Any, both: bool = False) -> Side | None:
    try:
        found = _SIDES.get(value)
    except TypeError:  # unhashable
        found = None
    if found is None:
        if both and (value is None or isinstance(value, str) and value == "both"):
            return None
        raise _bad(action, "side", value, "'buy' or 'sell'" + (" or 'both'" if both else ""))
    return found


def check_pos(action: str, ai: AssetInstance | None, value: Any) -> PositionSide:
    try:
        found = _POS.get(value)
    except TypeError:
        found = None
    if found is None:
        raise _bad(action, "pos", value, "'long' or 'short'")
    if found is PositionSide.SHORT and ai is not None and not ai.market.is_derivative:
        raise InvalidArgument(f"{action}: {ai.symbol} is a spot market: it has no short positions")
    return found


def check_reduces(action: str, side: Side, pos: PositionSide) -> None:
    """A reduce-only order must be on the side that reduces its position: a sell reduces a
    long, a buy a short (a sell of a short adds to it, and was applied as reducing it)."""
    if opens_position(side, pos):
        other = "sell" if side is Side.BUY else "buy"
        raise InvalidArgument(f"{action}: reduce_only=True needs the side that reduces the "
                              f"{pos.value} position, side={other!r}; a {side.value} adds to "
                              f"it, got side={side.value!r}, pos={pos.value!r}")


def check_tif(action: str, value: Any) -> TimeInForce:
    if isinstance(value, TimeInForce):
        return value
    found = _TIF.get(value.upper()) if isinstance(value, str) else None
    if found is None:
        raise _bad(action, "tif", value, "one of GTC, IOC, FOK, PO (post-only)")
    return found


def check_asset(e: Engine, action: str, value: Any, optional: bool = False) -> AssetInstance | None:
    """The strategy's asset named by `value` (a symbol or one of its asset instances)."""
    if isinstance(value, str):  # a str, or numpy's
        found = e.state.assets.get(value)
        if found is None:
            raise UnknownSymbol.among(str(value), e.state.assets, f"{e.name}'s universe")
        return found
    if isinstance(value, AssetInstance):
        if e.state.assets.get(value.symbol) is not value:
            raise _bad(action, "asset", value, f"one of {e.name}'s assets")
        return value
    if value is None and optional:
        return None
    raise _bad(action, "asset", value, "a symbol or an asset instance of the strategy"
               + (", or None for all" if optional else ""))


def check_date(action: str, value: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise _bad(action, "date", value, "None or a time in epoch milliseconds (int)")


def check_wait(action: str, value: Any) -> float | None:
    """`waitfor`: None (the run's) or seconds from 0 to MAX_WAIT."""
    if value is None:
        return None
    wait = check_number(action, "waitfor", value, 0.0, low_ok=True)
    if wait > MAX_WAIT:
        raise _bad(action, "waitfor", value, f"None or seconds from 0 to {MAX_WAIT:g} (a day)")
    return wait


def check_ids(action: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, set, frozenset)) and all(
            isinstance(x, str) and x for x in value):
        # a set's order changes from run to run (str hashes): the trace records them sorted
        return tuple(sorted(value)) if isinstance(value, (set, frozenset)) else tuple(value)
    raise _bad(action, "ids", value, "None or a list of order ids (strings)")


# ---- one parser per action: the action's signature, the checks, the request --------------
def market_order(e: Engine, ai: Any, amount: Any, *, side: Any = "buy", pos: Any = "long",
                 reduce_only: Any = False, date: Any = None, waitfor: Any = None,
                 synced: Any = True) -> MarketOrder:
    a = "market_order"
    # the asset instance of this strategy (most orders): _asset's first case, one call less
    asset_ = ai if ai.__class__ is AssetInstance and e.state.assets.get(ai.symbol) is ai \
        else _asset(e, a, ai)
    if amount.__class__ is not float or not 0.0 < amount < _INF:
        amount = check_number(a, "amount", amount)
    side_ = _SIDES.get(side) if side.__class__ is str else None
    pos_ = _LONG if pos.__class__ is str and pos == "long" else check_pos(a, asset_, pos)
    side_ = side_ or check_side(a, side)
    if reduce_only is not False or synced is not True or date is not None or waitfor is not None:
        reduce_only, date, waitfor, synced = _options(a, reduce_only, date, waitfor, synced)
        if reduce_only:
            check_reduces(a, side_, pos_)  # type: ignore[arg-type]
    return MarketOrder(asset_, amount, side_, pos_, reduce_only, date,  # type: ignore[arg-type]
                       waitfor, synced)


def limit_order(e: Engine, ai: Any, amount: Any, price: Any, *, side: Any = "buy", tif: Any = "GTC",
                pos: Any = "long", reduce_only: Any = False, date: Any = None,
                waitfor: Any = None, synced: Any = True) -> LimitOrder:
    a = "limit_order"
    asset_ = ai if ai.__class__ is AssetInstance and e.state.assets.get(ai.symbol) is ai \
        else _asset(e, a, ai)
    if amount.__class__ is not float or not 0.0 < amount < _INF:
        amount = check_number(a, "amount", amount)
    if price.__class__ is not float or not 0.0 < price < _INF:
        price = check_number(a, "price", price)
    side_ = _SIDES.get(side) if side.__class__ is str else None
    pos_ = _LONG if pos.__class__ is str and pos == "long" else check_pos(a, asset_, pos)
    side_ = side_ or check_side(a, side)
    if reduce_only is not False or synced is not True or date is not None or waitfor is not None:
        reduce_only, date, waitfor, synced = _options(a, reduce_only, date, waitfor, synced)
        if reduce_only:
            check_reduces(a, side_, pos_)  # type: ignore[arg-type]
    tif_ = _TIF.get(tif) if tif.__class__ is str else None
    return LimitOrder(asset_, amount, price, side_,  # type: ignore[arg-type]
                      tif_ or check_tif(a, tif), pos_, reduce_only, date, waitfor, synced)


# the checks above with the common case first: what nearly every order passes costs little
def _asset(e: Engine, action: str, value: Any) -> AssetInstance:
    cls = value.__class__
    if cls is str:
        found = e.state.assets.get(value)
    elif cls is AssetInstance:
        found = value if e.state.assets.get(value.symbol) is value else None
    else:
        found = None
    if found is None:
        found = check_asset(e, action, value)
    return found  # type: ignore[return-value]


def _options(action: str, reduce_only: Any, date: Any, waitfor: Any,
             synced: Any) -> tuple[bool, int | None, float | None, bool]:
    if reduce_only is not False and reduce_only is not True:
        reduce_only = check_flag(action, "reduce_only", reduce_only)
    if synced is not True and synced is not False:
        synced = check_flag(action, "synced", synced)
    if date is not None or waitfor is not None:
        date, waitfor = check_date(action, date), check_wait(action, waitfor)
    return reduce_only, date, waitfor, synced


def cancel_orders(e: Engine, ai: Any = None, side: Any = "both", *, ids: Any = None,
                  waitfor: Any = None, confirm: Any = False, synced: Any = True) -> CancelOrders:
    a = "cancel_orders"
    return CancelOrders(check_asset(e, a, ai, optional=True), check_side(a, side, both=True),
                        check_ids(a, ids), check_wait(a, waitfor),
                        check_flag(a, "confirm", confirm), check_flag(a, "synced", synced))


def update_leverage(e: Engine, ai: Any, leverage: Any, pos: Any = "long") -> UpdateLeverage:
    a = "update_leverage"
    asset_ = check_asset(e, a, ai)
    return UpdateLeverage(asset_, check_number(a, "leverage", leverage), check_pos(a, None, pos))


def close_position(e: Engine, ai: Any = None, pos: Any = None) -> ClosePosition:
    a = "close_position"
    asset_ = check_asset(e, a, ai, optional=True)
    return ClosePosition(asset_, None if pos is None else check_pos(a, asset_, pos))


def watch_ohlcv(e: Engine, ai: Any = None, timeframe: Any = None) -> WatchOHLCV:
    a = "watch_ohlcv"
    own = e.strategy.timeframe
    # the candles a run watches are its own (an array compared with == is no answer)
    if timeframe is not None and not (isinstance(timeframe, str) and timeframe == own):
        raise _bad(a, "timeframe", timeframe, f"None or the strategy's timeframe {own!r}")
    return WatchOHLCV(check_asset(e, a, ai, optional=True), timeframe)


def reset_trading_state(e: Engine, reason: Any = "") -> ResetTradingState:
    if not isinstance(reason, str):
        raise _bad("reset_trading_state", "reason", reason, "a string")
    return ResetTradingState(reason)
