"""Conditional orders as request types, and their `call` arguments parsed into them.

Stop and take-profit orders (market, or a limit once triggered), trailing stops, OCO
pairs, brackets and the amendment of a stop. Like `requests.py`, each parser has the
action's own signature and checks every value once, raising InvalidArgument that names
the argument, its value and what is allowed; a mode never sees an unchecked argument.
The flows that place them are in `contingent.py`.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..core.errors import InvalidArgument
from ..core.instances import AssetInstance
from ..core.orders import OrderType, PositionSide, Side, TimeInForce, opens_position
from .requests import (_bad, check_asset, check_flag, check_number, check_pos, check_reduces,
                       check_side, check_tif, check_wait)

_SELL, _BUY = Side.SELL, Side.BUY
_KINDS = {("stop", False): OrderType.STOP_MARKET, ("stop", True): OrderType.STOP_LIMIT,
          ("take_profit", False): OrderType.TAKE_PROFIT_MARKET,
          ("take_profit", True): OrderType.TAKE_PROFIT_LIMIT}


@attrs.define(slots=True)
class StopOrder:
    """A stop (`kind` "stop") or a take-profit ("take_profit") of `amount`: it waits until
    the market reaches `trigger`, then it is a market order, or a limit at `limit`.

    A sell stop fires when the price falls to its trigger, a buy stop when it rises to
    it; a take-profit the other way round. `group` (set by the flows, never by the
    strategy) puts it in an OCO group, or makes it the replacement of a stop. `pair`
    (set by the flows: "oco" or "exits", see Order.pair) makes it the stop leg of a pair
    with a limit order: live holds such a stop itself, whichever leg goes first (on the
    exchange both legs would hold what the pair holds once), unless the venue holds it
    without funds and the pair is reduce-only on a derivative (live/executor.py).
    """

    ai: AssetInstance
    amount: float
    trigger: float
    side: Side = Side.SELL
    limit: float | None = None
    kind: str = "stop"
    pos: PositionSide = PositionSide.LONG
    reduce_only: bool = False
    group: str = ""
    waitfor: float | None = None
    pair: str = ""

    tif = TimeInForce.GTC
    date = None
    synced = True

    @property
    def type(self) -> OrderType:
        return _KINDS[self.kind, self.limit is not None]

    @property
    def price(self) -> float:
        """The price the order is checked and committed at: its limit, else its trigger."""
        return self.trigger if self.limit is None else self.limit

    def payload(self) -> dict[str, Any]:
        return {"type": self.type.value, "symbol": self.ai.symbol, "amount": self.amount,
                "trigger": self.trigger, "price": self.limit, "side": self.side.value,
                "pos": self.pos.value, "reduce_only": self.reduce_only}


@attrs.define(slots=True)
class TrailingStop:
    """A stop that follows the price at `percent` (a fraction: 0.02 is 2%) or at `offset`
    (a price distance), from the best price since it was armed: at once, or once the
    price reaches `activation`. It never moves back."""

    ai: AssetInstance
    amount: float
    side: Side = Side.SELL
    percent: float | None = None
    offset: float | None = None
    activation: float | None = None
    pos: PositionSide = PositionSide.LONG
    reduce_only: bool = False
    waitfor: float | None = None

    type = OrderType.TRAILING_STOP
    tif = TimeInForce.GTC
    date = None
    synced = True
    limit = None
    group = ""

    @property
    def trail(self) -> float:
        return self.percent if self.percent is not None else self.offset  # type: ignore

    def payload(self) -> dict[str, Any]:
        return {"type": self.type.value, "symbol": self.ai.symbol, "amount": self.amount,
                "percent": self.percent, "offset": self.offset, "activation": self.activation,
                "side": self.side.value, "pos": self.pos.value, "reduce_only": self.reduce_only}


@attrs.define(slots=True)
class OcoOrder:
    """Two orders of `amount` on one side where the first fill of one cancels the other:
    a limit at `price` (the take-profit) and a stop at `stop` (a market order once
    triggered, or a limit at `stop_limit`), as Binance's OCO lists. They hold one
    commitment between them."""

    ai: AssetInstance
    amount: float
    price: float
    stop: float
    side: Side = Side.SELL
    stop_limit: float | None = None
    pos: PositionSide = PositionSide.LONG
    reduce_only: bool = False
    waitfor: float | None = None

    def payload(self) -> dict[str, Any]:
        return {"type": "oco", "symbol": self.ai.symbol, "amount": self.amount,
                "price": self.price, "stop": self.stop, "stop_limit": self.stop_limit,
                "side": self.side.value, "pos": self.pos.value, "reduce_only": self.reduce_only}


@attrs.define(slots=True)
class BracketOrder:
    """An entry (a market order, or a limit at `price`) with a stop-loss at `stop_loss`
    (a limit at `stop_limit` once triggered, else a market order) and a take-profit limit
    at `take_profit`. The exits are an OCO pair on the other side for what the entry
    filled: one for each part that reaches the market's minimum while it rests, one for
    the rest once it is done (filled, or cancelled after a partial fill)."""

    ai: AssetInstance
    amount: float
    side: Side = Side.BUY
    price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    stop_limit: float | None = None
    pos: PositionSide = PositionSide.LONG
    tif: TimeInForce = TimeInForce.GTC
    waitfor: float | None = None

    def legs(self) -> dict[str, Any]:
        """The exits as the entry order keeps them (JSON: it goes to the trace)."""
        return {"stop_loss": self.stop_loss, "stop_limit": self.stop_limit,
                "take_profit": self.take_profit}

    def payload(self) -> dict[str, Any]:
        return {"type": "bracket", "symbol": self.ai.symbol, "amount": self.amount,
                "price": self.price, "side": self.side.value, "pos": self.pos.value,
                **self.legs()}


@attrs.define(slots=True)
class AmendStop:
    """Move an open stop or take-profit (named by its id or by its group) to `trigger`
    (and `limit`): the replacement is placed first, the old order cancelled after."""

    ai: AssetInstance
    id: str
    trigger: float
    limit: float | None = None

    def payload(self) -> dict[str, Any]:
        return {"type": "amend_stop", "symbol": self.ai.symbol, "id": self.id,
                "trigger": self.trigger, "price": self.limit}


# ---- parsers: the action's signature, the checks, the request ------------------------------
def _common(s: Any, a: str, ai: Any, amount: Any, side: Any, pos: Any,
            reduce_only: Any) -> tuple[AssetInstance, float, Side, PositionSide, bool]:
    asset = check_asset(s, a, ai)
    assert asset is not None
    amount_, side_ = check_number(a, "amount", amount), check_side(a, side)
    pos_, ro = check_pos(a, asset, pos), check_flag(a, "reduce_only", reduce_only)
    if ro:
        check_reduces(a, side_, pos_)  # type: ignore[arg-type]
    return asset, amount_, side_, pos_, ro  # type: ignore[return-value]


def _price(a: str, name: str, value: Any) -> float | None:
    return None if value is None else check_number(a, name, value)


def _stop(a: str, kind: str, s: Any, ai: Any, amount: Any, trigger: Any, side: Any,
          limit: Any, pos: Any, reduce_only: Any, waitfor: Any) -> StopOrder:
    asset, amount_, side_, pos_, ro = _common(s, a, ai, amount, side, pos, reduce_only)
    return StopOrder(asset, amount_, check_number(a, "trigger", trigger), side_,
                     _price(a, "limit", limit), kind, pos_, ro, "", check_wait(a, waitfor))


def stop_order(s: Any, ai: Any, amount: Any, trigger: Any, *, side: Any = "sell",
               limit: Any = None, pos: Any = "long", reduce_only: Any = False,
               waitfor: Any = None) -> StopOrder:
    return _stop("stop_order", "stop", s, ai, amount, trigger, side, limit, pos, reduce_only,
                 waitfor)


def take_profit_order(s: Any, ai: Any, amount: Any, trigger: Any, *, side: Any = "sell",
                      limit: Any = None, pos: Any = "long", reduce_only: Any = False,
                      waitfor: Any = None) -> StopOrder:
    return _stop("take_profit_order", "take_profit", s, ai, amount, trigger, side, limit, pos,
                 reduce_only, waitfor)


def trailing_stop_order(s: Any, ai: Any, amount: Any, *, side: Any = "sell",
                        percent: Any = None, offset: Any = None, activation: Any = None,
                        pos: Any = "long", reduce_only: Any = False,
                        waitfor: Any = None) -> TrailingStop:
    a = "trailing_stop_order"
    asset, amount_, side_, pos_, ro = _common(s, a, ai, amount, side, pos, reduce_only)
    if (percent is None) == (offset is None):
        raise InvalidArgument(f"{a}: give exactly one of percent (a fraction, such as 0.02 "
                              f"for 2%) or offset (a price distance), got percent={percent!r}, "
                              f"offset={offset!r}")
    if percent is not None:
        percent = check_number(a, "percent", percent)
        if percent >= 1.0:
            raise _bad(a, "percent", percent, "a fraction between 0 and 1 (0.02 is 2%)")
    offset_, activation_ = _price(a, "offset", offset), _price(a, "activation", activation)
    if side_ is _SELL and offset_ is not None and activation_ is not None \
            and offset_ >= activation_:
        raise InvalidArgument(f"{a}: a sell's offset must be below its activation (its stop "
                              f"starts at activation - offset), got offset={offset_:g}, "
                              f"activation={activation_:g}")
    return TrailingStop(asset, amount_, side_, percent, offset_, activation_, pos_, ro,
                        check_wait(a, waitfor))


def oco_order(s: Any, ai: Any, amount: Any, *, price: Any, stop: Any, side: Any = "sell",
              stop_limit: Any = None, pos: Any = "long", reduce_only: Any = False,
              waitfor: Any = None) -> OcoOrder:
    a = "oco_order"
    asset, amount_, side_, pos_, ro = _common(s, a, ai, amount, side, pos, reduce_only)
    price_, stop_ = check_number(a, "price", price), check_number(a, "stop", stop)
    if (price_ <= stop_) if side_ is _SELL else (price_ >= stop_):
        raise InvalidArgument(f"{a}: a {side_.value} OCO needs its limit price "
                              f"{'above' if side_ is _SELL else 'below'} its stop, got "
                              f"price={price_:g}, stop={stop_:g}")
    return OcoOrder(asset, amount_, price_, stop_, side_, _price(a, "stop_limit", stop_limit),
                    pos_, ro, check_wait(a, waitfor))


def bracket_order(s: Any, ai: Any, amount: Any, *, side: Any = "buy", price: Any = None,
                  stop_loss: Any = None, take_profit: Any = None, stop_limit: Any = None,
                  pos: Any = "long", tif: Any = "GTC", waitfor: Any = None) -> BracketOrder:
    a = "bracket_order"
    asset, amount_, side_, pos_, _ = _common(s, a, ai, amount, side, pos, False)
    if asset.market.is_derivative and not opens_position(side_, pos_):
        # its exits, reduce-only on the other side, would act on the position backwards
        opens = "long" if side_ is _BUY else "short"
        raise InvalidArgument(f"{a}: a {side_.value} entry opens a {opens} position, which "
                              f"its exits close: pos must be {opens!r}, got {pos_.value!r}")
    sl, tp = _price(a, "stop_loss", stop_loss), _price(a, "take_profit", take_profit)
    if sl is None and tp is None:
        raise InvalidArgument(f"{a}: give stop_loss, take_profit or both (prices); "
                              "without either it is a plain market_order or limit_order")
    if sl is not None and tp is not None and ((tp <= sl) if side_ is _BUY else (tp >= sl)):
        raise InvalidArgument(f"{a}: a {side_.value} entry needs its take_profit "
                              f"{'above' if side_ is _BUY else 'below'} its stop_loss, got "
                              f"stop_loss={sl:g}, take_profit={tp:g}")
    sl_limit = _price(a, "stop_limit", stop_limit)
    if sl_limit is not None and sl is None:
        raise InvalidArgument(f"{a}: stop_limit is the limit of the stop_loss once it "
                              f"triggers: give stop_loss with it, got stop_limit={sl_limit:g} "
                              "and no stop_loss")
    return BracketOrder(asset, amount_, side_, _price(a, "price", price), sl, tp, sl_limit,
                        pos_, check_tif(a, tif), check_wait(a, waitfor))


def amend_stop(s: Any, ai: Any, id: Any, trigger: Any, *, limit: Any = None) -> AmendStop:
    a = "amend_stop"
    asset = check_asset(s, a, ai)
    if not isinstance(id, str) or not id:
        raise _bad(a, "id", id, "the id (or group) of an open stop or take-profit order")
    return AmendStop(asset, id, check_number(a, "trigger", trigger),  # type: ignore[arg-type]
                     _price(a, "limit", limit))
