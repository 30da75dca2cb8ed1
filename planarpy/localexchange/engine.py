"""The matching engine: markets, books, accounts, orders; replays market data on the clock.

The engine is synchronous and single-threaded (it runs on the server's event loop). Each
state change is reported to `listeners` as a `UserEvent` (a ready Binance user-data payload
for one account) or a `MarketEvent` (a market whose trades or book changed), and the
WebSocket hub turns those into frames.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any, Callable, Iterable, Mapping

import attrs

from . import conditional
from . import formats as fmt
from .accounts import Account, Position, q8
from .auth import BinanceError, Credentials
from .book import Book, Fill, Order
from .markets import MAX_ALGO_ORDERS, MAX_ORDERS, ZERO, MarketSpec
from .replay import Feed
from .validate import MARKET_TYPES, SPOT_STOPS, OrderRequest, check_notional, order_ref, parse_order

INSUFFICIENT = "Account has insufficient balance for requested action."
USER_TRADE_ID0 = 1_000_000_000


@attrs.frozen(slots=True)
class UserEvent:
    account: Account
    futures: bool
    payload: dict[str, Any]


@attrs.frozen(slots=True)
class MarketEvent:
    state: "MarketState"
    tick: int | None  # index of the replayed trade, None for a book change only


@attrs.define(slots=True, eq=False)
class MarketState:
    spec: MarketSpec
    feed: Feed
    book: Book
    trade_ids: Iterable[int] = attrs.field(factory=lambda: itertools.count(USER_TRADE_ID0))
    armed: conditional.Armed = attrs.field(factory=conditional.Armed)  # waiting for a trigger

    @property
    def mark(self) -> Decimal:
        return self.book.ref


@attrs.define(slots=True, eq=False)
class Engine:
    """All markets and accounts of one local exchange."""

    now: Callable[[], int]
    spot: dict[str, MarketState] = attrs.field(factory=dict)
    futures: dict[str, MarketState] = attrs.field(factory=dict)
    accounts: dict[str, Account] = attrs.field(factory=dict)  # by API key
    listeners: list[Callable[[object], None]] = attrs.field(factory=list)
    orders: dict[int, Order] = attrs.field(factory=dict)
    # indexes, so that a long run's thousands of orders do not slow every request down
    by_client: dict[tuple[str, str], Order] = attrs.field(factory=dict)  # newest per client id
    resting: dict[int, Order] = attrs.field(factory=dict)  # open, or closed and not yet pruned
    trades: dict[str, list[fmt.TradeRecord]] = attrs.field(factory=dict)  # by account name
    # USD-M conditional orders (conditional.py), every one, for queries; the waiting ones are
    # also in their market's `armed`, and a fired one's by the id of the order it placed
    algos: dict[int, Any] = attrs.field(factory=dict)
    algo_by_client: dict[tuple[str, str], Any] = attrs.field(factory=dict)  # newest per client id
    children: dict[int, Any] = attrs.field(factory=dict)
    _order_ids: Iterable[int] = attrs.field(factory=lambda: itertools.count(1001))
    algo_ids: Iterable[int] = attrs.field(factory=lambda: itertools.count(3001))
    # basis points by which a fill taking the market's own liquidity is priced against the
    # taker (the `fill_worse_bps` fault: an exchange that fills worse than the book shows)
    fill_worse: Callable[[], float] = attrs.field(default=lambda: 0.0)
    # whether a fired algo order reports its end before its order reports (`algo_first`)
    algo_first: Callable[[], bool] = attrs.field(default=lambda: False)

    # setup

    def add_market(self, spec: MarketSpec, feed: Feed) -> MarketState:
        book = Book(spec, spec.round_price(feed.last_price()), self._unit(spec, feed))
        state = MarketState(spec, feed, book)
        (self.futures if spec.futures else self.spot)[spec.id] = state
        return state

    def add_account(self, name: str, creds: Credentials, spot: Mapping[str, Any] | None = None,
                    futures: Any = 0, leverage: int = 20) -> Account:
        acc = Account(name, creds)
        for asset, amount in (spot or {}).items():
            acc.balance(asset).free = Decimal(str(amount))
        acc.wallet = Decimal(str(futures))
        for st in self.futures.values():
            acc.position(st.spec.id).leverage = min(leverage, st.spec.max_leverage)
            acc.margin_type[st.spec.id] = "ISOLATED"
        self.accounts[creds.api_key] = acc
        self.trades[name] = []
        return acc

    def market(self, symbol: str | None, futures: bool) -> MarketState:
        if not symbol:
            raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        st = (self.futures if futures else self.spot).get(symbol)
        if st is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return st

    def state_of(self, spec: MarketSpec) -> MarketState:
        return (self.futures if spec.futures else self.spot)[spec.id]

    def _emit(self, event: object) -> None:
        for listener in self.listeners:
            listener(event)

    def _unit(self, spec: MarketSpec, feed: Feed) -> Decimal:
        return max(spec.min_qty, spec.floor_qty(Decimal(repr(feed.recent_qty()))))

    # orders

    def place(self, acc: Account, params: Mapping[str, str], futures: bool) -> tuple[Order, list[fmt.TradeRecord], str]:
        """A new order; returns (order, its immediate fills, response type). A spot stop or
        take-profit waits for its trigger (conditional.py) with its funds held."""
        st = self.market(params.get("symbol"), futures)
        req = parse_order(params, st.spec)
        now = self.now()
        same = self.by_client.get((acc.name, req.client_id)) if req.client_id else None
        if same is not None and same.is_open:
            raise (BinanceError(-4116, "ClientOrderId is duplicated.") if futures
                   else BinanceError(-2010, "Duplicate order sent."))
        if st.book.refill(now):
            self._emit(MarketEvent(st, None))
        pos = acc.position(st.spec.id) if futures else None
        if not futures:
            self._check_open_count(acc, st, req.type in SPOT_STOPS)
        if req.type in SPOT_STOPS:
            conditional.check_spot(st, req)
            qty, plan = req.qty, []
        else:
            qty, plan = self._plan(st, req, pos)
        order = Order(next(self._order_ids), req.client_id or f"lx{now}{len(self.orders)}", acc, st.spec,
                      req.side, req.type, req.tif, req.price or ZERO,
                      qty if qty is not None else sum((f.qty for f in plan), ZERO), now,
                      req.quote_qty or ZERO, req.reduce_only, work_time=now)
        if req.type in SPOT_STOPS:
            conditional.wait(order, req, st.book.ref, now)
        self._reserve(order, plan, pos)
        self._add(order)
        self._user(acc, futures, self._order_event(order, "NEW", now))
        if not order.working:
            self.resting[order.id] = order
            st.armed.add(order, order.stop_price)
            return order, [], req.resp_type
        return order, self.execute(st, order, plan, now), req.resp_type

    def _check_open_count(self, acc: Account, st: MarketState, stop: bool) -> None:
        """Spot's MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS: a new order is refused when the
        account has that many open on the symbol (stops and take-profits count in both)."""
        mine = self.open_orders(acc, st.spec.id, False)
        if len(mine) >= MAX_ORDERS:
            raise BinanceError(-1013, "Filter failure: MAX_NUM_ORDERS")
        if stop and sum(o.type in SPOT_STOPS for o in mine) >= MAX_ALGO_ORDERS:
            raise BinanceError(-1013, "Filter failure: MAX_NUM_ALGO_ORDERS")

    def _plan(self, st: MarketState, req: OrderRequest, pos: Position | None) -> tuple[Decimal | None, list[Fill]]:
        """The quantity a new order may take and its fills now; refused as Binance refuses a
        post-only order that would take, a reduce-only one that would not reduce, a market
        order below the notional filter and a FOK order that cannot fill (futures)."""
        book, futures = st.book, st.spec.futures
        if req.type == "LIMIT_MAKER" or req.tif == "GTX":
            if book.would_take(req.side == "BUY", req.price):
                raise (BinanceError(-5022, "Due to the order could not be executed as maker, the Post "
                                           "Only order will be rejected.") if futures
                       else BinanceError(-2010, "Order would immediately match and take."))
        qty = req.qty
        if futures and req.reduce_only:
            if pos.amount == 0 or (pos.amount > 0) == (req.side == "BUY"):
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos.amount))
        plan = book.plan(req.side == "BUY", req.price, qty, req.quote_qty)
        filled = sum((f.qty for f in plan), ZERO)
        if req.type == "MARKET":
            check_notional(st.spec, req.quote_qty if req.quote_qty is not None
                           else sum((f.qty * f.price for f in plan), ZERO) or qty * book.ref,
                           req.reduce_only)
        if futures and req.tif == "FOK" and filled < qty:
            raise BinanceError(-5021, "Due to the order could not be filled immediately, the FOK "
                                      "order has been rejected.")
        return qty, plan

    def execute(self, st: MarketState, order: Order, plan: list[Fill], now: int) -> list[fmt.TradeRecord]:
        """A working order takes its planned fills; what is left expires (a market-type or
        IOC/FOK order) or rests in the book."""
        if order.tif == "FOK" and sum((f.qty for f in plan), ZERO) < order.remaining:
            plan = []  # spot: a FOK order that cannot fill whole expires (futures refuse it)
        records = [self._fill(st, order, f, now) for f in plan]
        if order.remaining > 0 and order.is_open:
            if order.type in MARKET_TYPES or order.tif in ("IOC", "FOK"):
                self._finish(order, "EXPIRED", now)
            else:
                st.book.add(order)
                self.resting[order.id] = order
        self._emit(MarketEvent(st, None))
        return records

    @staticmethod
    def cost(plan: list[Fill]) -> Decimal:
        """What the planned fills cost, to the unit of account (rounded up)."""
        return q8(sum((f.qty * f.price for f in plan), ZERO), ROUND_UP)

    def _reserve(self, order: Order, plan: list[Fill], pos: Position | None) -> None:
        """Check and hold the funds (spot) or margin (futures) an order needs; -2010/-2019."""
        acc, spec = order.account, order.spec
        if spec.futures:
            price = order.price
            if order.type == "MARKET":
                filled = sum((f.qty for f in plan), ZERO)
                price = (sum((f.qty * f.price for f in plan), ZERO) / filled if filled
                         else self.futures[spec.id].book.ref)
            opening = order.qty
            if pos.amount and (pos.amount > 0) != order.buy:
                opening = max(ZERO, order.qty - abs(pos.amount))
            need = opening * price / pos.leverage + order.qty * price * spec.taker
            if need > acc.available:
                raise BinanceError(-2019, "Margin is insufficient.")
            if order.type != "MARKET":
                order.reserved = need
                acc.order_margin += need
            return
        if order.buy:  # a stop waiting to buy at the market holds at its stop, or the price now
            need = (self.cost(plan) if order.type == "MARKET" else q8(order.qty * (
                order.price or order.stop_price or self.spot[spec.id].book.ref), ROUND_UP))
            asset = spec.quote
        else:
            need, asset = order.qty, spec.base
        if order.type == "MARKET":
            if acc.balance(asset).free < need:
                raise BinanceError(-2010, INSUFFICIENT)
            return
        if not acc.lock(asset, need):
            raise BinanceError(-2010, INSUFFICIENT)
        order.reserved = need

    def _fill(self, st: MarketState, taker: Order, f: Fill, now: int) -> fmt.TradeRecord:
        """Execute one planned fill for the taker and, if any, the resting maker."""
        if f.maker is None:
            st.book.take_synthetic(f.price, f.qty, now)
            bps = self.fill_worse()
            if bps:
                return self._apply(st, taker, f.qty, _worse(st.spec, taker.buy, f.price, bps),
                                   False, now)
        else:
            self._apply(st, f.maker, f.qty, f.price, True, now)
        return self._apply(st, taker, f.qty, f.price, False, now)

    def _apply(self, st: MarketState, o: Order, qty: Decimal, price: Decimal, maker: bool,
               now: int) -> fmt.TradeRecord:
        """Account for `qty` of order `o` filled at `price`, record the trade, emit events."""
        acc, spec = o.account, o.spec
        rate = spec.maker if maker else spec.taker
        pnl = ZERO
        if spec.futures:
            if o.reserved:
                share = o.reserved * qty / o.remaining
                o.reserved -= share
                acc.order_margin -= share
            pnl, fee = acc.futures_fill(acc.position(spec.id), o.buy, qty, price, rate, now)
            fee_asset = acc.settle
        else:
            from_locked = ZERO
            if o.reserved:
                from_locked = min(o.reserved, q8(qty * o.price if o.buy else qty))
                o.reserved -= from_locked
            fee, fee_asset = acc.spot_fill(spec.base, spec.quote, o.buy, qty, price, rate, from_locked)
        cost = q8(qty * price)
        o.filled += qty
        o.cum_quote += cost
        o.update_time = now
        o.status = "FILLED" if o.remaining == 0 else "PARTIALLY_FILLED"
        rec = fmt.TradeRecord(next(st.trade_ids), o.id, spec, o.buy, maker, price, qty, cost, fee,
                              fee_asset, now, pnl)
        self.trades[acc.name].append(rec)
        self._user(acc, spec.futures, self._order_event(o, "TRADE", now, rec))
        if o.status == "FILLED":
            if maker:
                st.book.remove(o)
            self._release(o)
        self._balance_event(acc, spec, now)
        if o.status == "FILLED":
            conditional.order_ended(self, o, now)
        if spec.futures:
            self._expire_reduce_only(st, acc, now)
        return rec

    @staticmethod
    def _reducible(o: Order) -> Decimal:
        """What the futures reduce-only order `o` may still fill: the position it reduces
        (none when the position is closed, or on its side)."""
        pos = o.account.position(o.spec.id)
        return ZERO if pos.amount == 0 or (pos.amount > 0) == o.buy else abs(pos.amount)

    def _expire_reduce_only(self, st: MarketState, acc: Account, now: int) -> None:
        """Binance expires an open reduce-only order once the position leaves it nothing to
        reduce (closed, or turned to its side)."""
        for o in self.open_orders(acc, st.spec.id, True):
            if o.reduce_only and o.is_open and self._reducible(o) == 0:
                st.book.remove(o)
                self._finish(o, "EXPIRED", now)

    def _release(self, o: Order) -> None:
        if not o.reserved:
            return
        if o.spec.futures:
            o.account.order_margin -= o.reserved
        else:
            o.account.unlock(o.spec.quote if o.buy else o.spec.base, o.reserved)
        o.reserved = ZERO

    def _finish(self, o: Order, status: str, now: int, cancel_id: str | None = None) -> None:
        o.status = status
        o.update_time = now
        self._release(o)
        self._user(o.account, o.spec.futures, self._order_event(o, status, now, cancel_id=cancel_id))
        self._balance_event(o.account, o.spec, now)
        conditional.order_ended(self, o, now)

    def _order_event(self, o: Order, x: str, now: int, rec: fmt.TradeRecord | None = None,
                     cancel_id: str | None = None, liquidation: bool = False) -> dict[str, Any]:
        if o.spec.futures:
            return fmt.order_trade_update(o, x, now, rec, liquidation)
        return fmt.execution_report(o, x, now, rec, cancel_id)

    def _balance_event(self, acc: Account, spec: MarketSpec, now: int) -> None:
        if spec.futures:
            st = self.futures[spec.id]
            payload = fmt.account_update(acc, [(acc.position(spec.id), st.mark)], now)
        else:
            payload = fmt.account_position(acc, (spec.base, spec.quote), now)
        self._user(acc, spec.futures, payload)

    def _user(self, acc: Account, futures: bool, payload: dict[str, Any]) -> None:
        self._emit(UserEvent(acc, futures, payload))

    def _add(self, order: Order) -> None:
        self.orders[order.id] = order
        self.by_client[(order.account.name, order.client_id)] = order

    def find(self, acc: Account, params: Mapping[str, str], futures: bool, cancel: bool = False) -> Order:
        st = self.market(params.get("symbol"), futures)
        oid, cid = order_ref(params)
        o = self.orders.get(oid) if oid is not None else self.by_client.get((acc.name, cid or ""))
        if o is not None and o.account is acc and o.spec is st.spec and (cid is None or o.client_id == cid):
            return o
        if cancel:
            raise BinanceError(-2011, "Unknown order sent.")
        raise BinanceError(-2013, "Order does not exist.")

    def cancel(self, acc: Account, params: Mapping[str, str], futures: bool) -> tuple[Order, str]:
        """Cancel an open order; returns it and the cancel request's own client id."""
        o = self.find(acc, params, futures, cancel=True)
        if not o.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        now = self.now()
        cancel_id = params.get("newClientOrderId") or f"lxc{now}{o.id}"
        st = (self.futures if futures else self.spot)[o.spec.id]
        st.book.remove(o)
        self._finish(o, "CANCELED", now, cancel_id if not futures else None)
        self._emit(MarketEvent(st, None))
        return o, cancel_id

    def cancel_all(self, acc: Account, symbol: str | None, futures: bool) -> list[Order]:
        st = self.market(symbol, futures)
        out = []
        for o in self.open_orders(acc, symbol, futures):
            out.append(self.cancel(acc, {"symbol": st.spec.id, "orderId": str(o.id)}, futures)[0])
        return out

    def open_orders(self, acc: Account, symbol: str | None, futures: bool) -> list[Order]:
        spec = self.market(symbol, futures).spec if symbol else None
        for oid in [oid for oid, o in self.resting.items() if not o.is_open]:
            del self.resting[oid]
        return [o for o in self.resting.values() if o.account is acc
                and o.spec.futures == futures and (spec is None or o.spec is spec)]

    def all_orders(self, acc: Account, params: Mapping[str, str], futures: bool) -> list[Order]:
        spec = self.market(params.get("symbol"), futures).spec
        rows = [o for o in self.orders.values() if o.account is acc and o.spec is spec]
        return _window(rows, params, lambda o: o.time, lambda o: o.id, "orderId")

    def my_trades(self, acc: Account, params: Mapping[str, str], futures: bool) -> list[fmt.TradeRecord]:
        spec = self.market(params.get("symbol"), futures).spec
        rows = [t for t in self.trades[acc.name] if t.spec is spec]
        if params.get("orderId"):
            rows = [t for t in rows if str(t.order_id) == params["orderId"]]
        return _window(rows, params, lambda t: t.time, lambda t: t.id, "fromId")

    # futures settings

    def set_leverage(self, acc: Account, symbol: str | None, leverage: str | None) -> dict[str, Any]:
        st = self.market(symbol, True)
        if not leverage or not leverage.isdigit() or not 1 <= int(leverage) <= st.spec.max_leverage:
            raise BinanceError(-4028, f"Leverage {leverage} is not valid")
        pos = acc.position(st.spec.id)
        pos.leverage = int(leverage)
        return {"leverage": pos.leverage, "maxNotionalValue": "1000000", "symbol": st.spec.id}

    def set_margin_type(self, acc: Account, symbol: str | None, margin_type: str | None) -> dict[str, Any]:
        st = self.market(symbol, True)
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise BinanceError(-1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
        if acc.margin_type.get(st.spec.id) == margin_type:
            raise BinanceError(-4046, "No need to change margin type.")
        if margin_type == "CROSSED":  # not modelled: refuse as Binance does when it cannot change
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        acc.margin_type[st.spec.id] = margin_type
        return {"code": 200, "msg": "success"}

    # replay

    def advance(self, now: int) -> int:
        """Replay every tick up to market time `now` in time order; returns how many."""
        states = list(self.spot.values()) + list(self.futures.values())
        ends = [st.feed.visible(now) for st in states]
        n = 0
        while True:
            best, best_ts = -1, None
            for i, st in enumerate(states):
                if st.feed.pos < ends[i]:
                    ts = int(st.feed.ts[st.feed.pos])
                    if best_ts is None or ts < best_ts:
                        best, best_ts = i, ts
            if best < 0:
                break
            self._tick(states[best], best_ts)
            n += 1
        for st in states:
            if st.book.refill(now):
                self._emit(MarketEvent(st, None))
        return n

    def _tick(self, st: MarketState, ts: int) -> None:
        feed, spec = st.feed, st.spec
        i = feed.pos
        price = spec.round_price(float(feed.price[i]))
        qty = Decimal(repr(float(feed.qty[i])))
        feed.pos = i + 1
        now = max(ts, 0)
        for o, q in st.book.on_trade(price, qty, self._unit(spec, feed)):
            if o.reduce_only and spec.futures:  # no more than the position (this trade's
                q = min(q, self._reducible(o))  # fills before may have closed it)
            if o.is_open and q > 0:
                self._apply(st, o, q, o.price, True, now)
        if st.armed:
            conditional.on_price(self, st, price, now)
        if spec.futures:
            self._liquidations(st, now)
        self._emit(MarketEvent(st, i))

    def _liquidations(self, st: MarketState, now: int) -> None:
        mark, spec = st.mark, st.spec
        for acc in self.accounts.values():
            pos = acc.positions.get(spec.id)
            if pos is None or pos.amount == 0:
                continue
            liq = pos.liquidation_price(spec.mmr)
            if (pos.amount > 0 and mark > liq) or (pos.amount < 0 and mark < liq):
                continue
            for o in self.open_orders(acc, spec.id, True):
                st.book.remove(o)
                self._finish(o, "CANCELED", now)
            side = "SELL" if pos.amount > 0 else "BUY"
            order = Order(next(self._order_ids), f"autoclose-{now}", acc, spec, side, "MARKET", "IOC",
                          liq, abs(pos.amount), now, work_time=now)
            qty, pnl, fee = acc.liquidate(pos, liq, now)
            order.filled, order.cum_quote, order.status, order.update_time = qty, q8(qty * liq), "FILLED", now
            self._add(order)
            rec = fmt.TradeRecord(next(st.trade_ids), order.id, spec, side == "BUY", False, liq, qty,
                                  q8(qty * liq), fee, acc.settle, now, pnl)
            self.trades[acc.name].append(rec)
            self._user(acc, True, fmt.order_trade_update(order, "TRADE", now, rec, liquidation=True))
            self._user(acc, True, fmt.account_update(acc, [(pos, mark)], now))

    # views

    def positions(self, acc: Account) -> list[tuple[Position, MarketState]]:
        return [(p, self.futures[s]) for s, p in acc.positions.items() if p.amount != 0]


def _window(rows: list, params: Mapping[str, str], time_of: Callable, id_of: Callable,
            id_param: str) -> list:
    """Binance's paging: from an id or a start time forwards, else the newest `limit`."""
    start, end, from_id = params.get("startTime"), params.get("endTime"), params.get(id_param)
    if from_id and from_id.isdigit():
        rows = [r for r in rows if id_of(r) >= int(from_id)]
    if start and start.isdigit():
        rows = [r for r in rows if time_of(r) >= int(start)]
    if end and end.isdigit():
        rows = [r for r in rows if time_of(r) <= int(end)]
    limit = int(params["limit"]) if (params.get("limit") or "").isdigit() else 500
    return rows[:limit] if (start or from_id) else rows[-limit:]


def _worse(spec: MarketSpec, buy: bool, price: Decimal, bps: float) -> Decimal:
    """`price` moved `bps` basis points against a taker, onto the price tick."""
    moved = price * (1 + Decimal(str(bps)) / 10_000 * (1 if buy else -1))
    steps = (moved / spec.tick).to_integral_value(ROUND_UP if buy else ROUND_DOWN)
    return max(steps * spec.tick, spec.tick)
