"""Events in, state changes out: the single consumer that sim, paper, live and replay share.

Payloads are plain JSON-able dicts (they go to the EventTrace as they are). `apply_event`
turns one event into calls of the accounting functions and says what changed.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import attrs

from . import accounting
from .accounting import PositionChange
from .instances import AssetInstance, State
from .orders import Order, OrderStatus, OrderType, PositionSide, Side, TimeInForce, Trade


# enum lookups by value: several times cheaper than calling the enum class
_SIDE = {m.value: m for m in Side}
_POS = {m.value: m for m in PositionSide}
_TYPE = {m.value: m for m in OrderType}
_TIF = {m.value: m for m in TimeInForce}


def order_payload(o: Order) -> dict[str, Any]:
    return {"id": o.id, "symbol": o.symbol, "side": o.side.value, "type": o.type.value,
            "amount": o.amount, "price": o.price, "date": o.date, "tif": o.tif.value,
            "pos": o.pos.value, "reduce_only": o.reduce_only, "leverage": o.leverage,
            "client_id": o.client_id}


def order_from_payload(d: Mapping[str, Any]) -> Order:
    return Order(id=str(d["id"]), symbol=d["symbol"], side=_SIDE[d["side"]],
                 type=_TYPE[d["type"]], amount=float(d["amount"]), price=float(d["price"]),
                 date=int(d["date"]), tif=_TIF[d.get("tif", "GTC")],
                 pos=_POS[d.get("pos", "long")], reduce_only=bool(d.get("reduce_only")),
                 leverage=float(d.get("leverage", 1.0)), client_id=str(d.get("client_id", "")))


def trade_payload(t: Trade) -> dict[str, Any]:
    return {"order_id": t.order_id, "symbol": t.symbol, "side": t.side.value,
            "pos": t.pos.value, "date": t.date, "amount": t.amount, "price": t.price,
            "cost": t.cost, "fee": t.fee, "fee_currency": t.fee_currency,
            "leverage": t.leverage, "taker": t.taker, "id": t.id}


def trade_from_payload(d: Mapping[str, Any]) -> Trade:
    return Trade(order_id=str(d["order_id"]), symbol=d["symbol"], side=_SIDE[d["side"]],
                 pos=_POS[d.get("pos", "long")], date=int(d["date"]),
                 amount=float(d["amount"]), price=float(d["price"]), cost=float(d["cost"]),
                 fee=float(d["fee"]), fee_currency=d["fee_currency"],
                 leverage=float(d.get("leverage", 1.0)), taker=bool(d.get("taker", True)),
                 id=str(d.get("id", "")))


@attrs.frozen(slots=True)
class Effect:
    """What an applied event changed, for the engine to tell the strategy."""

    order: Order | None = None
    trade: Trade | None = None
    position: PositionChange = PositionChange.NONE


NO_EFFECT = Effect()


def _asset(state: State, symbol: str) -> AssetInstance:
    try:
        return state.assets[symbol]
    except KeyError:
        raise KeyError(f"event for {symbol!r}, which is not among the strategy's assets "
                       f"({', '.join(state.assets)})") from None


def _order_created(state: State, d: Mapping[str, Any]) -> Effect:
    ai = _asset(state, d["symbol"])
    if d["id"] in ai.orders:  # a duplicate event must not commit twice
        return NO_EFFECT
    order = order_from_payload(d)
    accounting.add_order(state, ai, order)
    return Effect(order=order)


def _trade(state: State, d: Mapping[str, Any]) -> Effect:
    ai = _asset(state, d["symbol"])
    trade = trade_from_payload(d)
    order = ai.orders.get(trade.order_id)
    if order is None:
        return NO_EFFECT  # a fill of an order that is not (or no longer) open here
    change = accounting.apply_fill(state, ai, order, trade)
    return Effect(order=order, trade=trade, position=change)


def _order_closed(state: State, d: Mapping[str, Any]) -> Effect:
    ai = _asset(state, d["symbol"])
    order = ai.orders.get(str(d["id"]))
    if order is None:
        return NO_EFFECT
    accounting.cancel_order(state, ai, order, OrderStatus(d.get("status", "canceled")))
    return Effect(order=order)


def _liquidation(state: State, d: Mapping[str, Any]) -> Effect:
    ai = _asset(state, d["symbol"])
    trade = trade_from_payload(d)
    change = accounting.liquidate(state, ai, trade)
    return Effect(trade=trade, position=change)


def _leverage(state: State, d: Mapping[str, Any]) -> Effect:
    ai = _asset(state, d["symbol"])
    ai.leverage = float(d["leverage"])
    return NO_EFFECT


def _nothing(state: State, d: Mapping[str, Any]) -> Effect:
    return NO_EFFECT


APPLY: dict[str, Callable[[State, Mapping[str, Any]], Effect]] = {
    "order_created": _order_created,
    "trade_created": _trade,
    "trade_emulated": _trade,
    "order_closed": _order_closed,
    "order_cancelled_local": _order_closed,
    "liquidation": _liquidation,
    "leverage_updated": _leverage,
}


def apply_event(state: State, kind: str, payload: Mapping[str, Any]) -> Effect:
    """Apply one event to `state`. Kinds that change no state (errors, market data) do nothing."""
    return APPLY.get(kind, _nothing)(state, payload)
