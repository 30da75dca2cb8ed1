"""The flows of conditional orders, written once for every mode.

    call -> request (conditional.py) -> Order (gate.new_order) -> gate -> executor -> events

A stop, take-profit or trailing stop is one Order of a conditional type that the mode's
executor rests (sim and paper trigger it from candles and trades, live natively or by
emulation). An OCO pair is two orders of one group that share one commitment; the first
fill (or trigger) of one cancels the other (`settle_group`); both legs are placed or
neither (`_submit_pair`). A bracket is an entry that keeps its exits (`Order.legs`) and
places them as an OCO pair for each part it fills that reaches the market's minimum,
and for the rest once it is done (`release_legs`). Amending a stop places the
replacement in the old stop's group first and cancels the old one after, once the
replacement is known to be placed (live: one whose submit got no answer is settled by
its client id first), so a position is never without one.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..core.instances import AssetInstance
from ..core.orders import (CONDITIONAL, Order, OrderStatus, OrderType, PositionSide, Side,
                           TimeInForce, Trade, _Missing, missing)
from ..core.precision import floor_to_step
from ..core.triggers import immediate_error, marketable, trailing_trigger
from . import Action, Handler
from .conditional import AmendStop, BracketOrder, OcoOrder, StopOrder, TrailingStop
from .gate import admit, new_order
from .requests import CancelOrders, LimitOrder, MarketOrder

OrderResult = Trade | _Missing | None


def _prices_error(ai: AssetInstance, *prices: float | None) -> str | None:
    check = ai.market.check_limit_price
    for p in prices:
        reason = None if p is None else check(p)
        if reason is not None:
            return reason
    return None


def _submit(s: Any, ai: AssetInstance, order: Order, req: Any, exits: bool = False,
            moves: bool = False) -> OrderResult:
    """Gate one order, give it an id (and a conditional one its own group unless it has
    one) and place it. (`exits`: a bracket's exits, which pass in any trading state;
    `moves`: a stop's replacement, see `gate.admit`.)"""
    if not admit(s, ai, order, req, exits=exits, moves=moves):
        return None
    order.id = s.executor.new_id()
    if order.type in CONDITIONAL:
        order.group = order.group or order.id
    return s.executor.place(ai, order, req)


def _submit_pair(s: Any, ai: AssetInstance, pair: Sequence[tuple[Order, Any]], whole: Any,
                 keep: bool) -> OrderResult:
    """Place the legs of an OCO pair in turn, in one group (the first leg's id): `missing`,
    or None when a leg cannot be placed.

    Both are gated before anything is placed; the second again at its turn, since the
    first now counts (the throttle, open orders) and holds the group's funds. A fill of
    the first leg before the second is placed cancels the second, as any fill of a leg
    does: it is not placed. When the second leg cannot be placed, the first is cancelled
    (`keep`: a bracket's exits keep it, as what protection could be placed; they pass
    the trading state, see `gate.admit`), and the
    strategy is told which leg failed and what became of the other. A bracket's first
    exit that cannot be placed still lets the other be placed, alone."""
    if not all(admit(s, ai, order, req, exits=keep) for order, req in pair):
        return None
    ex = s.executor
    (first, first_req), (second, second_req) = pair
    first.id = first.group = ex.new_id()  # the pair is named after its first leg
    if ex.place(ai, first, first_req) is None:
        return _alone(s, ai, first, second, second_req) if keep else None
    if first.filled > 0:
        return missing  # that fill cancels the other leg: there is nothing to place
    second.group = first.group  # it may use what the first leg holds
    if admit(s, ai, second, second_req, exits=keep):
        second.id = ex.new_id()
        if ex.place(ai, second, second_req) is not None:
            return missing
    return _unpaired(s, ai, first, second, whole, keep)


def _leg(order: Order) -> str:
    return "stop" if order.type in CONDITIONAL else "limit"


def _alone(s: Any, ai: AssetInstance, failed: Order, other: Order, req: Any) -> OrderResult:
    """A bracket's first exit could not be placed (the refusal is reported already): the
    other is placed alone, as what protection can be (a leg of no pair: live may hold a
    stop on the exchange), and the strategy told. What a pair's report tells follows a
    refusal reported already (an order error counted, or a risk denial, which is no
    error): the error-rate breaker does not count it again (`counted`)."""
    other.pair = ""
    result = _submit(s, ai, other, req, exits=True)
    if result is not None:
        s.reject(ai, f"bracket_order: its exits: the {_leg(failed)} leg could not be placed; "
                     f"the {_leg(other)} leg {other.id} stays, alone", req.payload(),
                 counted=True)
    return result


def _unpaired(s: Any, ai: AssetInstance, placed: Order, failed: Order, whole: Any,
              keep: bool) -> OrderResult:
    """The second leg of a pair could not be placed (the refusal is reported already):
    cancel the leg that was (unless `keep`) and say so. None only when nothing happened:
    a leg that filled (before its cancel took) answers `missing`, its fills reported."""
    what = "bracket_order: its exits" if keep else "oco_order"
    why = f"{what}: the {_leg(failed)} leg could not be placed; the {_leg(placed)} leg " \
          f"{placed.id} "
    if keep:
        s.reject(ai, why + "stays, alone", whole.payload(), counted=True)
        return missing
    if placed.is_open and not s.executor.cancel(ai, [placed], CancelOrders(
            ai, ids=(placed.id,), confirm=True)) and placed.is_open:
        why += "was to be cancelled, but its cancel was not confirmed: it may be open"
        s.reject(ai, why, whole.payload(), counted=True)
        return missing  # not known to be gone: "not placed" would be a guess
    elif placed.status is OrderStatus.CLOSED:
        why += f"filled {placed.filled:g} before it could be cancelled"
    else:
        why += "was cancelled" + (
            f" after it filled {placed.filled:g}" if placed.filled > 0 else "")
    s.reject(ai, why, whole.payload(), counted=True)
    return missing if placed.filled > 0 else None


def stop_order(s: Any, ai: AssetInstance, req: StopOrder,
               now: float | str | None) -> Order | str:
    """The Order of a stop or take-profit, or why it cannot be placed. With the price `now`
    (`executor.trigger_price`: a str says why it is not known) it is refused when that
    price would fire it at once."""
    if now.__class__ is str:
        return now  # type: ignore[return-value]
    reason = _prices_error(ai, req.trigger, req.limit)
    if reason is None and now is not None:
        reason = immediate_error(req.type, req.side, req.trigger, now)  # type: ignore[arg-type]
    if reason is not None:
        return reason
    order = new_order(ai, req, req.price, s.clock.now())  # type: ignore[arg-type]
    order.trigger, order.group, order.pair = req.trigger, req.group, req.pair
    return order


def place_stop(s: Any, req: StopOrder) -> OrderResult:
    """A stop or take-profit order (market or limit once triggered)."""
    ai = req.ai
    order = stop_order(s, ai, req, s.executor.trigger_price(ai))
    if order.__class__ is str:
        s.reject(ai, order, req.payload())
        return None
    return _submit(s, ai, order, req)  # type: ignore[arg-type]


def place_trailing(s: Any, req: TrailingStop) -> OrderResult:
    """A trailing stop, armed at once (from the price now) or once `activation` is reached."""
    ai = req.ai
    now = s.executor.trigger_price(ai)
    if now.__class__ is str:
        s.reject(ai, now, req.payload())
        return None
    reason = _prices_error(ai, req.activation) or (
        immediate_error(OrderType.TAKE_PROFIT_MARKET, req.side, req.activation, now)
        if req.activation is not None else _offset_error(req, now))  # type: ignore[arg-type]
    if reason is not None:
        s.reject(ai, reason.replace("take-profit", "trailing stop activation"), req.payload())
        return None
    order = new_order(ai, req, now, s.clock.now())  # type: ignore[arg-type]
    order.trail, order.trail_pct = req.trail, req.percent is not None
    if req.activation is None:
        order.trigger = order.price = trailing_trigger(order, now, ai.market.price_step)
    else:
        # a buy trails the lows up from where it is armed: it may fire as high as its stop
        # from the activation, and it is checked and funded there (a sell's stop starts
        # below its activation and follows the highs: it has no highest price)
        order.activation = req.activation
        order.price = trailing_trigger(order, req.activation, ai.market.price_step) \
            if req.side is Side.BUY else req.activation
    return _submit(s, ai, order, req)


def _offset_error(req: TrailingStop, now: float) -> str | None:
    """Why a sell trailing stop armed now cannot trail at its offset: its stop would start
    at or below 0 (the parser checks an offset against an activation)."""
    if req.side is Side.SELL and req.offset is not None and req.offset >= now:
        return (f"trailing_stop_order: a sell's offset {req.offset:g} must be below the price "
                f"{now:g} it is armed at: its stop would start at or below 0")
    return None


def _oco_orders(s: Any, req: OcoOrder, entry: str) -> list[tuple[Order, Any]] | str:
    ai = req.ai
    check_now = not entry
    # an OCO answers `missing`: its limit leg never waits for a fill before the stop leg
    # is placed (in live, the position would be without its stop meanwhile)
    limit = LimitOrder(ai, req.amount, req.price, req.side, pos=req.pos,
                       reduce_only=req.reduce_only, waitfor=0.0)
    kind = "oco" if check_now else "exits"
    stop = StopOrder(ai, req.amount, req.stop, req.side, req.stop_limit, "stop", req.pos,
                     req.reduce_only, pair=kind)
    now = s.executor.trigger_price(ai) if check_now else None
    if now.__class__ is str:
        return now  # type: ignore[return-value]
    reason = _prices_error(ai, req.price) or (
        None if now is None else _marketable_error(req, now))  # type: ignore[arg-type]
    stop_o = stop_order(s, ai, stop, now)
    if reason is not None or stop_o.__class__ is str:
        return reason or stop_o  # type: ignore[return-value]
    limit_o = new_order(ai, limit, req.price, s.clock.now())
    limit_o.pair = kind
    limit_o.entry = stop_o.entry = entry  # type: ignore[union-attr]
    pair = [(limit_o, limit), (stop_o, stop)]
    # the leg that needs more (a buy's higher price) is placed first: it holds for both
    return pair if req.side is Side.SELL or req.price >= stop.price else pair[::-1]


def _marketable_error(req: OcoOrder, mark: float) -> str | None:
    """Why the OCO's limit leg would fill at once at the price now `mark` (a taker, not
    the exit it is meant to be), or None: refused, as Binance refuses such an OCO."""
    if not marketable(req.side, req.price, mark):
        return None
    buy = req.side is Side.BUY
    return (f"oco_order: the {req.side.value} limit at {req.price:g} would fill at once: the "
            f"price {mark:g} is at or {'below' if buy else 'above'} it")


def place_oco(s: Any, req: OcoOrder, entry: str = "") -> OrderResult:
    """Two exits (a limit and a stop) of which the first to fill cancels the other. Both
    are placed or neither (see `_submit_pair`); a bracket's exits (`entry`: the id of the
    entry they are for) keep the leg placed when the other cannot be."""
    orders = _oco_orders(s, req, entry)
    if orders.__class__ is str:
        s.reject(req.ai, orders, req.payload())
        return None
    return _submit_pair(s, req.ai, orders, req, keep=bool(entry))  # type: ignore[arg-type]


def place_bracket(s: Any, req: BracketOrder) -> OrderResult:
    """An entry whose exits are placed as it fills (see `release_legs`)."""
    ai, ex = req.ai, s.executor
    entry: MarketOrder | LimitOrder = (
        MarketOrder(ai, req.amount, req.side, req.pos) if req.price is None else
        LimitOrder(ai, req.amount, req.price, req.side, req.tif, req.pos))
    price = ex.order_price(ai, entry)
    reason = price if price.__class__ is str else \
        _prices_error(ai, req.stop_loss, req.take_profit, req.stop_limit) or \
        _legs_error(req, price)
    if reason is not None:
        s.reject(ai, reason, req.payload())
        return None
    order = new_order(ai, entry, price, s.clock.now())
    # `named`: its exits name it (Order.entry), so that a restart can count them; an
    # entry of an older trace has no such key, and a restart leaves its exits alone
    order.legs = {**req.legs(), "named": True}
    return _submit(s, ai, order, entry)


def _legs_error(req: BracketOrder, price: float) -> str | None:
    buy = req.side is Side.BUY
    for name, p, below in (("stop_loss", req.stop_loss, buy), ("take_profit", req.take_profit,
                                                                not buy)):
        if p is not None and ((p >= price) if below else (p <= price)):
            return (f"bracket_order: the {name} {p:g} of a {req.side.value} entry must be "
                    f"{'below' if below else 'above'} the entry price {price:g}")
    return None


def amend_stop(s: Any, req: AmendStop) -> OrderResult:
    """Move a stop: the replacement first (in the old stop's group, so it may use what the
    old one holds; live: in one request where the venue has an atomic cancel-replace),
    then the old stop is cancelled, once the replacement is known to be on the exchange.
    If the replacement is refused or never placed, the old stop stays as it was."""
    ai = req.ai
    old = next((o for o in ai.orders.values() if (o.id == req.id or o.group == req.id)
                and o.is_conditional and o.is_open), None)
    if old is None or old.type is OrderType.TRAILING_STOP:
        s.reject(ai, f"no open stop or take-profit order {req.id!r} to amend" if old is None
                 else "a trailing stop follows the price itself: cancel it and place "
                      "another to change it", req.payload())
        return None
    kind = "take_profit" if old.type in (OrderType.TAKE_PROFIT_MARKET,
                                         OrderType.TAKE_PROFIT_LIMIT) else "stop"
    limit = req.limit if req.limit is not None or old.type not in (
        OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT) else old.price
    new = StopOrder(ai, old.remaining, req.trigger, old.side, limit, kind, old.pos,
                    old.reduce_only, old.group, pair=old.pair)
    ex = s.executor
    order = stop_order(s, ai, new, ex.trigger_price(ai))
    if order.__class__ is str:
        s.reject(ai, order, new.payload())  # type: ignore[arg-type]
        return None
    order.entry = old.entry  # type: ignore[union-attr]
    replaces = getattr(ex, "replaces", None)
    if replaces is not None and replaces(old, order):  # live: the atomic cancel-replace
        if not admit(s, ai, order, new, moves=True):  # type: ignore[arg-type]
            return None
        order.id = ex.new_id()  # type: ignore[union-attr]
        result = ex.replace(ai, old, order, new)
    else:
        result = _submit(s, ai, order, new, moves=True)  # type: ignore[arg-type]
    if result is None:
        return None
    order = ai.orders.get(order.id, order)  # type: ignore[union-attr]
    if order.status is OrderStatus.UNKNOWN:  # live: its submit got no answer
        ex.settle(ai, order, lambda: _settled_later(s, ai, old, order, req))
        if order.status is OrderStatus.UNKNOWN:
            s.reject(ai, f"amend_stop: the outcome of the replacement {order.id} of stop "
                         f"{old.id} is unknown: both may be open; {old.id} is cancelled "
                         f"once {order.id} is found open, and stays if it was never placed",
                     req.payload())
            return result
    if order.status is OrderStatus.NOT_PLACED:
        _never_placed(s, ai, old, order, req)
        return None
    _retire(s, ai, old, req)
    return result


def _never_placed(s: Any, ai: AssetInstance, old: Order, new: Order, req: AmendStop) -> None:
    s.reject(ai, f"amend_stop: the replacement {new.id} of stop {old.id} was never placed; "
                 f"{old.id} stays", req.payload())


def _settled_later(s: Any, ai: AssetInstance, old: Order, new: Order, req: AmendStop) -> None:
    """The replacement of unknown outcome is settled: found, the old stop goes as it would
    have at once; never placed, the old one stays."""
    if new.status is OrderStatus.NOT_PLACED:
        _never_placed(s, ai, old, new, req)
    elif old.is_open or old.filled > 0:
        _retire(s, ai, old, req)


def _retire(s: Any, ai: AssetInstance, old: Order, req: AmendStop) -> None:
    """Cancel the old stop once its replacement is placed, and settle what happened to it
    meanwhile (it fired, or a stop-limit filled in part)."""
    placed = [o for o in ai.orders.values() if o.group == old.group and o is not old
              and o.type in CONDITIONAL]
    if old.is_open and not s.executor.cancel(ai, [old], CancelOrders(ai, ids=(old.id,))) \
            and old.is_open:  # no answer, or refused: it may still be on the exchange
        s.reject(ai, f"amend_stop: the cancel of stop {old.id} was not confirmed; it and its "
                     f"replacement may both be open", req.payload())
    if old.filled >= old.amount * (1 - 1e-9):
        _fired_meanwhile(s, ai, old, placed)
    elif old.filled > 0:  # a stop-limit filled in part, then cancelled: the rest needs a stop
        s.reject(ai, f"amend_stop: stop {old.id} filled {old.filled:g} of {old.amount:g} "
                     "before its cancel; its replacement stays", req.payload())


def _fired_meanwhile(s: Any, ai: AssetInstance, old: Order, new: list[Order]) -> None:
    """The old stop fired and filled before its cancel took (live: the exchange fired it
    while the replacement was placed). It did what the stop was for: the replacement is
    cancelled.
    If the replacement fired too, it went beyond the position it was to close: on a
    derivative what it filled is undone at once by a reduce-only market order. Either
    way the strategy is told (on_order_error)."""
    open_ = [o for o in new if o.is_open]
    if open_:
        s.executor.cancel(ai, open_, CancelOrders(ai, ids=tuple(o.id for o in open_),
                                                  confirm=True))
    filled = sum(o.filled for o in new)
    reason = (f"amend_stop: stop {old.id} fired before its cancel; its replacement "
              f"{', '.join(o.id for o in new)} was cancelled")
    pos = ai.open_position()
    if filled > 0 and ai.market.is_derivative and pos is not None:
        from .pipeline import place_order  # the pipeline imports this module
        side = Side.SELL if pos.side is PositionSide.LONG else Side.BUY
        place_order(s, MarketOrder(ai, min(filled, pos.amount), side, pos.side, True))
        reason += f" after it filled {filled:g} too, undone by a reduce-only market order"
    s.reject(ai, reason, {"type": "amend_stop", "symbol": ai.symbol, "id": old.id})


# ---- what fills and cancels set off (the modes call these) --------------------------------
def settle_group(s: Any, ai: AssetInstance, order: Order) -> None:
    """`order` filled or triggered: cancel the other open orders of its OCO group. An
    emulated leg that fired already is left to live's emulation: it settles the pair
    itself and sends the fired order only for what the pair has left."""
    others = [o for o in _others(ai, order) if not (o.triggered and o.route == "emulated")]
    if others:
        s.executor.cancel(ai, others, CancelOrders(ai, ids=tuple(o.id for o in others)))


def _others(ai: AssetInstance, order: Order) -> list[Order]:
    """The other open orders of `order`'s OCO group."""
    return [o for o in ai.orders.values() if o.group == order.group and o is not order
            and o.is_open]


def _close_held(e: Any, ai: AssetInstance, order: Order) -> None:
    """Cancel at once the legs of `order`'s group that live's engine holds on no exchange
    (emulated, not fired): only local state changes, and no trade may fire one after the
    fill that settles the group (its settle_group waits for the engine's loop)."""
    held = [o for o in _others(ai, order) if o.route == "emulated" and not o.triggered]
    if held:
        e.executor.cancel(ai, held, CancelOrders(ai, ids=tuple(o.id for o in held)))


def release_legs(s: Any, ai: AssetInstance, entry: Order) -> OrderResult:
    """Place a bracket entry's exits, an OCO pair (or the one exit it has) on the other
    side, for what it filled that no exit covers yet (on spot, what it left to sell):
    while a limit entry rests, each time that reaches the market's minimum, so that a
    partly filled entry is protected as it fills; once it is done, for the rest."""
    legs = entry.legs
    if not legs:
        return None
    done = not entry.is_open
    if done:
        entry.legs = None
    amount = _uncovered(ai, entry, legs)
    if amount <= 0 or not done and (not _rests(entry) or
                                    ai.market.check_order(amount, _lowest(legs)) is not None):
        return None
    # covered before the exits are placed: a fill meanwhile must not cover the part again
    # (a restart finds a part the run ended before covering: resume.finish_exits)
    covered = legs.get("covered", 0.0) + amount
    _cover(s, ai, entry, covered)
    result = _place_exits(s, ai, entry, legs, amount)
    if result is None:  # no exit placed: the next part (or the close) retries; the trace
        # says so for a done entry too, so that a restart does not place them again
        _cover(s, ai, entry, (entry.legs or {}).get("covered", covered) - amount)
    return result


def restore_exits(s: Any, ai: AssetInstance, entry: Order, amount: float,
                  recorded: bool = True) -> str:
    """Place the exits that an earlier run recorded as covering `amount` of a bracket
    `entry`'s fills but never placed (it ended between the two; live's restart,
    `resume.finish_exits`), or, not `recorded`, those of a part it filled and ended
    before covering (the cover is recorded first, as `release_legs` does), as
    `release_legs` would have: for no more than the position holds now. What became of
    them, to tell the run; exits that cannot be placed are an order error too (a leg
    refused at its gate or by the exchange is one already)."""
    legs, m = entry.legs or {}, ai.market
    covered = legs.get("covered", 0.0) + (0.0 if recorded else amount)
    if recorded:
        what = (f"bracket_order: the exits of entry {entry.id} for {amount:g} were recorded "
                "but never placed (the run ended between the two)")
    else:
        what = (f"bracket_order: entry {entry.id} filled {amount:g} that no exit covered (the "
                "run ended before covering it)")
        _cover(s, ai, entry, covered)
    held = ai.position(entry.pos).amount if m.is_derivative else \
        ai.free_balance if entry.side is Side.BUY else amount
    size = floor_to_step(min(amount, held), m.amount_step) if held > 0 else 0.0
    reason = "the position they were to close is gone" if size <= 0 else \
        m.check_order(size, _lowest(legs))
    if reason is None:
        if _place_exits(s, ai, entry, legs, size) is not None:
            return f"{what}; placed now for {size:g}" + (
                " (what is left of the position)" if size < amount else "")
        what += "; they could not be placed now: the position has no exits for it"
    else:
        what += f"; they cannot be placed: {reason}"
        s.reject(ai, what, {"type": "bracket_order", "symbol": ai.symbol, "id": entry.id})
    # none placed: the cover is taken back, as release_legs does, so that the next
    # restart does not place them (the run is told now)
    _cover(s, ai, entry, covered - amount)
    return what


def _cover(s: Any, ai: AssetInstance, entry: Order, covered: float) -> None:
    """Record what the entry's exits cover (an event: a restart and a replay carry it)."""
    s.emit("legs_covered", {"id": entry.id, "symbol": ai.symbol, "covered": covered},
           ai.symbol)


def _uncovered(ai: AssetInstance, entry: Order, legs: Mapping[str, Any]) -> float:
    """What the entry filled that no exit covers yet; on a spot buy, no more than it left
    to sell (the fee may be taken in the base), on the amount step."""
    amount = entry.filled - legs.get("covered", 0.0)
    m = ai.market
    if not m.is_derivative and entry.side is Side.BUY:
        amount = min(amount, ai.free_balance)
    return floor_to_step(amount, m.amount_step) if amount > 0 else 0.0


def _rests(entry: Order) -> bool:
    """Whether the entry may rest partly filled (a GTC or post-only limit); a market,
    IOC or FOK entry is done at once: its exits wait for that, as one pair."""
    return entry.type is OrderType.LIMIT and entry.tif not in (TimeInForce.IOC,
                                                               TimeInForce.FOK)


def _lowest(legs: Mapping[str, Any]) -> float:
    return min(p for p in (legs.get("stop_loss"), legs.get("take_profit"),
                           legs.get("stop_limit")) if p is not None)


def _place_exits(s: Any, ai: AssetInstance, entry: Order, legs: Mapping[str, Any],
                 amount: float) -> OrderResult:
    side = Side.SELL if entry.side is Side.BUY else Side.BUY
    ro = ai.market.is_derivative
    sl, tp, sl_limit = legs.get("stop_loss"), legs.get("take_profit"), legs.get("stop_limit")
    if sl is not None and tp is not None:
        return place_oco(s, OcoOrder(ai, amount, tp, sl, side, sl_limit, entry.pos, ro),
                         entry=entry.id)
    if sl is not None:
        req = StopOrder(ai, amount, sl, side, sl_limit, "stop", entry.pos, ro)
        order = stop_order(s, ai, req, None)
        if order.__class__ is str:
            s.reject(ai, order, req.payload())  # type: ignore[arg-type]
            return None
        order.entry = entry.id  # type: ignore[union-attr]
        return _submit(s, ai, order, req, exits=True)  # type: ignore[arg-type]
    limit = LimitOrder(ai, amount, tp, side, pos=entry.pos, reduce_only=ro, waitfor=0.0)
    order = new_order(ai, limit, tp, s.clock.now())
    order.entry = entry.id
    return _submit(s, ai, order, limit, exits=True)


_SETTLES = frozenset({"trade_created", "trade_emulated", "order_triggered"})
_CLOSES = frozenset({"order_closed", "order_cancelled_local"})


def _lone_leg(e: Any, ai: AssetInstance, order: Order) -> None:
    """A leg of a pair turned out never to have been placed (live: its submit had no
    answer, and the exchange never received it), after the other leg was.
    A plain OCO pair is both legs or neither: the other is cancelled (an engine-held stop
    at once, so that no trade fires it meanwhile). A bracket's exits keep the other, as
    what protection there is. The strategy is told either way."""
    others = [o for o in _others(ai, order) if not o.triggered]
    if not others:
        return
    rest = ", ".join(f"the {_leg(o)} leg {o.id}" for o in others)
    why = f"the {_leg(order)} leg {order.id} was never placed"
    what = {"type": "oco" if order.pair == "oco" else "bracket", "symbol": ai.symbol,
            "id": order.id}
    if order.pair == "exits":
        e.executor.soon(lambda: e.reject(ai, f"bracket_order: its exits: {why}; {rest} "
                                             "stays, alone", what, counted=True))
        return
    held = [o for o in others if o.route == "emulated"]
    _close_held(e, ai, order)

    def end() -> None:
        left = [o for o in others if o.is_open and not o.triggered]
        if left and not e.executor.cancel(ai, left, CancelOrders(
                ai, ids=tuple(o.id for o in left), confirm=True)) and \
                any(o.is_open for o in left):
            e.reject(ai, f"oco_order: {why}; {rest} was to be cancelled, but its cancel was "
                         "not confirmed: it may be open", what, counted=True)
        elif held or left:  # else it ended meanwhile (filled, or refused at its submit)
            e.reject(ai, f"oco_order: {why}; {rest} is cancelled: both legs or neither",
                     what, counted=True)
    e.executor.soon(end)


def follow(e: Any, kind: str, order: Order) -> None:
    """What an applied event on an order of an OCO group or on a bracket entry sets off,
    in every mode (`Engine.emit` calls it): a fill or a trigger cancels the rest of the
    group; a bracket entry's fills (and its close) place exits for what it filled. It
    runs through `executor.soon`: at once where the caller may act (sim,
    a strategy's call), else right after the engine's loop is free (a stream's fill);
    an executor whose cancels only change local state (`cancels_at_once`: sim, paper)
    settles the group at once, so that no later price fires the other leg first. An
    emulated order's trigger (live) is left to the emulation, which cancels the pair
    before it sends the order: one canceller, that waits for the cancel's outcome; a
    fill closes the group's emulated legs that have not fired at once (`_close_held`).
    A leg found never placed ends a plain OCO pair (`_lone_leg`)."""
    ai = e.state.assets[order.symbol]
    if kind in _SETTLES:
        if kind == "order_triggered" and order.route == "emulated":
            pass  # live's emulation cancels the pair itself, and must know how that ended
        elif order.group and getattr(e.executor, "cancels_at_once", False):
            settle_group(e, ai, order)  # no other trade may fire a leg meanwhile
        elif order.group:
            _close_held(e, ai, order)
            e.executor.soon(lambda: settle_group(e, ai, order), order)
        if order.legs:  # done: the exits for the rest; resting: for a part big enough
            e.executor.soon(lambda: release_legs(e, ai, order), order)
    elif kind in _CLOSES and order.legs and order.filled > 0:
        e.executor.soon(lambda: release_legs(e, ai, order), order)
    elif kind in _CLOSES and order.pair and order.status is OrderStatus.NOT_PLACED:
        _lone_leg(e, ai, order)


HANDLERS: Mapping[Action, Handler] = {
    Action.STOP_ORDER: place_stop,
    Action.TAKE_PROFIT_ORDER: place_stop,
    Action.TRAILING_STOP_ORDER: place_trailing,
    Action.OCO_ORDER: place_oco,
    Action.BRACKET_ORDER: place_bracket,
    Action.AMEND_STOP: amend_stop,
}
