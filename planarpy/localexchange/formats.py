"""Binance JSON shapes: REST answers and user-data events, built from the engine's state."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable

import attrs

from .markets import MAX_ALGO_ORDERS, MAX_ORDERS, TRAILING_DELTA, ZERO, MarketSpec
from .validate import MARKET_TYPES

if TYPE_CHECKING:
    from .accounts import Account, Position
    from .book import Order

SPOT_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                    "TAKE_PROFIT_LIMIT"]
FUTURES_ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]
INTERVALS = {"1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
             "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
             "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000}


def s8(x: Decimal | float | int) -> str:
    return f"{Decimal(x) if not isinstance(x, Decimal) else x:.8f}"


@attrs.frozen(slots=True)
class TradeRecord:
    """One fill of one account's order, kept for myTrades/userTrades."""

    id: int
    order_id: int
    spec: MarketSpec
    buyer: bool
    maker: bool
    price: Decimal
    qty: Decimal
    quote: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    realized_pnl: Decimal = ZERO


def exchange_info(specs: Iterable[MarketSpec], futures: bool, now: int) -> dict[str, Any]:
    symbols = [futures_symbol(s) if futures else spot_symbol(s) for s in specs]
    info: dict[str, Any] = {"timezone": "UTC", "serverTime": now, "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}],
        "exchangeFilters": [], "symbols": symbols}
    if futures:
        info["assets"] = sorted({s["marginAsset"] for s in symbols})
    return info


def _filters(s: MarketSpec) -> list[dict[str, Any]]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": s8(s.min_price), "maxPrice": s8(s.max_price),
         "tickSize": s8(s.tick)},
        {"filterType": "LOT_SIZE", "minQty": s8(s.min_qty), "maxQty": s8(s.max_qty),
         "stepSize": s8(s.step)},
        {"filterType": "MARKET_LOT_SIZE", "minQty": s8(s.min_qty), "maxQty": s8(s.max_qty),
         "stepSize": s8(s.step)},
    ]


def _decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)


def spot_symbol(s: MarketSpec) -> dict[str, Any]:
    return {
        "symbol": s.id, "status": "TRADING", "baseAsset": s.base, "baseAssetPrecision": 8,
        "quoteAsset": s.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": SPOT_ORDER_TYPES, "icebergAllowed": False, "ocoAllowed": False,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True, "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": _filters(s) + [{"filterType": "NOTIONAL", "minNotional": s8(s.min_notional),
                                   "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                                   "applyMaxToMarket": False, "avgPriceMins": 5},
                                  {"filterType": "TRAILING_DELTA",
                                   "minTrailingAboveDelta": TRAILING_DELTA[0],
                                   "maxTrailingAboveDelta": TRAILING_DELTA[1],
                                   "minTrailingBelowDelta": TRAILING_DELTA[0],
                                   "maxTrailingBelowDelta": TRAILING_DELTA[1]},
                                  {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": MAX_ORDERS},
                                  {"filterType": "MAX_NUM_ALGO_ORDERS",
                                   "maxNumAlgoOrders": MAX_ALGO_ORDERS}],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": ["NONE"],
    }


def futures_symbol(s: MarketSpec) -> dict[str, Any]:
    return {
        "symbol": s.id, "pair": s.id, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000, "status": "TRADING", "baseAsset": s.base, "quoteAsset": s.quote,
        "marginAsset": s.market.settle or s.quote, "pricePrecision": _decimals(s.tick),
        "quantityPrecision": _decimals(s.step), "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "settlePlan": 0, "triggerProtect": "0.0500",
        "maintMarginPercent": s8(s.mmr * 100), "requiredMarginPercent": s8(Decimal(100) / s.max_leverage),
        "filters": _filters(s) + [{"filterType": "MIN_NOTIONAL", "notional": s8(s.min_notional)}],
        "orderTypes": FUTURES_ORDER_TYPES, "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def spot_order(o: "Order", fills: list[TradeRecord] | None = None, resp: str = "RESULT") -> dict[str, Any]:
    d: dict[str, Any] = {"symbol": o.spec.id, "orderId": o.id, "orderListId": -1,
                         "clientOrderId": o.client_id, "transactTime": o.update_time or o.time}
    if resp == "ACK":
        return d
    d.update({"price": s8(o.price), "origQty": s8(o.qty), "executedQty": s8(o.filled),
              "origQuoteOrderQty": s8(o.quote_qty), "cummulativeQuoteQty": s8(o.cum_quote),
              "status": o.status, "timeInForce": o.tif, "type": o.type, "side": o.side,
              "workingTime": o.work_time,  # -1 until it works
              "selfTradePreventionMode": "NONE"})
    if o.stop_price:
        d["stopPrice"] = s8(o.stop_price)
    if o.trail:
        d.update(trailingDelta=_bips(o), trailingTime=o.trail.since)
    if resp == "FULL":
        d["fills"] = [{"price": s8(t.price), "qty": s8(t.qty), "commission": s8(t.commission),
                       "commissionAsset": t.commission_asset, "tradeId": t.id} for t in fills or []]
    return d


def spot_order_query(o: "Order") -> dict[str, Any]:
    d = spot_order(o)
    del d["transactTime"]
    d.update({"stopPrice": s8(o.stop_price), "icebergQty": "0.00000000", "time": o.time,
              "updateTime": o.update_time or o.time, "isWorking": o.working})
    return d


def futures_order(o: "Order") -> dict[str, Any]:
    return {"orderId": o.id, "symbol": o.spec.id, "status": o.status, "clientOrderId": o.client_id,
            "price": s8(o.price), "avgPrice": s8(o.avg_price), "origQty": s8(o.qty),
            "executedQty": s8(o.filled), "cumQty": s8(o.filled), "cumQuote": s8(o.cum_quote),
            "timeInForce": o.tif, "type": o.type, "reduceOnly": o.reduce_only, "closePosition": False,
            "side": o.side, "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
            "priceProtect": False, "origType": o.type, "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE", "goodTillDate": 0, "time": o.time,
            "updateTime": o.update_time or o.time}


def spot_trade(t: TradeRecord) -> dict[str, Any]:
    return {"symbol": t.spec.id, "id": t.id, "orderId": t.order_id, "orderListId": -1,
            "price": s8(t.price), "qty": s8(t.qty), "quoteQty": s8(t.quote),
            "commission": s8(t.commission), "commissionAsset": t.commission_asset, "time": t.time,
            "isBuyer": t.buyer, "isMaker": t.maker, "isBestMatch": True}


def futures_trade(t: TradeRecord) -> dict[str, Any]:
    return {"symbol": t.spec.id, "id": t.id, "orderId": t.order_id,
            "side": "BUY" if t.buyer else "SELL", "price": s8(t.price), "qty": s8(t.qty),
            "realizedPnl": s8(t.realized_pnl), "quoteQty": s8(t.quote),
            "commission": s8(t.commission), "commissionAsset": t.commission_asset, "time": t.time,
            "positionSide": "BOTH", "buyer": t.buyer, "maker": t.maker}


def execution_report(o: "Order", x: str, now: int, t: TradeRecord | None = None,
                     cancel_id: str | None = None) -> dict[str, Any]:
    """Spot `executionReport`; on cancel `c` is the cancel request's id and `C` the order's."""
    return {"e": "executionReport", "E": now, "s": o.spec.id,
            "c": cancel_id if cancel_id else o.client_id, "S": o.side, "o": o.type, "f": o.tif,
            "q": s8(o.qty), "p": s8(o.price), "P": s8(o.stop_price), "F": "0.00000000", "g": -1,
            "C": o.client_id if cancel_id else "", "x": x, "X": o.status, "r": "NONE", "i": o.id,
            "l": s8(t.qty if t else ZERO), "z": s8(o.filled), "L": s8(t.price if t else ZERO),
            "n": s8(t.commission if t else ZERO), "N": t.commission_asset if t else None,
            "T": t.time if t else now, "t": t.id if t else -1, "v": 0, "I": o.id * 2 + 1,
            "w": o.is_open and o.type not in MARKET_TYPES and o.working, "m": bool(t and t.maker),
            "M": False, "O": o.time, "Z": s8(o.cum_quote), "Y": s8(t.quote if t else ZERO),
            "Q": s8(o.quote_qty), "V": "NONE", **_trailing(o),
            **({"W": o.work_time} if o.work_time >= 0 else {})}  # only once it works


def _bips(o: "Order") -> int:
    assert o.trail is not None
    return int(o.trail.rate * 10_000)


def _trailing(o: "Order") -> dict[str, Any]:
    """A trailing stop's `d` (delta) and, once it trails, `D` (since when)."""
    if o.trail is None:
        return {}
    return {"d": _bips(o), **({"D": o.trail.since} if o.trail.since >= 0 else {})}


def account_position(account: "Account", assets: Iterable[str], now: int) -> dict[str, Any]:
    return {"e": "outboundAccountPosition", "E": now, "u": now,
            "B": [{"a": a, "f": s8(account.balance(a).free), "l": s8(account.balance(a).locked)}
                  for a in sorted(set(assets))]}


def order_trade_update(o: "Order", x: str, now: int, t: TradeRecord | None = None,
                       liquidation: bool = False) -> dict[str, Any]:
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
        "s": o.spec.id, "c": o.client_id, "S": o.side, "o": o.type, "f": o.tif, "q": s8(o.qty),
        "p": s8(o.price), "ap": s8(o.avg_price), "sp": "0", "x": x, "X": o.status, "i": o.id,
        "l": s8(t.qty if t else ZERO), "z": s8(o.filled), "L": s8(t.price if t else ZERO),
        "N": t.commission_asset if t else o.spec.quote, "n": s8(t.commission if t else ZERO),
        "T": t.time if t else now, "t": t.id if t else 0, "b": "0", "a": "0",
        "m": bool(t and t.maker), "R": o.reduce_only, "wt": "CONTRACT_PRICE",
        "ot": "LIQUIDATION" if liquidation else o.type, "ps": "BOTH", "cp": False,
        "rp": s8(t.realized_pnl if t else ZERO), "pP": False, "si": 0, "ss": 0, "V": "NONE",
        "pm": "NONE", "gtd": 0}}


def position_entry(p: "Position", mark: Decimal) -> dict[str, Any]:
    return {"s": p.symbol, "pa": s8(p.amount), "ep": s8(p.entry), "bep": s8(p.entry), "cr": "0",
            "up": s8(p.unrealized(mark)), "mt": "isolated", "iw": s8(p.margin), "ps": "BOTH"}


def account_update(account: "Account", positions: Iterable[tuple["Position", Decimal]],
                   now: int, reason: str = "ORDER") -> dict[str, Any]:
    return {"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
        "m": reason,
        "B": [{"a": account.settle, "wb": s8(account.wallet), "cw": s8(account.available),
               "bc": "0"}],
        "P": [position_entry(p, mark) for p, mark in positions]}}


def position_risk(p: "Position", spec: MarketSpec, mark: Decimal) -> dict[str, Any]:
    notional = p.amount * mark
    return {"symbol": p.symbol, "positionSide": "BOTH", "positionAmt": s8(p.amount),
            "entryPrice": s8(p.entry), "breakEvenPrice": s8(p.entry), "markPrice": s8(mark),
            "unRealizedProfit": s8(p.unrealized(mark)),
            "liquidationPrice": s8(p.liquidation_price(spec.mmr)), "isolatedMargin": s8(p.margin),
            "notional": s8(notional), "marginAsset": spec.market.settle or spec.quote,
            "isolatedWallet": s8(p.margin), "initialMargin": s8(p.margin),
            "maintMargin": s8(abs(notional) * spec.mmr), "positionInitialMargin": s8(p.margin),
            "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
            "updateTime": p.update_time}
