"""Conditional orders of the local exchange, fired by the replayed trades as Binance fires them.

Spot (`POST /api/v3/order`): STOP_LOSS and TAKE_PROFIT (a market order once triggered) and
STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT (a limit at `price` once triggered), with
`stopPrice`. Until it fires the order is open but not working (`isWorking` false, no
place in the book); it holds its funds as a limit order would (a buy at its limit, or at
its stop for a market-type buy, which releases that hold and pays from free funds when
it fires). When it fires it keeps its id and type and works from then on (`workingTime`)
through the engine's own placement: the market types fill what the book has and expire
the rest, the limit types fill or rest as their time in force says. At most 5 may be open
per account and symbol (MAX_NUM_ALGO_ORDERS).

USD-M futures (`/fapi/v1/algoOrder`, algoType CONDITIONAL, as ccxt sends conditional
futures orders since Binance moved them to its algo service): STOP_MARKET,
TAKE_PROFIT_MARKET, STOP and TAKE_PROFIT (limit at `price`), TRAILING_STOP_MARKET
(`callbackRate` in percent, 0.1 to 10, from the best price since `activatePrice` was
reached, or since it was placed). An algo order holds no margin. When it fires it places
a regular order (its client id is the algo's `clientAlgoId`; ORDER_TRADE_UPDATE as any
order) and ALGO_UPDATE reports it: NEW, TRIGGERED (with the order's id in `ai`),
FINISHED the moment that order ends (filled, expired or cancelled, whoever cancels it),
CANCELED, or EXPIRED if the order was refused (the reason in `rm`). Every algo stays
queryable; the open ones are those still waiting.

Spot trailing stops: any of the four spot types with `trailingDelta` (basis points, within
the symbol's TRAILING_DELTA filter, else -1013 "Filter failure: TRAILING_DELTA"). `stopPrice`
is then optional and is the activation: the order starts to trail on the first trade that
meets the type's stop condition (a STOP_LOSS SELL at or below it, a TAKE_PROFIT SELL at
or above, and so on); without it the order trails from the price at placement. A sell
fires on a fall of the delta from the highest trade since then, a buy on a rise from the
lowest. Reports carry `trailingDelta` and `trailingTime` (REST; -1 until it trails) and
`d` / `D` (executionReport). One trailing rule (`Trail`) serves spot and USD-M.

Trigger (both): the last replayed trade price. A sell stop and a buy take-profit fire at
or below their trigger, a buy stop and a sell take-profit at or above. An order that the
price now would fire (or, trailing, activate) is refused (spot -2010, futures -2021).
The orders waiting in a market sit in its `Armed` set, sorted by trigger, so a trade
looks only at those it fires (and at the trailing ones, which move with every trade).
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from math import inf
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from .accounts import Account
from .auth import BinanceError, bad_param
from .book import Order
from .markets import ZERO, MarketSpec
from .validate import FUTURES_TIF, MARKET_TYPES, OrderRequest, check_notional, check_price, check_qty, number

if TYPE_CHECKING:
    from .engine import Engine, MarketState

ALGO_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET")
_PROFIT = ("TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "TAKE_PROFIT_MARKET")
_HUNDRED = Decimal(100)


def falls_to_fire(buy: bool, type_: str) -> bool:
    """Whether an order of `type_` fires on a falling price (a sell stop, a buy target)."""
    return (type_ in _PROFIT) == buy


def fires(buy: bool, type_: str, trigger: Decimal, price: Decimal) -> bool:
    return price <= trigger if falls_to_fire(buy, type_) else price >= trigger


@attrs.define(slots=True, eq=False)
class Trail:
    """A trailing stop's state, the one rule of both venues: it arms when the price reaches
    `activate` (falling to it if `arm_falling`; at once if 0), then follows the best price
    (`extreme`: the highest for a sell, the lowest for a buy) and fires `rate` (a fraction)
    behind it."""

    buy: bool
    rate: Decimal
    arm_falling: bool
    activate: Decimal = ZERO
    extreme: Decimal = ZERO  # 0: not armed yet
    trigger: Decimal = ZERO
    since: int = -1  # when it armed (ms)

    def arm(self, price: Decimal, now: int) -> None:
        self.extreme, self.since = price, now

    def armed_by(self, price: Decimal) -> bool:
        return price <= self.activate if self.arm_falling else price >= self.activate

    def follow(self, spec: MarketSpec, price: Decimal, now: int) -> bool:
        """Follow the trade at `price`; whether it fires now."""
        if not self.extreme:
            if not self.armed_by(price):
                return False
            self.arm(price, now)
        self.extreme = min(self.extreme, price) if self.buy else max(self.extreme, price)
        shift = self.extreme * self.rate
        self.trigger = spec.round_price(self.extreme + shift if self.buy else self.extreme - shift)
        return price >= self.trigger if self.buy else price <= self.trigger


# ---- spot ------------------------------------------------------------------------------------
def check_spot(st: "MarketState", req: OrderRequest) -> None:
    """A new spot stop or take-profit: refused if the price now would fire it; the notional
    checked at what it holds (its limit, else its stop, else the price now)."""
    assert req.qty is not None and (req.stop_price is not None or req.trailing_delta is not None)
    stop = req.stop_price
    if stop is not None and fires(req.side == "BUY", req.type, stop, st.book.ref):
        raise BinanceError(-2010, "Stop price would trigger immediately.")
    check_notional(st.spec, req.qty * (req.price or stop or st.book.ref))


def wait(order: Order, req: OrderRequest, ref: Decimal, now: int) -> None:
    """Make a new spot order wait for its trigger: not working, no place in the book."""
    order.work_time = -1
    order.stop_price = req.stop_price or ZERO
    if req.trailing_delta is not None:
        order.trail = _spot_trail(req, order.buy, ref, now)


def _spot_trail(req: OrderRequest, buy: bool, ref: Decimal, now: int) -> Trail:
    """A spot trailing stop arms on its type's stop condition at `stopPrice`, or at once."""
    assert req.trailing_delta is not None
    trail = Trail(buy, Decimal(req.trailing_delta) / 10_000, falls_to_fire(buy, req.type),
                  req.stop_price or ZERO)
    if req.stop_price is None:
        trail.arm(ref, now)
    return trail


def _fire_spot(engine: "Engine", st: "MarketState", o: Order, now: int) -> None:
    """A spot order fires: it works from now on, against the book, as a market order (the
    market types) or a limit order at its price would from now on."""
    o.work_time = o.update_time = now
    market = o.type in MARKET_TYPES
    plan = st.book.plan(o.buy, None if market else o.price, o.remaining)
    if market and o.buy:
        engine._release(o)  # a market buy pays from free funds, as a market order does
        if o.account.balance(st.spec.quote).free < engine.cost(plan):
            plan = []
    engine.execute(st, o, plan, now)


def cancel_replace(engine: "Engine", acc: Account,
                   params: Mapping[str, str]) -> tuple[Order, str, Order]:
    """Spot's `POST /api/v3/order/cancelReplace`: cancel an open order and place a new one
    in one step of the engine, so no replayed trade falls between them (what an amended
    stop needs: the exchange holds one stop or the other at every trade). The new order
    is checked before the cancel; if it is refused after the cancel (funds, an immediate
    trigger) the answer is -2021 and the old order stays cancelled; if the cancel fails
    the new one is not tried (STOP_ON_FAILURE): -2022. Both answers say what each part
    did (`data`), as Binance's do.
    Returns (cancelled order, cancel id, new order)."""
    from .validate import parse_order

    mode = params.get("cancelReplaceMode") or ""
    if mode != "STOP_ON_FAILURE":  # ALLOW_FAILURE (place even if the cancel fails): not served
        raise bad_param("cancelReplaceMode")
    parse_order(params, engine.market(params.get("symbol"), False).spec)
    ref = {"symbol": params.get("symbol") or "", "orderId": params.get("cancelOrderId") or "",
           "origClientOrderId": params.get("cancelOrigClientOrderId") or "",
           "newClientOrderId": params.get("cancelNewClientOrderId") or ""}
    try:
        old, cancel_id = engine.cancel(acc, {k: v for k, v in ref.items() if v}, False)
    except BinanceError as e:
        raise BinanceError(-2022, "Order cancel-replace failed.", data={
            "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": e.body(), "newOrderResponse": None}) from None
    try:
        new = engine.place(acc, params, False)[0]
    except BinanceError as e:
        raise BinanceError(-2021, f"Order cancel-replace partially failed. ({e.msg})", data={
            "cancelResult": "SUCCESS", "newOrderResult": "FAILURE",
            "cancelResponse": {"symbol": old.spec.id, "origClientOrderId": old.client_id,
                               "clientOrderId": cancel_id, "status": "CANCELED"},
            "newOrderResponse": e.body()}) from None
    return old, cancel_id, new


# ---- USD-M algo orders -----------------------------------------------------------------------
@attrs.define(slots=True, eq=False)
class Algo:
    """One USD-M conditional (algo) order."""

    id: int
    client_id: str
    account: Account
    spec: MarketSpec
    side: str
    type: str
    qty: Decimal
    stop: Decimal  # `triggerPrice` (none for a trailing stop)
    price: Decimal
    tif: str
    reduce_only: bool
    close_position: bool
    time: int
    trail: Trail | None = None  # a TRAILING_STOP_MARKET's
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    order: Order | None = None
    reason: str = ""

    @property
    def buy(self) -> bool:
        return self.side == "BUY"

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"

    @property
    def trigger(self) -> Decimal:
        """The price it fires at: a trailing stop's follows the market (0 until it arms)."""
        return self.trail.trigger if self.trail else self.stop


def parse_algo(params: Mapping[str, str], spec: MarketSpec, mark: Decimal, acc: Account,
               now: int, algo_id: int) -> Algo:
    """A new algo order from its parameters; BinanceError as Binance answers."""
    if (params.get("algoType") or "") != "CONDITIONAL":
        raise bad_param("algoType")
    side, type_ = params.get("side") or "", params.get("type") or ""
    if side not in ("BUY", "SELL"):
        raise bad_param("side") if not side else BinanceError(-1117, "Invalid side.")
    if type_ not in ALGO_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    tif = params.get("timeInForce") or "GTC"
    if tif not in FUTURES_TIF:  # GTD is not served here
        raise BinanceError(-1115, "Invalid timeInForce.")
    close, reduce = _flag(params, "closePosition"), _flag(params, "reduceOnly")
    if close:
        _close_all(params, type_)
    qty = number(params, "quantity", required=not close) or ZERO
    trailing = type_ == "TRAILING_STOP_MARKET"
    trigger = number(params, "triggerPrice", required=not trailing) or ZERO
    price = number(params, "price", required=type_ in ("STOP", "TAKE_PROFIT")) or ZERO
    for p in (trigger, price):
        if p:
            check_price(spec, p)
    if qty:
        check_qty(spec, qty)
    algo = Algo(algo_id, params.get("clientAlgoId") or f"lxa{algo_id}", acc, spec, side, type_,
                qty, trigger, price, tif, reduce, close, now, update_time=now)
    if trailing:
        _trailing(algo, params, spec, mark)
    elif fires(algo.buy, type_, trigger, mark):
        raise BinanceError(-2021, "Order would immediately trigger.")
    if qty:  # at the price it would trade at once it fires
        check_notional(spec, qty * (price or trigger or (algo.trail and algo.trail.activate) or mark),
                       reduce)
    return algo


def _flag(params: Mapping[str, str], name: str) -> bool:
    return (params.get(name) or "false").lower() == "true"


def _close_all(params: Mapping[str, str], type_: str) -> None:
    """closePosition (close all at the trigger): only a STOP_MARKET or TAKE_PROFIT_MARKET,
    and with no quantity or reduceOnly."""
    if type_ not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
        raise BinanceError(-4136, f"Target strategy invalid for orderType {type_},closePosition true")
    for name in ("quantity", "reduceOnly"):
        if params.get(name):
            raise BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def _trailing(algo: Algo, params: Mapping[str, str], spec: MarketSpec, mark: Decimal) -> None:
    rate = number(params, "callbackRate")
    assert rate is not None
    if not Decimal("0.1") <= rate <= Decimal(10):
        raise BinanceError(-1102, "Parameter 'callbackRate' is out of range [0.1, 10].")
    act = number(params, "activatePrice", required=False)
    # a sell arms on a rise to its activation price, a buy on a fall
    trail = algo.trail = Trail(algo.buy, rate / _HUNDRED, algo.buy, act or ZERO)
    if act is None:
        trail.arm(mark, algo.time)  # armed at once, from the price now
        return
    check_price(spec, act)
    if trail.armed_by(mark):
        raise BinanceError(-2021, "Order would immediately trigger.")


def place_algo(engine: "Engine", acc: Account, params: Mapping[str, str]) -> Algo:
    st = engine.market(params.get("symbol"), True)
    now = engine.now()
    algo = parse_algo(params, st.spec, st.mark, acc, now, next(engine.algo_ids))
    same = engine.algo_by_client.get((acc.name, algo.client_id))
    if same is not None and same.is_open:
        raise BinanceError(-4116, "ClientOrderId is duplicated.")
    engine.algos[algo.id] = algo
    engine.algo_by_client[(acc.name, algo.client_id)] = algo
    st.armed.add(algo, algo.stop)
    _report(engine, algo, now)
    return algo


def _fire_algo(engine: "Engine", algo: Algo, now: int) -> None:
    """Place the algo's order; TRIGGERED, or EXPIRED when the order is refused. The algo is
    FINISHED when that order ends: at once, or later (`order_ended`)."""
    acc, spec = algo.account, algo.spec
    qty = algo.qty
    if algo.close_position:
        qty = abs(acc.position(spec.id).amount)
    params = {"symbol": spec.id, "side": algo.side, "quantity": str(qty),
              "newClientOrderId": algo.client_id,
              "reduceOnly": "true" if algo.reduce_only or algo.close_position else "false"}
    if algo.type in ("STOP", "TAKE_PROFIT"):
        params.update(type="LIMIT", price=str(algo.price), timeInForce=algo.tif)
    else:
        params["type"] = "MARKET"
    algo.trigger_time = algo.update_time = now
    held: list[Any] = []
    listeners = engine.listeners
    if engine.algo_first():  # the order's events wait until the algo's are out
        engine.listeners = [held.append]
    try:
        algo.order = engine.place(acc, params, True)[0]
        algo.status = "TRIGGERED"
    except BinanceError as e:
        algo.status, algo.reason = "EXPIRED", e.msg
    finally:
        engine.listeners = listeners
    _report(engine, algo, now)
    if algo.order is not None and algo.order.is_open:
        engine.children[algo.order.id] = algo
    elif algo.order is not None:
        _finish(engine, algo, now)
    for event in held:
        engine._emit(event)


def _finish(engine: "Engine", algo: Algo, now: int) -> None:
    algo.status, algo.update_time = "FINISHED", now
    _report(engine, algo, now)


def order_ended(engine: "Engine", o: Order, now: int) -> None:
    """An order is done (filled, expired or cancelled): a spot stop cancelled before it fired
    leaves its market's armed orders; the order an algo placed finishes the algo, now."""
    if not o.working:
        engine.state_of(o.spec).armed.remove(o, o.stop_price)
    algo = engine.children.pop(o.id, None)
    if algo is not None:
        _finish(engine, algo, now)


def cancel_algo(engine: "Engine", acc: Account, params: Mapping[str, str]) -> Algo:
    algo = find_algo(engine, acc, params, cancel=True)
    if not algo.is_open:
        raise BinanceError(-2011, "Unknown order sent.")
    now = engine.now()
    algo.status, algo.update_time = "CANCELED", now
    engine.state_of(algo.spec).armed.remove(algo, algo.stop)
    _report(engine, algo, now)
    return algo


def find_algo(engine: "Engine", acc: Account, params: Mapping[str, str],
              cancel: bool = False) -> Algo:
    aid, cid = params.get("algoId"), params.get("clientAlgoId")
    if not aid and not cid:
        raise BinanceError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both "
                                  "were empty/null!")
    if aid:  # an id that is no number names no algo
        algo = engine.algos.get(int(aid)) if aid.isdigit() else None
    else:  # the newest of a reused client id
        algo = engine.algo_by_client.get((acc.name, cid or ""))
    if algo is not None and algo.account is acc:
        return algo
    if cancel:
        raise BinanceError(-2011, "Unknown order sent.")
    raise BinanceError(-2013, "Order does not exist.")


def algos_of(engine: "Engine", acc: Account, symbol: str | None,
             open_only: bool) -> list[Algo]:
    """An account's algo orders, oldest first: the open ones are its markets' armed ones."""
    if not open_only:
        return [a for a in engine.algos.values() if a.account is acc
                and (symbol is None or a.spec.id == symbol)]
    markets = [engine.market(symbol, True)] if symbol else list(engine.futures.values())
    return sorted((a for st in markets for a in st.armed.items.values() if a.account is acc),
                  key=lambda a: a.id)


# ---- on each replayed trade ----------------------------------------------------------------
@attrs.define(slots=True, eq=False)
class Armed:
    """The conditional orders of one market that wait for their trigger (spot orders or USD-M
    algos), kept so that a trade looks only at those it fires: fixed triggers sorted by
    price, one list per direction, and the trailing ones apart (their trigger moves with
    every trade). An order leaves when it fires or is cancelled."""

    items: dict[int, Any] = attrs.field(factory=dict)  # by id
    falls: list[tuple[Decimal, int]] = attrs.field(factory=list)  # fire at or below; ascending
    rises: list[tuple[Decimal, int]] = attrs.field(factory=list)  # fire at or above; ascending
    trails: dict[int, Any] = attrs.field(factory=dict)

    def __bool__(self) -> bool:
        return bool(self.items)

    def _side(self, item: Any) -> list[tuple[Decimal, int]]:
        return self.falls if falls_to_fire(item.buy, item.type) else self.rises

    def add(self, item: Any, trigger: Decimal) -> None:
        self.items[item.id] = item
        if item.trail is not None:
            self.trails[item.id] = item
        else:
            bisect.insort(self._side(item), (trigger, item.id))

    def remove(self, item: Any, trigger: Decimal) -> None:
        if self.items.pop(item.id, None) is None:
            return
        if self.trails.pop(item.id, None) is None:
            side = self._side(item)
            i = bisect.bisect_left(side, (trigger, item.id))
            if i < len(side) and side[i] == (trigger, item.id):
                del side[i]

    def due(self, spec: MarketSpec, price: Decimal, now: int) -> list[Any]:
        """Those the trade at `price` fires, oldest first; they leave. Every trailing one
        follows the trade."""
        cut, n = bisect.bisect_left(self.falls, (price,)), bisect.bisect_right(self.rises, (price, inf))
        ids = [i for _, i in self.falls[cut:]] + [i for _, i in self.rises[:n]]
        del self.falls[cut:], self.rises[:n]
        ids += [i for i, t in list(self.trails.items()) if t.trail.follow(spec, price, now)]
        for i in ids:
            self.trails.pop(i, None)
        return [self.items.pop(i) for i in sorted(ids)]


def on_price(engine: "Engine", st: "MarketState", price: Decimal, now: int) -> None:
    """Fire the conditional orders of `st`'s market that the trade at `price` reaches."""
    for item in st.armed.due(st.spec, price, now):
        if st.spec.futures:
            _fire_algo(engine, item, now)
        else:
            _fire_spot(engine, st, item, now)


# ---- JSON shapes -------------------------------------------------------------------------------
def algo_json(a: Algo) -> dict[str, Any]:
    from .formats import s8

    return {"algoId": a.id, "clientAlgoId": a.client_id, "algoType": "CONDITIONAL",
            "orderType": a.type, "symbol": a.spec.id, "side": a.side, "positionSide": "BOTH",
            "timeInForce": a.tif, "quantity": s8(a.qty), "algoStatus": a.status,
            "triggerPrice": s8(a.trigger), "price": s8(a.price), "icebergQuantity": None,
            "selfTradePreventionMode": "NONE", "workingType": "CONTRACT_PRICE",
            "priceMatch": "NONE", "closePosition": a.close_position, "priceProtect": False,
            "reduceOnly": a.reduce_only,
            "activatePrice": s8(a.trail.activate if a.trail else ZERO),
            "callbackRate": s8(a.trail.rate * _HUNDRED if a.trail else ZERO), "createTime": a.time, "updateTime": a.update_time,
            "triggerTime": a.trigger_time, "goodTillDate": 0,
            "actualOrderId": str(a.order.id) if a.order else ""}


def algo_update(a: Algo, now: int) -> dict[str, Any]:
    from .formats import s8

    o = a.order
    return {"e": "ALGO_UPDATE", "T": now, "E": now, "o": {
        "caid": a.client_id, "aid": a.id, "at": "CONDITIONAL", "o": a.type, "s": a.spec.id,
        "S": a.side, "ps": "BOTH", "f": a.tif, "q": s8(a.qty), "X": a.status,
        "ai": str(o.id) if o else "", "ap": s8(o.avg_price if o else ZERO),
        "aq": s8(o.filled if o else ZERO), "act": o.type if o else "0", "tp": s8(a.trigger),
        "p": s8(a.price), "V": "NONE", "wt": "CONTRACT_PRICE", "pm": "NONE",
        "cp": a.close_position, "pP": False, "R": a.reduce_only, "tt": a.trigger_time, "gtd": 0,
        "rm": a.reason}}


def _report(engine: "Engine", algo: Algo, now: int) -> None:
    engine._user(algo.account, True, algo_update(algo, now))
