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
from .orders import (CONDITIONAL, Order, OrderStatus, OrderType, PositionSide, Side, TimeInForce,
                     Trade)
from .positions import liquidation_price
from .risk import RiskEvent, TradingState, carry_times, count_order


# enum lookups by value: several times cheaper than calling the enum class
_SIDE = {m.value: m for m in Side}
_POS = {m.value: m for m in PositionSide}
_TYPE = {m.value: m for m in OrderType}
_TIF = {m.value: m for m in TimeInForce}


def order_payload(o: Order) -> dict[str, Any]:
    d = {"id": o.id, "symbol": o.symbol, "side": o.side.value, "type": o.type.value,
         "amount": o.amount, "price": o.price, "date": o.date, "tif": o.tif.value,
         "pos": o.pos.value, "reduce_only": o.reduce_only, "leverage": o.leverage,
         "client_id": o.client_id, "filled": o.filled, "cost": o.cost}
    if o.type in CONDITIONAL or o.group or o.legs:
        d.update(trigger=o.trigger, trail=o.trail, trail_pct=o.trail_pct,
                 activation=o.activation, triggered=o.triggered, group=o.group,
                 pair=o.pair, legs=o.legs, route=o.route)
    if o.entry:
        d["entry"] = o.entry
    return d


def order_from_payload(d: Mapping[str, Any]) -> Order:
    o = Order(id=str(d["id"]), symbol=d["symbol"], side=_SIDE[d["side"]],
              type=_TYPE[d["type"]], amount=float(d["amount"]), price=float(d["price"]),
              date=int(d["date"]), tif=_TIF[d.get("tif", "GTC")],
              pos=_POS[d.get("pos", "long")], reduce_only=bool(d.get("reduce_only")),
              leverage=float(d.get("leverage", 1.0)), client_id=str(d.get("client_id", "")),
              filled=float(d.get("filled") or 0.0), cost=float(d.get("cost") or 0.0))
    if "trigger" in d:
        o.trigger, o.trail = float(d["trigger"] or 0.0), float(d.get("trail") or 0.0)
        o.trail_pct, o.activation = bool(d.get("trail_pct")), float(d.get("activation") or 0.0)
        o.triggered, o.group = bool(d.get("triggered")), str(d.get("group") or "")
        o.pair = str(d.get("pair") or "")
        o.legs, o.route = d.get("legs") or None, str(d.get("route") or "")
    if "entry" in d:  # a bracket's exit (traces before it was named have none)
        o.entry = str(d["entry"])
    return o


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


@attrs.define(slots=True)
class Effect:
    """What an applied event changed, for the engine to tell the strategy (read only; not
    frozen, since one is made per fill and frozen classes are slower to build)."""

    order: Order | None = None
    trade: Trade | None = None
    position: PositionChange = PositionChange.NONE
    symbol: str | None = None
    side: PositionSide = PositionSide.LONG
    risk: RiskEvent | None = None


NO_EFFECT = Effect()
_apply_fill, _add_order = accounting.apply_fill, accounting.add_order  # once a fill each


def _asset(state: State, symbol: str) -> AssetInstance:
    ai = state.assets.get(symbol)
    if ai is None:
        raise KeyError(f"event for {symbol!r}, which is not among the strategy's assets "
                       f"({', '.join(state.assets)})")
    return ai


def as_payload(event: Any) -> Mapping[str, Any]:
    """The JSON-able payload of an event given as a payload or as a model object."""
    if isinstance(event, Trade):
        return trade_payload(event)
    if isinstance(event, Order):
        return order_payload(event)
    return event


def _order_created(state: State, d: Mapping[str, Any] | Order) -> Effect:
    if d.__class__ is Order:
        order, symbol, oid = d, d.symbol, d.id
    else:
        order, symbol, oid = None, d["symbol"], d["id"]
    ai = state.assets.get(symbol) or _asset(state, symbol)
    if oid in ai.orders:  # a duplicate event must not commit twice
        return NO_EFFECT
    if order is None:
        order = order_from_payload(d)
    _add_order(state, ai, order)
    times = state.risk.orders  # the order throttle counts created orders, oldest first
    if not times or order.date >= times[-1]:
        times.append(order.date)
    else:  # (live) an order adopted or carried over, created before the last one counted
        count_order(times, order.date)
    return Effect(order)


def _trade(state: State, d: Mapping[str, Any] | Trade) -> Effect:
    model = d.__class__ is Trade
    trade = d if model else trade_from_payload(d)
    symbol, tid = trade.symbol, trade.id
    ai = state.assets.get(symbol) or _asset(state, symbol)
    order = ai.orders.get(trade.order_id)
    if order is None or (tid and tid in ai.trade_ids):
        return NO_EFFECT  # not (or no longer) open here, or a fill already counted
    if tid:
        ai.trade_ids.add(tid)
    if model:
        change = _apply_fill(state, ai, order, trade)
    else:  # live: a snapshot may show the fill already (see apply_fill)
        change = accounting.apply_fill(state, ai, order, trade,
                                       in_balance=bool(d.get("in_balance")),
                                       in_position=bool(d.get("in_position")))
    return Effect(order, trade, change, symbol, trade.pos)


def _order_closed(state: State, d: Mapping[str, Any]) -> Effect:
    ai = _asset(state, d["symbol"])
    order = ai.orders.get(str(d["id"]))
    if order is None:
        return NO_EFFECT
    status = OrderStatus(d.get("status", "canceled"))
    accounting.cancel_order(state, ai, order, status)
    if status is OrderStatus.REJECTED and order.date in state.risk.orders:
        # refused where it executes (live: by the exchange, after it was created and
        # counted): the throttle does not count it, as the sim and paper, which refuse
        # it before it is created
        state.risk.orders.remove(order.date)
    return Effect(order=order)


def _order_updated(state: State, d: Mapping[str, Any]) -> Effect:
    """An open order's status changed without a fill: (live) its submit outcome became
    unknown, or an order of unknown outcome was found on the exchange."""
    ai = _asset(state, d["symbol"])
    order = ai.orders.get(str(d["id"]))
    status = OrderStatus(d.get("status", "open"))
    if order is None or status not in (OrderStatus.OPEN, OrderStatus.UNKNOWN):
        return NO_EFFECT
    order.status = status
    return Effect(order=order)


def _order_triggered(state: State, d: Mapping[str, Any]) -> Effect:
    """A conditional order fired: from now on it is a market order (or a limit at its
    `price`). Live's emulation names the order it sent (`client_id`)."""
    ai = _asset(state, d["symbol"])
    order = ai.orders.get(str(d["id"]))
    if order is None or order.triggered:
        return NO_EFFECT
    order.triggered = True
    if d.get("client_id"):
        order.client_id = str(d["client_id"])
    return Effect(order=order)


def _trigger_moved(state: State, d: Mapping[str, Any]) -> Effect:
    """A trailing stop's stop followed the price (never back)."""
    ai = _asset(state, d["symbol"])
    order = ai.orders.get(str(d["id"]))
    if order is not None:
        order.trigger = float(d["trigger"])
    return NO_EFFECT


def _legs_covered(state: State, d: Mapping[str, Any]) -> Effect:
    """How much of a bracket entry's fills its exits cover now (placed, or being placed):
    an event, so that a restart and a replay know which parts have exits already."""
    order = _asset(state, d["symbol"]).orders.get(str(d["id"]))
    if order is not None and order.legs:
        order.legs = {**order.legs, "covered": float(d["covered"])}
    return NO_EFFECT


def _liquidation(state: State, d: Mapping[str, Any] | Trade) -> Effect:
    trade = d if isinstance(d, Trade) else trade_from_payload(d)
    ai = _asset(state, trade.symbol)
    change = accounting.liquidate(state, ai, trade)
    return Effect(trade=trade, position=change, symbol=ai.symbol, side=trade.pos)


def _leverage(state: State, d: Mapping[str, Any]) -> Effect:
    ai = _asset(state, d["symbol"])
    ai.leverage = float(d["leverage"])
    return NO_EFFECT


def _balance(state: State, d: Mapping[str, Any]) -> Effect:
    """Take the exchange's balances as the truth (payload: {"total": {currency: amount}}).

    Spot: cash is the quote total, each asset's balance its base total. Margin: the quote
    total less the margin that local positions hold (the exchange counts it in the total).
    """
    total = d.get("total") or {}
    if state.quote in total and total[state.quote] is not None:
        held = sum(p.margin for ai in state.assets.values() for p in (ai.long, ai.short)
                   if ai.market.is_derivative)
        state.cash = float(total[state.quote]) - held
    for ai in state.assets.values():
        m = ai.market
        if not m.is_derivative and total.get(m.base) is not None:
            ai.balance = float(total[m.base])
    return NO_EFFECT


def _position(state: State, d: Mapping[str, Any]) -> Effect:
    """Take an exchange position as the truth (amount, entry, margin, leverage, liquidation).

    The wallet holds the position's margin: what the margin grows by, the cash gives (and
    what it shrinks by, the cash gets), as when a fill moves it; a balance update then
    sets the cash to the wallet less the margins."""
    ai = _asset(state, d["symbol"])
    pos = ai.position(d.get("side", "long"))
    was_open = pos.amount > 0
    margin = pos.margin
    amount = float(d.get("amount") or 0.0)
    if amount <= 0:
        pos.reset()
        change = PositionChange.CLOSED if was_open else PositionChange.NONE
    else:
        pos.amount = amount
        pos.entry_price = float(d.get("entry_price") or pos.entry_price)
        pos.margin = float(d.get("margin") or pos.margin)
        pos.leverage = float(d.get("leverage") or ai.leverage)
        liquidation = d.get("liquidation_price")  # a stream update may not say: reckoned
        pos.liquidation_price = float(liquidation) if liquidation else liquidation_price(
            pos.side, pos.entry_price, amount * ai.market.contract_size, pos.margin,
            ai.market.maintenance_margin_rate)
        change = PositionChange.UPDATED if was_open else PositionChange.OPENED
    state.cash -= pos.margin - margin
    accounting.settle(state, ai)
    return Effect(position=change, symbol=ai.symbol, side=pos.side)


def _history(state: State, d: Mapping[str, Any]) -> Effect:
    """Trades found at start-up: history only, since the balances already include them."""
    for t in d.get("trades") or ():
        trade = trade_from_payload(t)
        ai = state.assets.get(trade.symbol)
        if ai is None or (trade.id and trade.id in ai.trade_ids):
            continue
        ai.trade_ids.add(trade.id)
        ai.trades.append(trade)
        state.trades.append(trade)
    return NO_EFFECT


def _order_error(state: State, d: Mapping[str, Any]) -> Effect:
    """A failed order or action: the error-rate breaker counts it (payload time `ts`, ms),
    unless it was counted already (`counted`: as the exchange error of its request)."""
    if not d.get("counted"):
        state.risk.errors.append(int(d.get("ts") or 0))
    return NO_EFFECT


def _exchange_error(state: State, d: Mapping[str, Any]) -> Effect:
    """An exchange or connection error. One of an order request (its payload names the
    `request`: a submit or cancel that got no answer) counts toward the error-rate
    breaker, as an order error does; errors of data and account streams change nothing."""
    if d.get("request") is not None:
        state.risk.errors.append(int(d.get("ts") or 0))
    return NO_EFFECT


def _risk_measured(state: State, d: Mapping[str, Any]) -> Effect:
    """The loss breakers' measurements: the UTC day, the equity it started at, the peak."""
    risk = state.risk
    risk.day = int(d["day"])
    risk.day_start_equity = float(d["day_start_equity"])
    risk.peak_equity = float(d["peak_equity"])
    return NO_EFFECT


def _risk_carried(state: State, d: Mapping[str, Any]) -> Effect:
    """The rate windows an earlier run left (live: a restart), counted once: the creation
    times of its orders of the last minute (the throttle) and the times of its order
    errors (the error-rate breaker)."""
    risk = state.risk
    carry_times(risk.orders, [int(t) for t in d.get("orders") or ()])
    carry_times(risk.errors, [int(t) for t in d.get("errors") or ()])
    return NO_EFFECT


def _risk_event(kind: str, d: Mapping[str, Any], previous: TradingState,
                state: TradingState) -> RiskEvent:
    request = d.get("request")
    return RiskEvent(kind=kind, rule=str(d.get("rule", "")), reason=str(d.get("reason", "")),
                     state=state, previous=previous, time=int(d.get("ts") or 0),
                     symbol=d.get("symbol"), request=dict(request) if request else None)


def _risk_denied(state: State, d: Mapping[str, Any]) -> Effect:
    """An order or action the risk rules refused (it never reached the mode's executor)."""
    risk = state.risk
    risk.denied += 1
    if (d.get("request") or {}).get("type") == "leverage":
        risk.denied_leverage += 1
    return Effect(risk=_risk_event("denied", d, risk.trading, risk.trading))


def _trading_state(state: State, d: Mapping[str, Any]) -> Effect:
    """The trading state moves (a breaker, or a reset). A reset carries the equity it
    happened at: the drawdown peak and the day's start are measured from it again, and
    the errors counted so far are forgiven."""
    risk = state.risk
    previous, new = risk.trading, TradingState(d["state"])
    risk.trading = new
    risk.changes.append(dict(d))
    if d.get("equity") is not None:
        risk.peak_equity = risk.day_start_equity = float(d["equity"])
        risk.errors.clear()
    return Effect(risk=_risk_event("state_changed", d, previous, new))


def _nothing(state: State, d: Mapping[str, Any]) -> Effect:
    return NO_EFFECT


APPLY: dict[str, Callable[[State, Mapping[str, Any]], Effect]] = {
    "order_created": _order_created,
    "trade_created": _trade,
    "trade_emulated": _trade,
    "order_closed": _order_closed,
    "order_updated": _order_updated,
    "order_cancelled_local": _order_closed,
    "liquidation": _liquidation,
    "leverage_updated": _leverage,
    "balance_updated": _balance,
    "position_updated": _position,
    "sync_result": _history,
    "order_error": _order_error,
    "exchange_error": _exchange_error,
    "risk_denied": _risk_denied,
    "trading_state_changed": _trading_state,
    "risk_measured": _risk_measured,
    "risk_carried": _risk_carried,
    "order_triggered": _order_triggered,
    "trigger_moved": _trigger_moved,
    "legs_covered": _legs_covered,
}


def apply_event(state: State, kind: str, payload: Mapping[str, Any] | Order | Trade) -> Effect:
    """Apply one event to `state`. Kinds that change no state (errors, market data) do nothing.

    Order and trade events may come as the model object itself (the sim's fast path) or as
    its payload (live, replay): both go through the same function.
    """
    return APPLY.get(kind, _nothing)(state, payload)
