"""Conditional orders of the local exchange, fired by the replayed trades as Binance fires them.

Spot (`POST /api/v3/order`): STOP_LOSS and TAKE_PROFIT (a market order once triggered) and
STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT (a limit at `price` once triggered), with
`stopPrice`. Until it fires the order is open but not working (`isWorking` false, no
place in the book); it holds its funds as a limit order would (a buy at its limit, or at
its stop for a market-type buy, which releases that hold and pays from free funds when
it fires). When it fires it keeps its id and type and executes against the book: the
market types fill what the book has and expire the rest, the limit types rest.

USD-M futures (`/fapi/v1/algoOrder`, algoType CONDITIONAL, as ccxt sends conditional
futures orders since Binance moved them to its algo service): STOP_MARKET,
TAKE_PROFIT_MARKET, STOP and TAKE_PROFIT (limit at `price`), TRAILING_STOP_MARKET
(`callbackRate` in percent, 0.1 to 10, from the best price since `activatePrice` was
reached, or since it was placed). An algo order holds no margin. When it fires it places
a regular order (its client id is the algo's `clientAlgoId`; ORDER_TRADE_UPDATE as any
order) and ALGO_UPDATE reports it: NEW, TRIGGERED (with the order's id in `ai`),
FINISHED once that order is done, CANCELED, or EXPIRED if the order was refused (the
reason in `rm`).

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
"""

from __future__ import annotations

from decimal import ROUND_UP, Decimal
from typing import TYPE_CHECKING, Any, Mapping

import attrs

from .accounts import Account, q8
from .auth import BinanceError, bad_param
from .book import Order
from .markets import ZERO, MarketSpec
from .validate import OrderRequest, check_notional, check_price, number

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
def place_spot(engine: "Engine", acc: Account, st: "MarketState", req: OrderRequest,
               now: int) -> Order:
    """A new spot stop or take-profit: checked, funds held, waiting for its trigger."""
    spec, buy, ref = st.spec, req.side == "BUY", st.book.ref
    stop = req.stop_price
    assert req.qty is not None and (stop is not None or req.trailing_delta is not None)
    if stop is not None and fires(buy, req.type, stop, ref):
        raise BinanceError(-2010, "Stop price would trigger immediately.")
    at = req.price or stop or ref  # what a buy holds, and the notional checked
    check_notional(spec, req.qty * at)
    order = Order(next(engine._order_ids), req.client_id or f"lx{now}{len(engine.orders)}", acc,
                  spec, req.side, req.type, req.tif, req.price or ZERO, req.qty, now,
                  stop_price=stop or ZERO, working=False)
    if req.trailing_delta is not None:
        order.trail = _spot_trail(req, buy, ref, now)
    need, asset = (q8(req.qty * at, ROUND_UP), spec.quote) if buy else (req.qty, spec.base)
    if not acc.lock(asset, need):
        raise BinanceError(-2010, "Account has insufficient balance for requested action.")
    order.reserved = need
    engine._add(order)
    engine.resting[order.id] = order
    engine.pending[order.id] = order
    engine._user(acc, False, engine._order_event(order, "NEW", now))
    return order


def _spot_trail(req: OrderRequest, buy: bool, ref: Decimal, now: int) -> Trail:
    """A spot trailing stop arms on its type's stop condition at `stopPrice`, or at once."""
    assert req.trailing_delta is not None
    trail = Trail(buy, Decimal(req.trailing_delta) / 10_000, falls_to_fire(buy, req.type),
                  req.stop_price or ZERO)
    if req.stop_price is None:
        trail.arm(ref, now)
    return trail


def _fire_spot(engine: "Engine", st: "MarketState", o: Order, now: int) -> None:
    """A spot order fires: it works from now on, against the book."""
    from .engine import MarketEvent

    o.working, o.update_time = True, now
    limit = o.price if o.type.endswith("_LIMIT") else None
    if limit is None and o.buy:
        engine._release(o)  # a market buy pays from free funds, as a market order does
    plan = st.book.plan(o.buy, limit, o.remaining)
    if limit is None and o.buy:
        cost = sum((f.qty * f.price for f in plan), ZERO)
        if o.account.balance(st.spec.quote).free < cost:
            plan = []
    for f in plan:
        engine._fill(st, o, f, now)
    if o.remaining > 0 and o.is_open:
        if limit is None:
            engine._finish(o, "EXPIRED", now)
        else:
            st.book.add(o)
    engine._emit(MarketEvent(st, None))


def cancel_replace(engine: "Engine", acc: Account,
                   params: Mapping[str, str]) -> tuple[Order, str, Order]:
    """Spot's `POST /api/v3/order/cancelReplace`: cancel an open order and place a new one
    in one step of the engine, so no replayed trade falls between them (what an amended
    stop needs: the exchange holds one stop or the other at every trade). The new order
    is checked before the cancel; if it is refused after the cancel (funds, an immediate
    trigger) the answer is -2021 and the old order stays cancelled, as on Binance.
    Returns (cancelled order, cancel id, new order)."""
    from .validate import parse_order

    mode = params.get("cancelReplaceMode") or ""
    if mode != "STOP_ON_FAILURE":  # ALLOW_FAILURE (place even if the cancel fails): not served
        raise bad_param("cancelReplaceMode")
    parse_order(params, engine.market(params.get("symbol"), False).spec)
    ref = {"symbol": params.get("symbol") or "", "orderId": params.get("cancelOrderId") or "",
           "origClientOrderId": params.get("cancelOrigClientOrderId") or "",
           "newClientOrderId": params.get("cancelNewClientOrderId") or ""}
    old, cancel_id = engine.cancel(acc, {k: v for k, v in ref.items() if v}, False)
    try:
        new = engine.place(acc, params, False)[0]
    except BinanceError as e:
        raise BinanceError(-2021, f"Order cancel-replace partially failed. ({e.msg})") from None
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
    trigger: Decimal
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
    close = (params.get("closePosition") or "false").lower() == "true"
    qty = number(params, "quantity", required=not close) or ZERO
    trailing = type_ == "TRAILING_STOP_MARKET"
    trigger = number(params, "triggerPrice", required=not trailing) or ZERO
    price = number(params, "price", required=type_ in ("STOP", "TAKE_PROFIT")) or ZERO
    for p in (trigger, price):
        if p:
            check_price(spec, p)
    if qty and not spec.on_step(qty):
        raise BinanceError(-4023, "Quantity not increased by step size.")
    algo = Algo(algo_id, params.get("clientAlgoId") or f"lxa{algo_id}", acc, spec, side, type_,
                qty, trigger, price, params.get("timeInForce") or "GTC",
                (params.get("reduceOnly") or "false").lower() == "true", close, now,
                update_time=now)
    if trailing:
        _trailing(algo, params, spec, mark)
    elif fires(algo.buy, type_, trigger, mark):
        raise BinanceError(-2021, "Order would immediately trigger.")
    return algo


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


def _trail_algo(algo: Algo, price: Decimal, now: int) -> bool:
    assert algo.trail is not None
    fired = algo.trail.follow(algo.spec, price, now)
    algo.trigger = algo.trail.trigger
    return fired


def place_algo(engine: "Engine", acc: Account, params: Mapping[str, str]) -> Algo:
    st = engine.market(params.get("symbol"), True)
    now = engine.now()
    algo = parse_algo(params, st.spec, st.mark, acc, now, next(engine.algo_ids))
    same = [a for a in engine.algos.values()
            if a.account is acc and a.client_id == algo.client_id and a.is_open]
    if same:
        raise BinanceError(-4116, "ClientOrderId is duplicated.")
    engine.algos[algo.id] = algo
    _report(engine, algo, now)
    return algo


def _fire_algo(engine: "Engine", algo: Algo, now: int) -> None:
    """Place the algo's order; TRIGGERED, or EXPIRED when the order is refused."""
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
    _finish(engine, algo, now)
    for event in held:
        engine._emit(event)


def _finish(engine: "Engine", algo: Algo, now: int) -> None:
    if algo.status == "TRIGGERED" and algo.order is not None and not algo.order.is_open:
        algo.status, algo.update_time = "FINISHED", now
        _report(engine, algo, now)


def cancel_algo(engine: "Engine", acc: Account, params: Mapping[str, str]) -> Algo:
    algo = find_algo(engine, acc, params, cancel=True)
    if not algo.is_open:
        raise BinanceError(-2011, "Unknown order sent.")
    now = engine.now()
    algo.status, algo.update_time = "CANCELED", now
    _report(engine, algo, now)
    return algo


def find_algo(engine: "Engine", acc: Account, params: Mapping[str, str],
              cancel: bool = False) -> Algo:
    aid, cid = params.get("algoId"), params.get("clientAlgoId")
    if not aid and not cid:
        raise BinanceError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both "
                                  "were empty/null!")
    for algo in reversed(engine.algos.values()):  # the newest of a reused client id
        if algo.account is acc and (str(algo.id) == aid if aid else algo.client_id == cid):
            return algo
    if cancel:
        raise BinanceError(-2011, "Unknown order sent.")
    raise BinanceError(-2013, "Order does not exist.")


def algos_of(engine: "Engine", acc: Account, symbol: str | None,
             open_only: bool) -> list[Algo]:
    return [a for a in engine.algos.values() if a.account is acc
            and (symbol is None or a.spec.id == symbol) and (a.is_open or not open_only)]


# ---- on each replayed trade ----------------------------------------------------------------
def on_price(engine: "Engine", st: "MarketState", price: Decimal, now: int) -> None:
    """Fire the conditional orders of `st`'s market that the trade at `price` reaches."""
    if st.spec.futures:
        for algo in [a for a in engine.algos.values() if a.spec is st.spec]:
            if algo.is_open and (_trail_algo(algo, price, now) if algo.trail
                                 else fires(algo.buy, algo.type, algo.trigger, price)):
                _fire_algo(engine, algo, now)
            else:
                _finish(engine, algo, now)
        return
    for o in [o for o in engine.pending.values() if o.spec is st.spec]:
        if not o.is_open:
            del engine.pending[o.id]
        elif (o.trail.follow(o.spec, price, now) if o.trail
              else fires(o.buy, o.type, o.stop_price, price)):
            del engine.pending[o.id]
            _fire_spot(engine, st, o, now)


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
