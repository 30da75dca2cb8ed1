"""ccxt's unified structures turned into planarpy event payloads (and nothing else)."""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from ...core.instances import AssetInstance
from ...core.orders import LIMIT_AFTER_TRIGGER, Order, OrderStatus, OrderType, PositionSide, Side
from ...exchanges.venues import Venue
from ...exchanges.venues.base import Conditional

STATUS = {"open": None, "closed": OrderStatus.CLOSED, "canceled": OrderStatus.CANCELED,
          "cancelled": OrderStatus.CANCELED, "expired": OrderStatus.CANCELED,
          "rejected": OrderStatus.REJECTED}


_LIMIT_KINDS = frozenset(t.value for t in LIMIT_AFTER_TRIGGER)
_ID_LENGTH = 23  # "pp", six hex of the strategy, eleven of the ms time, four digits


def client_id_prefix(strategy: str) -> str:
    """The start of every client order id a strategy sends: "pp" and a hash of its name."""
    return "pp" + hashlib.blake2b(strategy.encode(), digest_size=3).hexdigest()


def new_client_id(prefix: str, ms: int, n: int) -> str:
    """A client order id: the strategy's prefix, the time in ms and a counter below 10000."""
    return f"{prefix}{ms:011x}{n:04d}"


def is_planarpy_id(cid: str) -> bool:
    """Whether a client order id has the shape of one planarpy sent (any strategy)."""
    return len(cid) == _ID_LENGTH and cid.startswith("pp") and cid[2:19].isalnum() \
        and cid[19:].isdigit()


def closed_order_summary(o: Mapping[str, Any], cid: str) -> dict[str, Any]:
    """A recently closed order as recorded in the start-up summary."""
    return {"id": cid, "exchange_id": str(o.get("id")), "symbol": o.get("symbol"),
            "side": o.get("side"), "type": o.get("type"), "status": o.get("status"),
            "amount": o.get("amount"), "filled": o.get("filled"), "price": o.get("price"),
            "average": o.get("average"), "timestamp": o.get("timestamp")}


def _num(v: Any, default: float = 0.0) -> float:
    return default if v is None else float(v)


def position_side(venue: Venue, ai: AssetInstance, o: Mapping[str, Any],
                  side: Side) -> PositionSide:
    """Which position a ccxt order or trade acts on (one-way mode: reduce-only flips it)."""
    if not ai.market.is_derivative:
        return PositionSide.LONG
    named = venue.position_side(o)
    if named is not None:
        return PositionSide(named)
    pos = ai.open_position()
    reduce = bool(o.get("reduceOnly"))
    if pos is not None and (reduce or (side is Side.SELL) == (pos.side is PositionSide.LONG)):
        return pos.side
    return PositionSide.LONG if side is Side.BUY else PositionSide.SHORT


def order_payload(venue: Venue, ai: AssetInstance, o: Mapping[str, Any], local_id: str,
                  leverage: float) -> dict[str, Any]:
    """order_created payload for an order found on the exchange (adopted)."""
    side = Side(o["side"])
    tif = o.get("timeInForce") or "GTC"
    if o.get("postOnly"):
        tif = "PO"
    return {"id": local_id, "symbol": ai.symbol, "side": side.value,
            "type": "market" if o.get("type") == "market" else "limit",
            "amount": _num(o.get("amount")), "price": _num(o.get("price") or o.get("average")),
            "date": int(o.get("timestamp") or 0), "tif": tif if tif in ("GTC", "IOC", "FOK", "PO") else "GTC",
            "pos": position_side(venue, ai, o, side).value, "reduce_only": bool(o.get("reduceOnly")),
            "leverage": leverage, "client_id": venue.client_id(o), "exchange_id": str(o.get("id") or ""),
            "filled": _num(o.get("filled")), "cost": _num(o.get("cost"))}


def conditional_payload(c: Conditional) -> dict[str, Any]:
    """What an adopted native conditional order (`Venue.conditional`) adds to its
    order_created payload: its type, trigger, whether it fired, and its route. A market
    type's reference price is its trigger (a trailing stop's, else its activation)."""
    out: dict[str, Any] = {"type": c.kind, "trigger": c.trigger, "route": "native",
                           "triggered": c.fired}
    if c.kind == OrderType.TRAILING_STOP.value:
        out.update(trail=c.trail, trail_pct=True, activation=c.activation)
    if c.kind not in _LIMIT_KINDS and (c.trigger or c.activation):
        out["price"] = c.trigger or c.activation
    return out


def trade_payload(ai: AssetInstance, t: Mapping[str, Any], order_id: str, side: Side,
                  pos: PositionSide, leverage: float, when: int = 0) -> dict[str, Any]:
    """trade_created payload from a ccxt trade of local order `order_id` (the order's side,
    and `when` if the trade carries no time: the fills in an order reply have neither)."""
    m = ai.market
    amount = _num(t.get("amount"))
    price = _num(t.get("price"))
    fee = t.get("fee") or {}
    cost = _num(t.get("cost"), amount * price * m.contract_size)
    return {"order_id": order_id, "symbol": ai.symbol, "side": side.value,
            "pos": pos.value, "date": int(t.get("timestamp") or when), "amount": amount,
            "price": price, "cost": cost, "fee": _num(fee.get("cost")),
            "fee_currency": fee.get("currency") or m.quote, "leverage": leverage,
            "taker": t.get("takerOrMaker") != "maker", "id": str(t.get("id") or "")}


def emulated_trade(ai: AssetInstance, order: Order, o: Mapping[str, Any],
                   fee_rate: float) -> dict[str, Any] | None:
    """The fill implied by the change of an order's `filled` and `cost`, if any.

    amount = exchange filled - locally filled; price = change in cost / amount (or the
    order's average when the exchange gives no cost).
    """
    filled = _num(o.get("filled"))
    amount = filled - order.filled
    if amount <= ai.market.amount_step * 1e-6:
        return None
    cost_total = o.get("cost")
    if cost_total is not None and float(cost_total) > order.cost:
        cost = float(cost_total) - order.cost
    else:
        cost = amount * _num(o.get("average") or o.get("price")) * ai.market.contract_size
    price = cost / (amount * ai.market.contract_size)
    fee = o.get("fee") or {}
    fee_cost = (_num(fee.get("cost")) - order.fee) if fee.get("cost") is not None else cost * fee_rate
    return {"order_id": order.id, "symbol": ai.symbol, "side": order.side.value,
            "pos": order.pos.value, "date": int(o.get("lastTradeTimestamp") or o.get("timestamp") or 0),
            "amount": amount, "price": price, "cost": cost, "fee": max(fee_cost, 0.0),
            "fee_currency": fee.get("currency") or ai.market.quote, "leverage": order.leverage,
            "taker": True, "id": f"emu-{o.get('id')}-{filled:.12g}"}


def balance_payload(venue: Venue, b: Mapping[str, Any]) -> dict[str, Any]:
    total = {k: v for k, v in venue.balance_total(b).items() if v is not None}
    free = {k: v for k, v in (b.get("free") or {}).items() if v is not None}
    return {"total": total, "free": free}


def position_payload(venue: Venue, ai: AssetInstance, p: Mapping[str, Any]) -> dict[str, Any]:
    """position_updated payload. A one-way position of no contracts names no side ("both"):
    it closes the side open here (the short of a short closed, not the long)."""
    side = (p.get("side") or "").lower()
    amount = abs(_num(p.get("contracts")))
    if side not in ("long", "short"):
        pos = ai.open_position()
        side = pos.side.value if pos is not None and not amount else "long"
    return {"symbol": ai.symbol, "side": side,
            "amount": amount, "entry_price": _num(p.get("entryPrice")),
            "margin": venue.position_margin(p), "leverage": _num(p.get("leverage")),
            "liquidation_price": _num(p.get("liquidationPrice"))}


_SUMMARY = {
    "orders": ("id", "symbol", "side", "type", "status", "amount", "filled", "price", "average",
               "cost", "timestamp", "lastTradeTimestamp"),
    "trades": ("id", "order", "symbol", "side", "amount", "price", "cost", "fee",
               "takerOrMaker", "timestamp"),
    "positions": ("symbol", "side", "contracts", "entryPrice", "initialMargin", "leverage",
                  "liquidationPrice", "timestamp"),
}


def message_summary(venue: Venue, channel: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """What the trace keeps of one exchange report: ccxt's unified fields (not `info`),
    and the client order id wherever the exchange has it."""
    if channel == "balance":
        return {**balance_payload(venue, item), "timestamp": item.get("timestamp")}
    out = {k: item[k] for k in _SUMMARY[channel] if item.get(k) is not None}
    cid = venue.client_id(item) if channel != "positions" else ""
    if cid:
        out["clientOrderId"] = cid
    return out
