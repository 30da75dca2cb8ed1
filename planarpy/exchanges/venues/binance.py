"""Binance spot and USD-M futures: what differs from ccxt's unified behaviour.

- An order is named by client id with `origClientOrderId` (`clientOrderId` in a cancel's
  reply is the cancel request's own id).
- "Does not exist" is -2013 on a lookup; -2011 "Unknown order sent." on a cancel means
  no open order by that id (never placed, not yet arrived, or closed already).
- A retried order whose first try got through: spot "Duplicate order sent.", USD-M
  "ClientOrderId is duplicated."
- A signed request carries its time stamp; the exchange refuses it once `recvWindow`
  has passed, or when it is more than 1 s ahead of the server's clock. So a request that
  got no answer cannot be executed later than recvWindow + 1 s after it was signed.
- Updates carry the event time as `E` (and the transaction time as `T`) in `info`.
- USD-M: ccxt's total of a REST balance is the margin balance (the wallet plus the
  unrealized pnl); the wallet is `walletBalance` (a stream update's total is the wallet).
- 418 with "banned" is an IP ban; leverage is a whole number.
- ccxt picks market-specific error codes by the real host in the URL: with the URL
  overridden it cannot, so the client's market-type table is merged into the general one.
- Conditional orders native on the exchange: spot STOP_LOSS(_LIMIT) and
  TAKE_PROFIT(_LIMIT) (ccxt's `stopLossPrice` / `takeProfitPrice`); USD-M also
  TRAILING_STOP_MARKET by a percentage of 0.1 to 10 in steps of 0.1 (`trailingPercent`,
  `trailingTriggerPrice` for the activation); spot moves them with cancelReplace
  (ccxt's edit_order, the Binance type and `triggerPrice`), whose failure the exchange
  answers with what each part did (`data`: cancelResult, newOrderResult): -2021 "partially
  failed" (one part went through), -2022 "failed" (neither did); ccxt raises both as
  BadResponse, as if there were no answer. A spot trailing stop by a
  percentage is native too when it is a whole number of basis points within the symbol's
  TRAILING_DELTA filter (ccxt's `trailingPercent` becomes `trailingDelta`): a STOP_LOSS,
  or with an activation price a TAKE_PROFIT, whose stop condition (a sell's: a rise to
  `stopPrice`) is when it starts to trail. A trailing stop by a price offset is emulated.
- USD-M conditional orders (STOP_MARKET, STOP, TAKE_PROFIT_MARKET, TAKE_PROFIT,
  TRAILING_STOP_MARKET) are algo orders, apart from the orders: placed, fetched, listed
  and cancelled with `trigger`, named by `clientAlgoId` (ccxt maps the client id). Their
  reports (ALGO_UPDATE `X`, REST `algoStatus`) go NEW, TRIGGERING, TRIGGERED with the
  order placed (`ai` / `actualOrderId`), FINISHED once that order is done, or CANCELED,
  EXPIRED, REJECTED. ccxt calls TRIGGERED and FINISHED "closed": the order's own
  reports, not these, bring its fills and its end. There is no cancel-replace. An algo
  order holds no margin until it fires (a spot stop locks what it sells or buys with).
- A spot conditional order is an order: ccxt calls STOP_LOSS and TAKE_PROFIT "market"
  and the _LIMIT types "limit"; the type, `stopPrice` and `trailingDelta` are in `info`
  (REST; an executionReport's `o`, `P`, `d`), and `isWorking` (`w`) says it fired. A
  trailing stop's stop is not reported.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any, Mapping

import ccxt

from ...core.orders import CONDITIONAL, LIMIT_AFTER_TRIGGER, STOPS, Order, OrderType
from .base import AlgoReport, Conditional, Native, Venue

_NOT_FOUND = ("-2013", "-2011")
_DUPLICATE = ("duplicate order sent", "clientorderid is duplicated")
_ALGO_KINDS = {"STOP_MARKET": "stop_market", "STOP": "stop_limit",
               "TAKE_PROFIT_MARKET": "take_profit_market", "TAKE_PROFIT": "take_profit_limit",
               "TRAILING_STOP_MARKET": "trailing_stop_market"}
# what a failed cancel-replace did (cancelled, placed) when its answer does not say:
# ccxt sends STOP_ON_FAILURE, under which the new order is tried only after the cancel
_REPLACE_FAILED = {-2021: (True, False), -2022: (False, False)}
_SPOT_KINDS = {"STOP_LOSS": "stop_market", "STOP_LOSS_LIMIT": "stop_limit",
               "TAKE_PROFIT": "take_profit_market", "TAKE_PROFIT_LIMIT": "take_profit_limit"}
_TIME_TOLERANCE = 1.0  # s: how far ahead of the server's clock a time stamp may be
# Binance's TRAILING_DELTA filter (basis points) where a market does not show its own
_TRAILING_BIPS = {"minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
                  "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000}


class Binance(Venue):
    """binance (spot) and binanceusdm."""

    @property
    def futures(self) -> bool:
        return self.exchange_id != "binance"

    def client_options(self) -> dict[str, Any]:
        # spot only: otherwise load_markets also asks for margin and futures markets
        return {} if self.futures else {"fetchMarkets": {"types": ["spot"]}}

    def prepare(self, client: Any, url_overridden: bool) -> None:
        if url_overridden:
            _keep_error_codes(client, self.futures or client.options.get("defaultType")
                              in ("swap", "future"))

    def by_client_id(self, client_id: str) -> dict[str, Any]:
        return {"origClientOrderId": client_id}

    def client_id(self, o: Mapping[str, Any]) -> str:
        cid = o.get("clientOrderId")
        if cid:
            return str(cid)
        info = o.get("info") or {}
        for key in ("c", "clientOrderId", "origClientOrderId"):
            if info.get(key):
                return str(info[key])
        order = info.get("o")  # futures ORDER_TRADE_UPDATE nests the order
        if isinstance(order, Mapping) and order.get("c"):
            return str(order["c"])
        return ""

    def does_not_exist(self, e: BaseException) -> bool:
        return isinstance(e, ccxt.OrderNotFound) and any(c in str(e) for c in _NOT_FOUND)

    def cancel_unknown(self, e: BaseException) -> bool:
        return isinstance(e, ccxt.OrderNotFound) and "-2011" in str(e)

    def is_duplicate(self, e: BaseException) -> bool:
        return isinstance(e, ccxt.InvalidOrder) and any(d in str(e).lower() for d in _DUPLICATE)

    def is_ban(self, e: BaseException) -> bool:
        return "banned" in str(e).lower() or super().is_ban(e)

    def submit_window(self, client: Any) -> float:
        window = (getattr(client, "options", None) or {}).get("recvWindow") or 10_000
        return float(window) / 1000 + _TIME_TOLERANCE

    def event_time(self, update: Mapping[str, Any]) -> int | None:
        ts = update.get("timestamp")
        if ts is None:
            info = update.get("info") if isinstance(update.get("info"), Mapping) else {}
            ts = info.get("E") or info.get("T")
        return int(ts) if ts is not None else None

    def balance_total(self, b: Mapping[str, Any]) -> Mapping[str, Any]:
        total = b.get("total") or {}
        info = b.get("info")
        assets = info.get("assets") if self.futures and isinstance(info, Mapping) else None
        if not isinstance(assets, list):  # spot, or a stream update: its total is `wb`
            return total
        wallets = {a.get("asset"): a.get("walletBalance") for a in assets if isinstance(a, Mapping)}
        return {**total, **{c: float(w) for c, w in wallets.items() if c in total and w is not None}}

    def position_side(self, o: Mapping[str, Any]) -> str | None:
        info = o.get("info") or {}
        ps = info.get("positionSide") or info.get("ps")
        return ps.lower() if ps in ("LONG", "SHORT") else None

    def position_margin(self, p: Mapping[str, Any]) -> float:
        margin = p.get("initialMargin") or p.get("collateral")
        if margin is None:
            info = p.get("info") or {}
            margin = info.get("isolatedMargin") or info.get("isolatedWallet") or info.get("iw")
        return float(margin or 0.0)

    def native(self, order: Order, market: Mapping[str, Any] | None = None) -> Native | None:
        if order.type is OrderType.TRAILING_STOP:
            return self._trailing(order) if self.futures else _spot_trailing(order, market)
        key = "stopLossPrice" if order.type in STOPS else "takeProfitPrice"
        if order.type in LIMIT_AFTER_TRIGGER:
            return Native("limit", order.price, {key: order.trigger})
        return Native("market", None, {key: order.trigger})

    def _trailing(self, order: Order) -> Native | None:
        rate = round(order.trail * 100, 6)
        if not (self.futures and order.trail_pct and 0.1 <= rate <= 10
                and abs(rate * 10 - round(rate * 10)) < 1e-9):
            return None
        params: dict[str, Any] = {"trailingPercent": round(rate, 1)}
        if order.activation:
            params["trailingTriggerPrice"] = order.activation
        return Native("market", None, params)

    def conditional_holds_funds(self, market: Mapping[str, Any] | None = None) -> bool:
        return not self.futures  # spot locks a stop's base (or quote); a USD-M algo no margin

    def replacement(self, order: Order) -> Native | None:
        if self.futures or order.type is OrderType.TRAILING_STOP:
            return None
        kind = ("STOP_LOSS" if order.type in STOPS else "TAKE_PROFIT") + (
            "_LIMIT" if order.type in LIMIT_AFTER_TRIGGER else "")
        price = order.price if order.type in LIMIT_AFTER_TRIGGER else None
        return Native(kind, price, {"triggerPrice": order.trigger})

    def replace_outcome(self, e: BaseException) -> tuple[bool, bool] | None:
        body = _error_body(e)
        code = body.get("code")
        if self.futures or code not in _REPLACE_FAILED:
            return None
        data = body.get("data") if isinstance(body.get("data"), Mapping) else {}
        cancelled, placed = _REPLACE_FAILED[code]
        cancel, new = data.get("cancelResult"), data.get("newOrderResult")
        return (cancel == "SUCCESS" if cancel else cancelled,
                new == "SUCCESS" if new else placed)

    def can_replace(self, market: Mapping[str, Any]) -> bool:
        return (market.get("info") or {}).get("cancelReplaceAllowed") is not False

    def conditional_params(self, order: Order) -> dict[str, Any]:
        return {"trigger": True} if self.futures and order.type in CONDITIONAL else {}

    def algo_params(self, derivative: bool) -> dict[str, Any] | None:
        return {"trigger": True} if self.futures and derivative else None

    def algo_report(self, o: Mapping[str, Any]) -> AlgoReport | None:
        info = o.get("info")
        if not isinstance(info, Mapping):
            return None
        if "aid" in info:  # ALGO_UPDATE
            return AlgoReport(str(info.get("X") or ""), str(info.get("ai") or ""))
        if "algoId" in info and "algoStatus" in info:  # REST
            return AlgoReport(str(info["algoStatus"]), str(info.get("actualOrderId") or ""))
        return None

    def conditional(self, o: Mapping[str, Any]) -> Conditional | None:
        info = o.get("info")
        if not isinstance(info, Mapping):
            return None
        if self.algo_report(o) is not None:  # USD-M: a trailing stop reports its stop
            kind = _ALGO_KINDS.get(info.get("o") if "aid" in info else info.get("orderType"), "")
            return Conditional(kind, _num(o.get("triggerPrice") or info.get("triggerPrice")
                                          or info.get("tp")),
                               trail=_num(info.get("callbackRate") or info.get("cr")) / 100,
                               activation=_num(info.get("activatePrice") or info.get("AP")))
        type_ = info.get("type") or info.get("o")
        if self.futures or not isinstance(type_, str) or type_ not in _SPOT_KINDS:
            return None
        kind, stop = _SPOT_KINDS[type_], _num(info.get("stopPrice") or info.get("P"))
        fired = bool(info["isWorking"] if "isWorking" in info else info.get("w"))
        delta = _num(info.get("trailingDelta") or info.get("d"))
        if not delta:
            return Conditional(kind, stop, fired)
        # trailing (see _spot_trailing): planarpy's trails a market order from where it is
        # placed, or from an activation that a take-profit's stop condition reaches
        if kind == "take_profit_market" or kind == "stop_market" and not stop:
            return Conditional("trailing_stop_market", 0.0, fired, delta / 10_000, stop)
        return Conditional("", stop, fired)

    def leverage_error(self, leverage: float) -> str | None:
        if leverage != int(leverage):
            return f"leverage {leverage:g}: {self.exchange_id} takes whole leverages only"
        return None

    def leverage_arg(self, leverage: float) -> Any:
        return int(leverage) if leverage == int(leverage) else leverage


def _num(v: Any) -> float:
    return float(v) if v else 0.0


def _spot_trailing(order: Order, market: Mapping[str, Any] | None) -> Native | None:
    """A spot trailing stop by a percentage as STOP_LOSS / TAKE_PROFIT with trailingDelta,
    if the percentage is whole basis points within the market's TRAILING_DELTA filter."""
    bips = Decimal(repr(order.trail)) * 10_000
    if not order.trail_pct or bips != bips.to_integral_value():
        return None
    # with an activation price it trails once the price reaches it: a take-profit's
    # stop condition (a sell's: a rise to stopPrice); without, a stop-loss
    profit = bool(order.activation)
    # the filter's "above" bounds are for STOP_LOSS BUY and TAKE_PROFIT SELL
    side = "Above" if (order.side.value == "buy") != profit else "Below"
    limits = _trailing_filter(market)
    if not limits[f"minTrailing{side}Delta"] <= bips <= limits[f"maxTrailing{side}Delta"]:
        return None
    params: dict[str, Any] = {"trailingPercent": str(bips / 100),
                              "stopLossOrTakeProfit": "takeProfit" if profit else "stopLoss"}
    if profit:
        params["trailingTriggerPrice"] = order.activation
    return Native("market", None, params)


def _trailing_filter(market: Mapping[str, Any] | None) -> Mapping[str, Any]:
    filters = ((market or {}).get("info") or {}).get("filters") or ()
    for f in filters:
        if isinstance(f, Mapping) and f.get("filterType") == "TRAILING_DELTA":
            return {k: Decimal(str(f.get(k, v))) for k, v in _TRAILING_BIPS.items()}
    return {k: Decimal(v) for k, v in _TRAILING_BIPS.items()}


def _error_body(e: BaseException) -> Mapping[str, Any]:
    """The JSON answer an exchange error carries (ccxt: "binance {...}"), or {}."""
    text = str(e)
    start = text.find("{")
    try:
        body = json.loads(text[start:]) if start >= 0 else {}
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def _keep_error_codes(client: Any, futures: bool) -> None:
    """Merge the error table of the client's market type into the general one (-2010
    stays InsufficientFunds, not a bare ExchangeError)."""
    exceptions = copy.deepcopy(client.exceptions)
    specific = exceptions.get("linear" if futures else "spot") or {}
    for kind in ("exact", "broad"):
        merged = dict(exceptions.get(kind) or {})
        merged.update(specific.get(kind) or {})
        exceptions[kind] = merged
    client.exceptions = exceptions
