"""REST routes of Binance spot (/api/v3) and USD-M futures (/fapi/v1, v2, v3)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from . import conditional as cond
from . import formats as fmt
from .accounts import Account
from .auth import BinanceError, check_signature, check_timestamp, lookup_key, split_signature
from .replay import num

if TYPE_CHECKING:
    from .server import LocalExchange

Params = dict[str, str]
Handler = Callable[["LocalExchange", Params, "Account | None"], Any]
TOO_MANY = ("Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
             "Please use the websocket for live updates to avoid polling the API.")


def fault_middleware(lx: "LocalExchange") -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        faults, path, method = lx.faults, request.path, request.method
        if path.startswith("/lx/") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        delay = faults.take_delay(path, method)
        if delay:
            await request.read()  # it has arrived: executed even if the client stops waiting
            await asyncio.sleep(delay)
        status = faults.take_http_fault(path, method)
        if status in (429, 418):
            msg = TOO_MANY if status == 429 else (
                f"Way too many requests; IP(127.0.0.1) banned until {lx.server_time() + 60_000}. "
                "Please use the websocket for live updates to avoid bans.")
            return web.json_response({"code": -1003, "msg": msg}, status=status,
                                     headers={"Retry-After": str(faults.retry_after)})
        if status is not None:
            if faults.http_processed:  # executed, and the answer lost
                await handler(request)
            return web.Response(status=status, text=f"<html><body><h1>{status}</h1></body></html>",
                                content_type="text/html")
        return await handler(request)
    return middleware


def route(lx: "LocalExchange", fn: Handler, signed: bool = False, key_only: bool = False):
    """An aiohttp handler: parse params, check auth, call `fn`, answer JSON or a Binance error."""
    async def handler(request: web.Request) -> web.Response:
        try:
            body = await request.text() if request.body_exists else ""
            params: Params = dict(parse_qsl(request.query_string, keep_blank_values=True))
            params.update(parse_qsl(body, keep_blank_values=True))
            account = None
            if signed or key_only:
                keys = {a.creds.api_key: a.creds for a in lx.engine.accounts.values()}
                creds = lookup_key(keys, request.headers.get("X-MBX-APIKEY"))
                if signed:
                    payload, signature = split_signature(request.query_string, body)
                    check_signature(creds, payload, signature)
                    check_timestamp(params, lx.server_time())
                account = lx.engine.accounts[creds.api_key]
            return web.json_response(fn(lx, params, account), dumps=_dumps)
        except BinanceError as e:
            return web.json_response(e.body(), status=e.status)
    return handler


def _dumps(obj: Any) -> str:
    import msgspec
    return msgspec.json.encode(obj).decode()


# public

def time_(lx: "LocalExchange", p: Params, a: Any) -> Any:
    return {"serverTime": lx.server_time()}


def ping(lx: "LocalExchange", p: Params, a: Any) -> Any:
    return {}


def _info(futures: bool) -> Handler:
    def info(lx: "LocalExchange", p: Params, a: Any) -> Any:
        markets = lx.engine.futures if futures else lx.engine.spot
        info = fmt.exchange_info((st.spec for st in markets.values()), futures, lx.server_time())
        if lx.faults.no_cancel_replace:
            for s in info["symbols"]:
                s["cancelReplaceAllowed"] = False
        return info
    return info


def _klines(futures: bool) -> Handler:
    def klines(lx: "LocalExchange", p: Params, a: Any) -> Any:
        st = lx.engine.market(p.get("symbol"), futures)
        interval = fmt.INTERVALS.get(p.get("interval", ""))
        if interval is None:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(int(p.get("limit") or 500), 1500 if futures else 1000)
        return st.feed.klines(interval, lx.clock.now(), _int(p, "startTime"), _int(p, "endTime"), limit)
    return klines


def _depth(futures: bool) -> Handler:
    def depth(lx: "LocalExchange", p: Params, a: Any) -> Any:
        st = lx.engine.market(p.get("symbol"), futures)
        bids, asks = st.book.depth(min(int(p.get("limit") or 100), 5000))
        out: dict[str, Any] = {"lastUpdateId": st.book.version,
                               "bids": [[fmt.s8(x), fmt.s8(q)] for x, q in bids],
                               "asks": [[fmt.s8(x), fmt.s8(q)] for x, q in asks]}
        if futures:
            out["E"] = out["T"] = lx.clock.now()
        return out
    return depth


def _ticker(futures: bool) -> Handler:
    def ticker(lx: "LocalExchange", p: Params, a: Any) -> Any:
        markets = lx.engine.futures if futures else lx.engine.spot
        states = [lx.engine.market(p["symbol"], futures)] if p.get("symbol") else list(markets.values())
        now = lx.clock.now()
        rows = []
        for st in states:
            s = st.feed.stats(now)
            bids, asks = st.book.depth(1)
            b, ak = (bids or [(Decimal(0), Decimal(0))])[0], (asks or [(Decimal(0), Decimal(0))])[0]
            change = s["last"] - s["open"]
            row = {"symbol": st.spec.id, "priceChange": num(change),
                   "priceChangePercent": f"{100 * change / s['open']:.3f}",
                   "weightedAvgPrice": num(s["quote"] / s["volume"] if s["volume"] else s["last"]),
                   "lastPrice": num(s["last"]), "lastQty": num(s["last_qty"]), "openPrice": num(s["open"]),
                   "highPrice": num(s["high"]), "lowPrice": num(s["low"]), "volume": num(s["volume"]),
                   "quoteVolume": num(s["quote"]), "openTime": s["open_time"], "closeTime": now,
                   "firstId": s["first"], "lastId": s["last_id"], "count": s["count"]}
            if not futures:
                row.update({"prevClosePrice": num(s["prev"]), "bidPrice": fmt.s8(b[0]),
                            "bidQty": fmt.s8(b[1]), "askPrice": fmt.s8(ak[0]), "askQty": fmt.s8(ak[1])})
            rows.append(row)
        return rows[0] if p.get("symbol") else rows
    return ticker


def _book_ticker(futures: bool) -> Handler:
    def book_ticker(lx: "LocalExchange", p: Params, a: Any) -> Any:
        markets = lx.engine.futures if futures else lx.engine.spot
        states = [lx.engine.market(p["symbol"], futures)] if p.get("symbol") else list(markets.values())
        rows = []
        for st in states:
            bids, asks = st.book.depth(1)
            b, ak = (bids or [(Decimal(0), Decimal(0))])[0], (asks or [(Decimal(0), Decimal(0))])[0]
            row = {"symbol": st.spec.id, "bidPrice": fmt.s8(b[0]), "bidQty": fmt.s8(b[1]),
                   "askPrice": fmt.s8(ak[0]), "askQty": fmt.s8(ak[1])}
            if futures:
                row["time"] = lx.clock.now()
            rows.append(row)
        return rows[0] if p.get("symbol") else rows
    return book_ticker


def _price(futures: bool) -> Handler:
    def price(lx: "LocalExchange", p: Params, a: Any) -> Any:
        markets = lx.engine.futures if futures else lx.engine.spot
        states = [lx.engine.market(p["symbol"], futures)] if p.get("symbol") else list(markets.values())
        rows = [{"symbol": st.spec.id, "price": fmt.s8(st.book.ref), "time": lx.clock.now()} for st in states]
        return rows[0] if p.get("symbol") else rows
    return price


def _trades(futures: bool, agg: bool) -> Handler:
    def trades(lx: "LocalExchange", p: Params, a: Any) -> Any:
        st = lx.engine.market(p.get("symbol"), futures)
        rows = st.feed.trades(lx.clock.now(), min(int(p.get("limit") or 500), 1000), _int(p, "fromId"),
                              _int(p, "startTime"), _int(p, "endTime"))
        if agg:
            return [{"a": i, "p": num(px), "q": num(q), "f": i, "l": i, "T": t, "m": m, "M": True}
                    for i, t, px, q, m in rows]
        return [{"id": i, "price": num(px), "qty": num(q), "quoteQty": num(px * q), "time": t,
                 "isBuyerMaker": m, "isBestMatch": True} for i, t, px, q, m in rows]
    return trades


def premium_index(lx: "LocalExchange", p: Params, a: Any) -> Any:
    states = [lx.engine.market(p["symbol"], True)] if p.get("symbol") else list(lx.engine.futures.values())
    now = lx.clock.now()
    rows = [{"symbol": st.spec.id, "markPrice": fmt.s8(st.mark), "indexPrice": fmt.s8(st.mark),
             "estimatedSettlePrice": fmt.s8(st.mark), "lastFundingRate": "0.00000000",
             "interestRate": "0.00000000", "nextFundingTime": now // 28_800_000 * 28_800_000 + 28_800_000,
             "time": now} for st in states]
    return rows[0] if p.get("symbol") else rows


# spot private

def spot_account(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": lx.clock.now(),
            "accountType": "SPOT", "uid": 1,
            "balances": [{"asset": k, "free": fmt.s8(b.free), "locked": fmt.s8(b.locked)}
                         for k, b in sorted(a.spot.items())],
            "permissions": ["SPOT"]}


def spot_new_order(lx: "LocalExchange", p: Params, a: Account) -> Any:
    order, fills, resp = lx.engine.place(a, p, False)
    if lx.faults.reply_before_fill:
        return _before_fill(fmt.spot_order(order, [], resp), "cummulativeQuoteQty")
    return fmt.spot_order(order, fills, resp)


def _before_fill(reply: dict[str, Any], *executed: str) -> dict[str, Any]:
    """`reply` as it was before the order matched (the fault `reply_before_fill`)."""
    if "status" in reply:  # not an ACK, which says nothing of it
        zero = fmt.s8(Decimal(0))
        reply.update(status="NEW", executedQty=zero, **{k: zero for k in executed})
    return reply


def spot_cancel_replace(lx: "LocalExchange", p: Params, a: Account) -> Any:
    if lx.faults.no_cancel_replace:
        raise BinanceError(-1013, "Cancel-replace is not allowed on this symbol.")
    old, cancel_id, new = cond.cancel_replace(lx.engine, a, p)
    return {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
            "cancelResponse": _spot_cancel_reply(old, cancel_id),
            "newOrderResponse": fmt.spot_order(new, [], p.get("newOrderRespType") or "RESULT")}


def spot_get_order(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return fmt.spot_order_query(lx.engine.find(a, p, False))


def _spot_cancel_reply(order: Any, cancel_id: str) -> dict[str, Any]:
    d = fmt.spot_order(order)
    d["origClientOrderId"] = order.client_id
    d["clientOrderId"] = cancel_id
    return d


def spot_cancel(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return _spot_cancel_reply(*lx.engine.cancel(a, p, False))


def spot_cancel_all(lx: "LocalExchange", p: Params, a: Account) -> Any:
    orders = lx.engine.cancel_all(a, p.get("symbol"), False)
    return [_spot_cancel_reply(o, f"lxc{o.update_time}{o.id}") for o in orders]


def spot_open_orders(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [fmt.spot_order_query(o) for o in lx.engine.open_orders(a, p.get("symbol"), False)]


def spot_all_orders(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [fmt.spot_order_query(o) for o in lx.engine.all_orders(a, p, False)]


def spot_my_trades(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [fmt.spot_trade(t) for t in lx.engine.my_trades(a, p, False)]


# futures private

def futures_account(lx: "LocalExchange", p: Params, a: Account) -> Any:
    eng, now = lx.engine, lx.clock.now()
    positions = eng.positions(a)
    upnl = sum((pos.unrealized(st.mark) for pos, st in positions), Decimal(0))
    margins = sum((pos.margin for pos, _ in positions), Decimal(0))
    im = margins + a.order_margin
    asset = {"asset": a.settle, "walletBalance": fmt.s8(a.wallet), "unrealizedProfit": fmt.s8(upnl),
             "marginBalance": fmt.s8(a.wallet + upnl), "maintMargin": "0", "initialMargin": fmt.s8(im),
             "positionInitialMargin": fmt.s8(margins), "openOrderInitialMargin": fmt.s8(a.order_margin),
             "crossWalletBalance": fmt.s8(a.wallet - margins), "crossUnPnl": "0.00000000",
             "availableBalance": fmt.s8(a.available), "maxWithdrawAmount": fmt.s8(a.available),
             "updateTime": now}
    return {"totalInitialMargin": fmt.s8(im), "totalMaintMargin": "0", "totalWalletBalance": fmt.s8(a.wallet),
            "totalUnrealizedProfit": fmt.s8(upnl), "totalMarginBalance": fmt.s8(a.wallet + upnl),
            "totalPositionInitialMargin": fmt.s8(margins),
            "totalOpenOrderInitialMargin": fmt.s8(a.order_margin),
            "totalCrossWalletBalance": fmt.s8(a.wallet - margins), "totalCrossUnPnl": "0.00000000",
            "availableBalance": fmt.s8(a.available), "maxWithdrawAmount": fmt.s8(a.available),
            "assets": [asset],
            "positions": [{"symbol": pos.symbol, "positionSide": "BOTH", "positionAmt": fmt.s8(pos.amount),
                           "unrealizedProfit": fmt.s8(pos.unrealized(st.mark)),
                           "isolatedMargin": fmt.s8(pos.margin), "notional": fmt.s8(pos.amount * st.mark),
                           "isolatedWallet": fmt.s8(pos.margin), "initialMargin": fmt.s8(pos.margin),
                           "maintMargin": fmt.s8(abs(pos.amount) * st.mark * st.spec.mmr),
                           "updateTime": pos.update_time} for pos, st in positions]}


def futures_balance(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [{"accountAlias": "lx", "asset": a.settle, "balance": fmt.s8(a.wallet),
             "crossWalletBalance": fmt.s8(a.available), "crossUnPnl": "0.00000000",
             "availableBalance": fmt.s8(a.available), "maxWithdrawAmount": fmt.s8(a.available),
             "marginAvailable": True, "updateTime": lx.clock.now()}]


def position_risk(lx: "LocalExchange", p: Params, a: Account) -> Any:
    rows = [fmt.position_risk(pos, st.spec, st.mark) for pos, st in lx.engine.positions(a)]
    return [r for r in rows if not p.get("symbol") or r["symbol"] == p["symbol"]]


def leverage_bracket(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [{"symbol": st.spec.id, "notionalCoef": 1.0, "brackets": [
        {"bracket": 1, "initialLeverage": st.spec.max_leverage, "notionalCap": 1_000_000_000,
         "notionalFloor": 0, "maintMarginRatio": float(st.spec.mmr), "cum": 0.0}]}
        for st in lx.engine.futures.values() if not p.get("symbol") or st.spec.id == p["symbol"]]


def symbol_config(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [{"symbol": st.spec.id, "marginType": a.margin_type.get(st.spec.id, "ISOLATED"),
             "isAutoAddMargin": False, "leverage": a.position(st.spec.id).leverage,
             "maxNotionalValue": "1000000"}
            for st in lx.engine.futures.values() if not p.get("symbol") or st.spec.id == p["symbol"]]


def futures_new_order(lx: "LocalExchange", p: Params, a: Account) -> Any:
    reply = fmt.futures_order(lx.engine.place(a, p, True)[0])
    if lx.faults.reply_before_fill:
        return _before_fill(reply, "avgPrice", "cumQty", "cumQuote")
    return reply


def futures_get_order(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return fmt.futures_order(lx.engine.find(a, p, True))


def futures_cancel(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return fmt.futures_order(lx.engine.cancel(a, p, True)[0])


def futures_cancel_all(lx: "LocalExchange", p: Params, a: Account) -> Any:
    lx.engine.cancel_all(a, p.get("symbol"), True)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def futures_open_orders(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [fmt.futures_order(o) for o in lx.engine.open_orders(a, p.get("symbol"), True)]


def futures_all_orders(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [fmt.futures_order(o) for o in lx.engine.all_orders(a, p, True)]


def futures_user_trades(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [fmt.futures_trade(t) for t in lx.engine.my_trades(a, p, True)]


def algo_new(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return cond.algo_json(cond.place_algo(lx.engine, a, p))


def algo_get(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return cond.algo_json(cond.find_algo(lx.engine, a, p))


def algo_cancel(lx: "LocalExchange", p: Params, a: Account) -> Any:
    algo = cond.cancel_algo(lx.engine, a, p)
    return {"algoId": algo.id, "clientAlgoId": algo.client_id, "code": "200", "msg": "success"}


def algo_open(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [cond.algo_json(x) for x in cond.algos_of(lx.engine, a, p.get("symbol"), True)]


def algo_all(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return [cond.algo_json(x) for x in cond.algos_of(lx.engine, a, p.get("symbol"), False)]


def algo_cancel_all(lx: "LocalExchange", p: Params, a: Account) -> Any:
    for algo in cond.algos_of(lx.engine, a, p.get("symbol"), True):
        cond.cancel_algo(lx.engine, a, {"algoId": str(algo.id)})
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def set_leverage(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return lx.engine.set_leverage(a, p.get("symbol"), p.get("leverage"))


def set_margin_type(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return lx.engine.set_margin_type(a, p.get("symbol"), p.get("marginType"))


def listen_key(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return {"listenKey": lx.hub.new_listen_key(a)}


def keep_alive(lx: "LocalExchange", p: Params, a: Account) -> Any:
    return {}


def add_routes(app: web.Application, lx: "LocalExchange") -> None:
    r = app.router
    for futures, base in ((False, "/api/v3"), (True, "/fapi/v1")):
        r.add_get(f"{base}/ping", route(lx, ping))
        r.add_get(f"{base}/time", route(lx, time_))
        r.add_get(f"{base}/exchangeInfo", route(lx, _info(futures)))
        r.add_get(f"{base}/klines", route(lx, _klines(futures)))
        r.add_get(f"{base}/depth", route(lx, _depth(futures)))
        r.add_get(f"{base}/ticker/24hr", route(lx, _ticker(futures)))
        r.add_get(f"{base}/ticker/bookTicker", route(lx, _book_ticker(futures)))
        r.add_get(f"{base}/ticker/price", route(lx, _price(futures)))
        r.add_get(f"{base}/trades", route(lx, _trades(futures, False)))
        r.add_get(f"{base}/aggTrades", route(lx, _trades(futures, True)))
    s = "/api/v3"
    r.add_get(f"{s}/account", route(lx, spot_account, signed=True))
    r.add_post(f"{s}/order", route(lx, spot_new_order, signed=True))
    r.add_get(f"{s}/order", route(lx, spot_get_order, signed=True))
    r.add_post(f"{s}/order/cancelReplace", route(lx, spot_cancel_replace, signed=True))
    r.add_delete(f"{s}/order", route(lx, spot_cancel, signed=True))
    r.add_get(f"{s}/openOrders", route(lx, spot_open_orders, signed=True))
    r.add_delete(f"{s}/openOrders", route(lx, spot_cancel_all, signed=True))
    r.add_get(f"{s}/allOrders", route(lx, spot_all_orders, signed=True))
    r.add_get(f"{s}/myTrades", route(lx, spot_my_trades, signed=True))
    f = "/fapi/v1"
    r.add_get(f"{f}/premiumIndex", route(lx, premium_index))
    for v in ("v2", "v3"):
        r.add_get(f"/fapi/{v}/account", route(lx, futures_account, signed=True))
        r.add_get(f"/fapi/{v}/balance", route(lx, futures_balance, signed=True))
        r.add_get(f"/fapi/{v}/positionRisk", route(lx, position_risk, signed=True))
    r.add_get(f"{f}/leverageBracket", route(lx, leverage_bracket, signed=True))
    r.add_get(f"{f}/symbolConfig", route(lx, symbol_config, signed=True))
    r.add_post(f"{f}/leverage", route(lx, set_leverage, signed=True))
    r.add_post(f"{f}/marginType", route(lx, set_margin_type, signed=True))
    r.add_post(f"{f}/algoOrder", route(lx, algo_new, signed=True))
    r.add_get(f"{f}/algoOrder", route(lx, algo_get, signed=True))
    r.add_delete(f"{f}/algoOrder", route(lx, algo_cancel, signed=True))
    r.add_get(f"{f}/openAlgoOrders", route(lx, algo_open, signed=True))
    r.add_get(f"{f}/allAlgoOrders", route(lx, algo_all, signed=True))
    r.add_delete(f"{f}/algoOpenOrders", route(lx, algo_cancel_all, signed=True))
    r.add_post(f"{f}/order", route(lx, futures_new_order, signed=True))
    r.add_get(f"{f}/order", route(lx, futures_get_order, signed=True))
    r.add_delete(f"{f}/order", route(lx, futures_cancel, signed=True))
    r.add_get(f"{f}/openOrders", route(lx, futures_open_orders, signed=True))
    r.add_delete(f"{f}/allOpenOrders", route(lx, futures_cancel_all, signed=True))
    r.add_get(f"{f}/allOrders", route(lx, futures_all_orders, signed=True))
    r.add_get(f"{f}/userTrades", route(lx, futures_user_trades, signed=True))
    r.add_post(f"{f}/listenKey", route(lx, listen_key, key_only=True))
    r.add_put(f"{f}/listenKey", route(lx, keep_alive, key_only=True))
    r.add_delete(f"{f}/listenKey", route(lx, keep_alive, key_only=True))


def _int(p: Params, name: str) -> int | None:
    v = p.get(name)
    return int(v) if v and v.lstrip("-").isdigit() else None
