"""The accounting every mode shares: commit and release cash, apply fills, move positions.

These functions know nothing of modes. The sim applies fills it simulated, live applies
fills the exchange reported, replay applies fills read back from a trace: all through
`add_order`, `apply_fill`, `cancel_order` and `liquidate`.
"""

from __future__ import annotations

import enum
import math

from .instances import AssetInstance, State
from .market import Market
from .orders import (Order, OrderStatus, OrderType, PositionSide, Side, TimeInForce, Trade,
                     new_fill, opens_position)
from .positions import liquidation_price, pnl
from .risk import increases

_EPS = 1e-12
_POST_ONLY = TimeInForce.POST_ONLY
_LIMIT = OrderType.LIMIT
_BUY = Side.BUY
_SELL = Side.SELL
_LONG = PositionSide.LONG
_CLOSED = OrderStatus.CLOSED


class PositionChange(enum.Enum):
    NONE = 0
    OPENED = 1
    UPDATED = 2
    CLOSED = 3


_NO_CHANGE = PositionChange.NONE
_OPENED, _UPDATED = PositionChange.OPENED, PositionChange.UPDATED
_CLOSED_POSITION = PositionChange.CLOSED


def fee_rate(ai: AssetInstance, order: Order) -> float:
    """The fee rate to reserve for an order: taker unless it can only make."""
    m = ai.market
    if order.type is OrderType.LIMIT and order.tif is TimeInForce.POST_ONLY:
        return m.maker
    return max(m.maker, m.taker)


def fee_currency(m: Market, side: Side) -> str:
    """The currency the venue takes a fill's fee in, by the market's `fee_side`: the asset
    received ("get": a Binance spot buy pays in the base), the asset given ("give"), or
    always the quote or the base. Derivatives pay in their settle currency."""
    return m.fee_currencies[side is Side.SELL]


def new_trade(ai: AssetInstance, order: Order, amount: float, price: float, taker: bool,
              date: int) -> Trade:
    """The one constructor of a simulated fill (sim and paper): `amount` of `order` at
    `price`, a taker's or a maker's, its cost, and its fee as the venue charges it (see
    fee_currency: a rate of the amount when taken in the base, of the cost when taken in
    the quote). Its id is the order's and the asset's count of trades: unique in a run."""
    m = ai.market
    cost = amount * price * m.contract_size  # Market.value
    side = order.side
    currency = m.fee_currencies[side is _SELL]  # fee_currency, inlined: a hot path
    rate = m.taker if taker else m.maker
    fee = amount * rate if currency == m.base else cost * rate
    # Trade's fields in order (positional: several times cheaper than by keyword)
    return new_fill(order.id, ai.symbol, side, order.pos, date, amount, price, cost, fee,
                    currency, order.leverage, taker, f"{order.id}-{len(ai.trades)}")


def fee_parts(state: State, m: Market, trade: Trade) -> tuple[float, float, float]:
    """A fill's fee as (taken from the base held, taken from cash, value in the quote).

    A fee in another currency (a venue's fee token, such as BNB) is taken from neither:
    the venue takes it from a balance the strategy does not trade, and it has no value
    in the quote here.
    """
    cur = trade.fee_currency
    if cur == m.base and not m.is_derivative:
        return trade.fee, 0.0, trade.fee * trade.price
    if cur in (state.quote, m.quote, m.settle):
        return 0.0, trade.fee, trade.fee
    return 0.0, 0.0, 0.0


def reduces(ai: AssetInstance, order: Order) -> bool:
    """Whether the order reduces a margin position (or is a spot sell)."""
    return not increases(ai, order)


def required(ai: AssetInstance, order: Order) -> float:
    """What the order must commit: quote for buys and opening orders, base/contracts otherwise."""
    return _required(ai, order, increases(ai, order))


def _required(ai: AssetInstance, order: Order, adds: bool) -> float:
    remaining = order.amount - order.filled
    if not adds:
        return remaining
    m = ai.market
    value = remaining * order.price * m.contract_size
    # fee_rate(ai, order), written out: this runs twice for every order
    rate = m.maker if order.tif is _POST_ONLY and order.type is _LIMIT else \
        (m.maker if m.maker > m.taker else m.taker)
    if m.is_derivative:
        return value / order.leverage + value * rate
    if m.fee_currencies[order.side is _SELL] != m.quote:  # paid out of what it gets
        return value
    return value * (1.0 + rate)


def _shares_with(ai: AssetInstance, order: Order, adds: bool) -> Order | None:
    """The open order of `order`'s OCO group that holds the group's one commitment (of
    quote when `adds`, else of base or contracts)."""
    group = order.group
    for o in ai.orders.values():
        if o.group == group and o is not order and o.committed > 0 and o.commits_quote is adds:
            return o
    return None


def _claim(ai: AssetInstance, order: Order) -> None:
    """Move the commitment of `order`'s group from its holder to `order`, the leg that fills."""
    holder = _shares_with(ai, order, order.commits_quote)
    if holder is not None:
        order.committed, holder.committed = holder.committed, 0.0


def _pass_on(ai: AssetInstance, order: Order) -> None:
    """Move the commitment `order` (being cancelled) holds to a leg of its group that
    stays open."""
    for o in ai.orders.values():
        if o.group == order.group and o is not order and o.is_open and o.committed <= 0 \
                and o.commits_quote is order.commits_quote:
            o.committed, order.committed = order.committed, 0.0
            return


def funds_error(state: State, ai: AssetInstance, order: Order,
                adds: bool | None = None) -> str | None:
    """Why the strategy cannot afford `order` now, or None. The leg of an OCO group (or
    the replacement of a stop) may use what its group already holds. (`adds`: the
    caller's `increases(ai, order)`, if it has it.)"""
    m = ai.market
    if adds is None:
        adds = increases(ai, order)
    need = _required(ai, order, adds)
    if order.group:
        holder = _shares_with(ai, order, adds)
        if holder is not None:
            need = max(0.0, need - holder.committed)
    if m.is_derivative:
        if not adds:
            pos = ai.position(order.pos)
            # a reduce-only order is blocked only by what plain orders hold; a plain one by
            # everything held (beyond the position it would open the other side)
            held = ai.committed if not order.reduce_only or ai.committed <= 0 else \
                _plainly_reducing(ai)
            free = pos.amount - held
            if need > free + _EPS * max(1.0, need):
                by = "an order that is not reduce-only" if order.reduce_only else "another order"
                return (f"{order.side.value} {need:g} reduces the {order.pos.value} position of "
                        f"{ai.symbol} but only {max(free, 0.0):g} is open and not already being "
                        f"reduced by {by}")
            return None
        other = ai.short if order.pos is _LONG else ai.long
        if other.amount > 0:
            return (f"isolated margin is one-way: close the {other.side.value} position of "
                    f"{ai.symbol} before opening a {order.pos.value} one")
        if order.leverage > m.max_leverage:
            return f"leverage {order.leverage:g} is above {ai.symbol}'s maximum {m.max_leverage:g}"
    elif not adds:  # a spot sell
        free = ai.free_balance
        if need > free + _EPS * max(1.0, need):
            return f"not enough {m.base}: need {need:g}, free {max(free, 0.0):g}"
        return None
    free = state.free_cash
    if need > free + _EPS * max(1.0, need):
        return f"not enough cash: need {need:.10g} {state.quote}, free {free:.10g} {state.quote}"
    return None


def _plainly_reducing(ai: AssetInstance) -> float:
    """The contracts held by the open reducing orders of `ai` that are not reduce-only.

    Reduce-only orders hold none against each other: each may close up to the whole
    position (a stop protecting it never blocks a close by hand), since a fill of one
    takes at most what the position still holds (`reducible`), as on the exchange. An
    order that is not reduce-only would open the other side with what it fills beyond
    the position: what it holds is never free for another, and it may use only what no
    other order holds (`funds_error`)."""
    return math.fsum(o.committed for o in ai.orders.values()
                     if not o.commits_quote and not o.reduce_only)


def reducible(ai: AssetInstance, order: Order, amount: float) -> tuple[float, str | None]:
    """How much of `amount` a fill of `order` may take, and why it is cut, or None: a
    reduce-only order on margin takes at most what its position still holds (as the
    exchange cuts it, and expires it when nothing is left); its rest is then cancelled."""
    if not order.reduce_only or not ai.market.is_derivative:
        return amount, None
    held = ai.position(order.pos).amount
    if amount <= held * (1 + 1e-9):
        return amount, None
    return held, (f"reduce-only {order.type.value} {order.id}: the {order.pos.value} position "
                  f"holds only {held:g} of its {amount:g}; the rest is cancelled")


def shortfall(state: State, ai: AssetInstance, order: Order, amount: float,
              price: float) -> str | None:
    """Why a fired conditional order that adds exposure cannot pay for `amount` at `price`
    (it committed funds at its trigger; a gap can make the fill dearer), or None."""
    if not order.commits_quote:
        return None
    probe = Order("", order.symbol, order.side, OrderType.MARKET, amount, price, 0,
                  pos=order.pos, leverage=order.leverage)
    need = _required(ai, probe, True)
    free = state.free_cash + order.committed
    if need > free + _EPS * max(1.0, need):
        return (f"not enough cash: need {need:.10g} {state.quote}, free {free:.10g} "
                f"{state.quote}")
    return None


def add_order(state: State, ai: AssetInstance, order: Order) -> None:
    """Register an accepted order and commit what it needs."""
    adds = increases(ai, order)
    need = _required(ai, order, adds)
    order.commits_quote = adds
    if order.group and _shares_with(ai, order, adds) is not None:
        need = 0.0  # an OCO group commits once: its first leg holds it for all
    order.committed = need
    if adds:
        state.committed += need
    else:
        ai.committed += need
    ai.orders[order.id] = order
    state.active[ai.symbol] = ai
    state.orders_placed += 1


def _release(state: State, ai: AssetInstance, order: Order, amount: float) -> None:
    if amount > order.committed:
        amount = order.committed
    order.committed -= amount
    # subtracting leaves float residue: once near zero, re-add what open orders hold
    # (just this order's rest when it is the only one open, as it mostly is)
    alone = len(ai.orders) == 1 and ai.orders.get(order.id) is order
    tiny = 1e-9 * (amount if amount > 1e-300 else 1e-300)
    if order.commits_quote:
        state.committed -= amount
        if state.committed <= tiny:
            state.committed = order.committed if alone and len(state.active) == 1 else \
                math.fsum(o.committed for a in state.active.values()
                          for o in a.orders.values() if o.commits_quote)
    else:
        ai.committed -= amount
        if ai.committed <= tiny:
            ai.committed = order.committed if alone else \
                math.fsum(o.committed for o in ai.orders.values() if not o.commits_quote)


def settle(state: State, ai: AssetInstance) -> None:
    """Keep `state.active` in step with the asset's open orders and positions."""
    if ai.orders or ai.long.amount > 0 or ai.short.amount > 0:
        state.active[ai.symbol] = ai
    else:
        state.active.pop(ai.symbol, None)


def cancel_order(state: State, ai: AssetInstance, order: Order,
                 status: OrderStatus = OrderStatus.CANCELED) -> None:
    """Close an open order without a further fill and release what it held."""
    if order.is_open:
        order.status = status
    if order.group and order.committed > 0:
        _pass_on(ai, order)
    if order.filled > 0 and order.id in ai.orders:
        state.orders_partial += 1
        if order.commits_quote:  # it opened or added to a position
            state.entries_partial.append(order.filled / order.amount)
    _release(state, ai, order, order.committed)
    ai.orders.pop(order.id, None)
    settle(state, ai)


def apply_fill(state: State, ai: AssetInstance, order: Order, trade: Trade, *,
               in_balance: bool = False, in_position: bool = False) -> PositionChange:
    """Apply one fill of `order`: release its share of the commitment, move cash and holdings.

    `in_balance` / `in_position` (live): a balance or position snapshot taken after the
    fill was applied before it, so the state already shows that part of the fill, which
    must not move it again. A balance shows the cash and a spot asset's holdings (on margin,
    the wallet: the fee and the realized pnl); a position shows its amount, entry and
    margin (and the cash its margin took or freed). The order and the trades move as ever.
    """
    amount = trade.amount
    remaining = order.amount - order.filled
    done = amount >= remaining * (1 - 1e-9)
    if order.group and order.committed <= 0:
        _claim(ai, order)
    if done:  # the whole commitment goes, rounding included
        _release(state, ai, order, order.committed)
    elif order.commits_quote:
        _release(state, ai, order, order.committed * amount / remaining)
    else:
        _release(state, ai, order, amount)
    order.filled += amount
    order.cost += trade.cost
    order.fee += trade.fee
    m = ai.market
    fee_base, fee_cash, fee_value = fee_parts(state, m, trade)
    state.fees += fee_value
    change = _NO_CHANGE
    if m.is_derivative:
        if not in_position:
            change = _fill_position(state, ai, order, trade, 0.0 if in_balance else fee_cash,
                                    realize=not in_balance)
        elif not in_balance:
            _fill_wallet(state, ai, order, trade, fee_cash)
    elif not in_balance:
        if trade.side is _BUY:
            state.cash -= trade.cost + fee_cash
            ai.balance += amount - fee_base
        else:
            ai.balance -= amount + fee_base
            state.cash += trade.cost - fee_cash
    ai.trades.append(trade)
    state.trades.append(trade)
    if done or order.filled >= order.amount * (1 - 1e-9):
        order.status = _CLOSED
        if order.committed:
            _release(state, ai, order, order.committed)
        ai.orders.pop(order.id, None)
    settle(state, ai)
    return change


def _fill_position(state: State, ai: AssetInstance, order: Order, trade: Trade,
                   fee: float, realize: bool = True) -> PositionChange:
    """Move the position by a fill, and the cash by its margin, `fee` and (if `realize`)
    its realized pnl."""
    m = ai.market
    pos = ai.position(trade.pos)
    cs = m.contract_size
    if opens_position(trade.side, trade.pos) and not order.reduce_only:
        was_open = pos.amount > 0
        margin = trade.cost / trade.leverage
        state.cash -= margin + fee
        total = pos.amount + trade.amount
        pos.entry_price = (pos.entry_price * pos.amount + trade.price * trade.amount) / total
        pos.amount = total
        pos.margin += margin
        pos.leverage = trade.leverage
        pos.date = trade.date
        pos.liquidation_price = liquidation_price(
            pos.side, pos.entry_price, total * cs, pos.margin, m.maintenance_margin_rate)
        return _UPDATED if was_open else _OPENED
    qty = min(trade.amount, pos.amount)
    if qty <= 0:
        return _NO_CHANGE
    released = pos.margin * (qty / pos.amount)
    realized = pnl(pos.side, pos.entry_price, trade.price, qty * cs) if realize else 0.0
    state.cash += released + realized - fee
    pos.amount -= qty
    pos.margin -= released
    pos.date = trade.date
    if pos.amount <= m.amount_step * 1e-6:  # float dust left by a full close
        pos.reset()
        return _CLOSED_POSITION
    pos.liquidation_price = liquidation_price(
        pos.side, pos.entry_price, pos.amount * cs, pos.margin, m.maintenance_margin_rate)
    return _UPDATED


def _fill_wallet(state: State, ai: AssetInstance, order: Order, trade: Trade,
                 fee: float) -> None:
    """The wallet part of a margin fill whose position a snapshot already shows: the fee
    and, for a reducing fill, the pnl realized against the entry the position keeps (none
    if the snapshot closed it: the entry is gone)."""
    realized = 0.0
    pos = ai.position(trade.pos)
    if pos.amount > 0 and not (opens_position(trade.side, trade.pos) and not order.reduce_only):
        realized = pnl(pos.side, pos.entry_price, trade.price, trade.amount * ai.market.contract_size)
    state.cash += realized - fee


def liquidation_trade(ai: AssetInstance, side: PositionSide, date: int, order_id: str) -> Trade:
    """The trade that closes a liquidated position at its liquidation price.

    The fee is what margin is left after the loss, so a liquidation costs the whole margin.
    """
    pos = ai.position(side)
    m = ai.market
    price = pos.liquidation_price
    qty = pos.amount
    left = pos.margin + pnl(side, pos.entry_price, price, qty * m.contract_size)
    close_side = Side.SELL if side is PositionSide.LONG else Side.BUY
    return Trade(order_id=order_id, symbol=ai.symbol, side=close_side, pos=side, date=date,
                 amount=qty, price=price, cost=m.value(qty, price), fee=max(0.0, left),
                 fee_currency=m.quote, leverage=pos.leverage, taker=True, id=order_id)


def liquidate(state: State, ai: AssetInstance, trade: Trade) -> PositionChange:
    """Close a position by a liquidation trade and cancel the orders that reduced it."""
    for order in [o for o in ai.orders.values() if not o.commits_quote]:
        cancel_order(state, ai, order)
    order = Order(id=trade.order_id, symbol=ai.symbol, side=trade.side, type=OrderType.MARKET,
                  amount=trade.amount, price=trade.price, date=trade.date, pos=trade.pos,
                  reduce_only=True, leverage=trade.leverage, commits_quote=False)
    return apply_fill(state, ai, order, trade)


def leverage_error(ai: AssetInstance, leverage: float) -> str | None:
    """Why the leverage of `ai` cannot be set to `leverage` now, or None."""
    m = ai.market
    if not m.is_derivative:
        return f"{ai.symbol} is a spot market: it has no leverage"
    if not 1.0 <= leverage <= m.max_leverage:
        return f"leverage {leverage:g} is outside [1, {m.max_leverage:g}] for {ai.symbol}"
    if ai.open_position() is not None and leverage != ai.leverage:
        return f"cannot change the leverage of {ai.symbol} while a position is open"
    return None
