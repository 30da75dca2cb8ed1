"""Order request parsing and Binance's filter checks, with Binance's error codes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Mapping

import attrs

from .auth import BinanceError, bad_param
from .markets import TRAILING_DELTA, ZERO, MarketSpec

_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
SPOT_TIF = ("GTC", "IOC", "FOK")
FUTURES_TIF = ("GTC", "IOC", "FOK", "GTX")
# spot's conditional types: they wait for `stopPrice` (conditional.py fires them)
SPOT_STOPS = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_WITH_TIF = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
# the types that take what the book has (the stops once they fire) and have no price
MARKET_TYPES = ("MARKET", "STOP_LOSS", "TAKE_PROFIT")


@attrs.frozen(slots=True)
class OrderRequest:
    spec: MarketSpec
    side: str
    type: str
    tif: str
    qty: Decimal | None
    price: Decimal | None
    quote_qty: Decimal | None
    client_id: str | None
    reduce_only: bool
    resp_type: str
    stop_price: Decimal | None = None
    trailing_delta: int | None = None  # basis points: a spot trailing stop


def number(params: Mapping[str, str], name: str, required: bool = True) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise bad_param(name)
        return None
    if not _NUMBER.match(raw):
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; "
                                  "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise bad_param(name) from None


def parse_order(params: Mapping[str, str], spec: MarketSpec) -> OrderRequest:
    """Parse and check a new order; raises BinanceError as Binance would answer."""
    futures = spec.futures
    side = params.get("side") or ""
    if not side:
        raise bad_param("side")
    if side not in ("BUY", "SELL"):
        raise BinanceError(-1117, "Invalid side.")
    type_ = params.get("type") or ""
    if not type_:
        raise bad_param("type")
    if type_ not in (("LIMIT", "MARKET") if futures else ("LIMIT", "MARKET", "LIMIT_MAKER")
                     + SPOT_STOPS):
        raise BinanceError(-1116, "Invalid orderType.")
    tif = params.get("timeInForce") or ""
    if type_ in _WITH_TIF:
        if not tif:
            raise bad_param("timeInForce")
        if tif not in (FUTURES_TIF if futures else SPOT_TIF):
            raise BinanceError(-1115, "Invalid timeInForce.")
    elif tif:
        raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
    tif = tif or "GTC"
    quote_qty = None if futures else number(params, "quoteOrderQty", required=False)
    qty = number(params, "quantity", required=not (type_ == "MARKET" and quote_qty is not None))
    if qty is not None and quote_qty is not None:
        raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
    price = number(params, "price", required=type_ not in MARKET_TYPES)
    if type_ in MARKET_TYPES and price is not None:
        raise BinanceError(-1106, "Parameter 'price' sent when not required.")
    delta = trailing_delta(params, type_)
    stop = number(params, "stopPrice", required=type_ in SPOT_STOPS and delta is None)
    if stop is not None and type_ not in SPOT_STOPS:
        raise BinanceError(-1106, "Parameter 'stopPrice' sent when not required.")
    client_id = params.get("newClientOrderId") or None
    if client_id is not None and (len(client_id) > 36 or not re.fullmatch(r"[.A-Za-z0-9:/_-]+", client_id)):
        raise BinanceError(-1100, "Illegal characters found in parameter 'newClientOrderId'; "
                                  "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
    reduce_only = (params.get("reduceOnly") or "false").lower() == "true"
    resp = params.get("newOrderRespType") or ("ACK" if futures else "FULL")
    req = OrderRequest(spec, side, type_, tif, qty, price, quote_qty, client_id, reduce_only, resp,
                       stop, delta)
    check_filters(req)
    if stop is not None:
        check_price(spec, stop)
    return req


def trailing_delta(params: Mapping[str, str], type_: str) -> int | None:
    """`trailingDelta` of a spot stop or take-profit: whole basis points within the
    TRAILING_DELTA filter (the same bounds on both sides here)."""
    raw = params.get("trailingDelta")
    if raw is None or raw == "":
        return None
    if type_ not in SPOT_STOPS:
        raise BinanceError(-1106, "Parameter 'trailingDelta' sent when not required.")
    if not raw.isdigit() or len(raw) > 18:
        raise BinanceError(-1100, "Illegal characters found in parameter 'trailingDelta'; "
                                  "legal range is '^[0-9]{1,18}$'.")
    delta = int(raw)
    if not TRAILING_DELTA[0] <= delta <= TRAILING_DELTA[1]:
        raise BinanceError(-1013, "Filter failure: TRAILING_DELTA")
    return delta


def check_filters(req: OrderRequest) -> None:
    """PRICE_FILTER, LOT_SIZE and the limit-order NOTIONAL check."""
    s = req.spec
    if req.price is not None:
        check_price(s, req.price)
    if req.qty is not None:
        check_qty(s, req.qty)
    if req.quote_qty is not None and req.quote_qty <= 0:
        raise BinanceError(-1013, "Filter failure: NOTIONAL")
    if req.price is not None and req.qty is not None:
        check_notional(req.spec, req.qty * req.price, req.reduce_only)


def check_qty(s: MarketSpec, qty: Decimal) -> None:
    """LOT_SIZE: within the market's range, on its step."""
    fut = s.futures
    if qty <= 0:
        _fail(fut, -4003, "Quantity less than or equal to zero.", "LOT_SIZE")
    if qty < s.min_qty:
        _fail(fut, -4004, "Quantity less than min qty.", "LOT_SIZE")
    if qty > s.max_qty:
        _fail(fut, -4005, "Quantity greater than max qty.", "LOT_SIZE")
    if not s.on_step(qty):
        _fail(fut, -4023, "Quantity not increased by step size.", "LOT_SIZE")


def check_price(s: MarketSpec, price: Decimal) -> None:
    """PRICE_FILTER: within the market's range, on its tick."""
    fut = s.futures
    if price <= 0 or price < s.min_price:
        _fail(fut, -4013, "Price less than min price.", "PRICE_FILTER")
    if price > s.max_price:
        _fail(fut, -4016, "Price greater than max price.", "PRICE_FILTER")
    if not s.on_tick(price):
        _fail(fut, -4014, "Price not increased by tick size.", "PRICE_FILTER")


def check_notional(spec: MarketSpec, notional: Decimal, reduce_only: bool = False) -> None:
    if notional >= spec.min_notional or (spec.futures and reduce_only):
        return
    if spec.futures:
        raise BinanceError(-4164, f"Order's notional must be no smaller than {spec.min_notional.normalize()} "
                                  "(unless you choose reduce only).")
    raise BinanceError(-1013, "Filter failure: NOTIONAL")


def _fail(futures: bool, code: int, msg: str, filter_name: str) -> None:
    if futures:
        raise BinanceError(code, msg)
    raise BinanceError(-1013, f"Filter failure: {filter_name}")


def order_ref(params: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The (orderId, origClientOrderId) a query or cancel names; -1102 if neither."""
    oid, cid = params.get("orderId"), params.get("origClientOrderId")
    if not oid and not cid:
        raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    if oid and not oid.lstrip("-").isdigit():
        raise bad_param("orderId")
    return (int(oid) if oid else None), cid or None


__all__ = ["OrderRequest", "parse_order", "check_filters", "check_qty", "check_price", "check_notional",
           "order_ref", "number", "ZERO"]
