"""The gate every new order passes before a mode may execute it.

market rules (steps, limits) -> funds -> risk rules (trading state, throttle, sizes).
A market-rule or funds refusal is an `order_error` event (`on_order_error`); a risk
refusal is a `risk_denied` event (`on_risk`). An order refused here never reaches the
mode's executor. The gate always runs; with no risk rule configured and trading
ACTIVE, the risk step costs one comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ..core.accounting import funds_error
from ..core.instances import AssetInstance
from ..core.orders import Order, OrderType
from ..core.risk import (Denial, TradingState, increases, order_denial, state_denial,
                         throttle_denial)
from .requests import LimitOrder, MarketOrder

if TYPE_CHECKING:  # the engine calls the gate: imported for the annotations only
    from .engine import Engine

_ACTIVE = TradingState.ACTIVE
_LIMIT = OrderType.LIMIT


def new_order(ai: AssetInstance, req: MarketOrder | LimitOrder, price: float, now: int) -> Order:
    """The one constructor of a strategy's new Order, in every mode. `price` is the limit,
    or for a market order the price it is checked at. Its id is given once it passes."""
    return Order("", ai.symbol, req.side, req.type, req.amount, price, now, req.tif, req.pos,
                 req.reduce_only, ai.leverage if ai.market.is_derivative else 1.0)


def admit(e: Engine, ai: AssetInstance, order: Order, request: Any, by_risk: bool = False,
          exits: bool = False, moves: bool = False) -> bool:
    """Run the gate; True when `order` may go to the executor, else the refusal is reported.

    `by_risk` marks the risk engine's own close-out on a halt: it passes the trading state
    and the throttle, never the market rules or the funds check. `exits` marks a bracket's
    exits: those that reduce protect what an entry the gate admitted filled, so they pass
    the trading state (HALTED too) and the throttle, never the market rules or the funds
    check. `moves` marks a stop's replacement (amend_stop): the stop it replaces is
    cancelled once it is placed, so it adds no open order.
    """
    m = ai.market
    adds = increases(ai, order)  # for the funds and the risk rules
    reason = m.check_limit_price(order.price) if order.type is _LIMIT else None
    reason = reason or m.check_order(order.amount, order.price, order.reduce_only) or \
        funds_error(e.state, ai, order, adds)
    if reason is not None:
        e.reject(ai, reason, request.payload())
        return False
    risk = e.state.risk
    if risk.trading is _ACTIVE and not risk.rules.checks_orders or by_risk:
        return True
    denial = order_denial(e.state, ai, order, not adds, order.date, e.executor.mark, exits,
                          moves)
    if denial is None:
        return True
    deny(e, ai, denial, request.payload())
    return False


def may_reduce(e: Engine, ai: AssetInstance, request: Any) -> bool:
    """Whether an order that only reduces the exposure would pass the trading state and
    the throttle now (the risk rules it meets); a refusal is reported. close_position
    asks before it cancels anything, so that a close the gate would deny leaves the open
    orders (a stop-loss) as they were."""
    risk = e.state.risk
    denial = state_denial(risk, reduces=True) or throttle_denial(risk, e.clock.now())
    if denial is None:
        return True
    deny(e, ai, denial, request.payload())
    return False


def allowed(e: Engine, ai: AssetInstance | None, request: Any) -> bool:
    """Whether the trading state lets an action that is not an order (a leverage change)
    go: not while trading is halted. A refusal is reported."""
    denial = state_denial(e.state.risk, reduces=False) \
        if e.state.risk.trading is TradingState.HALTED else None
    if denial is None:
        return True
    deny(e, ai, denial, request.payload())
    return False


def deny(e: Engine, ai: AssetInstance | None, denial: Denial, request: Mapping[str, Any]) -> None:
    """Report a risk refusal: a `risk_denied` event, which `on_risk` hears."""
    e.emit("risk_denied", {"rule": denial.rule, "reason": denial.reason,
                           "state": e.state.risk.trading.value, "request": dict(request),
                           "symbol": ai.symbol if ai is not None else None,
                           "ts": e.clock.now()}, ai.symbol if ai is not None else None)
