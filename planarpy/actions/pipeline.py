"""One path for every action, in every mode that has an Executor.

    call -> request (parsed once) -> Order (gate.new_order) -> gate -> executor -> events

The flows below are mode-independent: what differs between modes is the `Executor` the
mode attaches to the strategy's engine when its run starts (`Engine.executor`), which
prices, places and cancels, and reports every state change as an event through
`Engine.emit`. `HANDLERS` is the dispatch table every mode uses. The breakers' trips (`trip`), the
reset and `close_position` are written here once, so they mean the same in every mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Protocol, Sequence, runtime_checkable

from ..core.accounting import leverage_error
from ..core.instances import AssetInstance
from ..core.orders import Order, PositionSide, Side, Trade, _Missing
from ..core.risk import (Breach, TradingState, cancel_targets, equity, equity_breach,
                         error_breach, observe, spot_position, target)
from . import Action, Handler
from . import contingent
from .gate import admit, allowed, may_reduce, new_order
from .requests import (CancelOrders, ClosePosition, MarketOrder, OrderRequest,
                       ResetTradingState, UpdateLeverage, WatchOHLCV)

if TYPE_CHECKING:  # the engine calls the pipeline: imported for the annotations only
    from .engine import Engine

OrderResult = Trade | _Missing | None


@runtime_checkable
class Executor(Protocol):
    """A mode's side of the pipeline: what it does with requests that passed the gate.

    Every state change it makes is an event emitted through the engine (`Engine.emit`),
    so the trace and replay see it. Ordinary failures are reported with `Engine.reject` and
    answered with None (orders) or False (the rest), never raised.
    """

    def new_id(self) -> str:
        """A fresh id for an order that passed the gate."""

    def order_price(self, ai: AssetInstance, req: OrderRequest) -> float | str:
        """The price a new order is checked at: a limit order's limit, where a market order
        would fill (the sim fills it there), or why there is none. A request the mode
        cannot take at all (a programming error) raises here."""

    def mark(self, ai: AssetInstance) -> float:
        """The price holdings and positions of `ai` are valued at now (risk, equity)."""

    def trigger_price(self, ai: AssetInstance) -> float | str:
        """The price a new conditional order of `ai` is checked and armed against: where
        the market that fires it trades now (a stop it has passed is refused, a trailing
        stop trails from it), or why that is not known."""

    def place(self, ai: AssetInstance, order: Order, req: OrderRequest) -> OrderResult:
        """Execute an order that passed the gate: a Trade, `missing` or None."""

    def cancel(self, ai: AssetInstance, orders: Sequence[Order], req: CancelOrders) -> bool:
        """Cancel these open orders of `ai` (`req`: how long to wait, whether to confirm);
        True when all of them are closed."""

    def settle(self, ai: AssetInstance, order: Order, then: Callable[[], None]) -> None:
        """Settle an order whose submit outcome is unknown (live only: a sim or paper order
        never is), waiting up to the run's `waitfor`; if it is still unknown then, `then`
        runs once it is settled."""

    def set_leverage(self, ai: AssetInstance, req: UpdateLeverage) -> bool:
        """Set the leverage of `ai` (checked already)."""

    def watch_ohlcv(self, req: WatchOHLCV) -> bool:
        """Start or refresh live candles (nothing to do in a backtest)."""

    def own_trades(self, ai: AssetInstance) -> Sequence[Trade]:
        """The trades of `ai` that are the strategy's own, what `close_position` sells on
        spot: its fills in this run and in the earlier runs it resumes (live: a restart on
        their trace), not the exchange's history of orders the run does not know."""

    def on_trading_state(self, state: TradingState) -> None:
        """The trading state changed (a breaker, a reset): a monitor of the loss breakers
        re-reads the risk state."""

    def soon(self, fn: Callable[[], None], order: Order | None = None) -> None:
        """Run `fn`, strategy-side code that may act (cancel, place), now if the caller may
        wait for actions, else as soon as the mode can: a breaker tripped by an event the
        engine applied on its own loop (live: an order refused) acts right after it; what
        an event of `order` set off, before the call waiting for that order returns."""


# ---- orders ------------------------------------------------------------------------------
def place_order(e: Engine, req: OrderRequest, by_risk: bool = False) -> OrderResult:
    """A market or limit order: priced by the executor, built, gated, executed."""
    ex: Executor = e.executor
    ai = req.ai
    price = ex.order_price(ai, req)
    if price.__class__ is str:
        e.reject(ai, price, req.payload())
        return None
    order = new_order(ai, req, price, e.clock.now())
    if not admit(e, ai, order, req, by_risk):
        return None
    order.id = ex.new_id()
    return ex.place(ai, order, req)


def _assets(e: Engine, ai: AssetInstance | None) -> list[AssetInstance]:
    return e.assets if ai is None else [ai]


def cancel_orders(e: Engine, req: CancelOrders) -> bool:
    """Cancel the open orders of one asset (or all) on one side or both, or those in `ids`.
    An id that is not open is an error (False), the others are cancelled all the same."""
    want, ids = req.side, req.ids
    found: set[str] = set()
    ok = True
    for ai in _assets(e, req.ai):
        orders = [o for o in ai.orders.values()
                  if (want is None or o.side is want) and (ids is None or o.id in ids)]
        if orders:
            found.update(o.id for o in orders)
            ok = e.executor.cancel(ai, orders, req) and ok
    unknown = sorted(set(ids) - found) if ids is not None else ()
    if unknown:
        e.reject(req.ai, f"no open order with id {', '.join(unknown)}", req.payload())
        return False
    return ok


def update_leverage(e: Engine, req: UpdateLeverage) -> bool:
    ai = req.ai
    reason = leverage_error(ai, req.leverage)
    if reason is not None:
        e.reject(ai, reason, req.payload())
        return False
    return allowed(e, ai, req) and e.executor.set_leverage(ai, req)


def watch_ohlcv(e: Engine, req: WatchOHLCV) -> bool:
    return e.executor.watch_ohlcv(req)


# ---- close_position: one meaning in every mode ---------------------------------------------
def close_position(e: Engine, req: ClosePosition, by_risk: bool = False) -> bool:
    """Bring an asset (or every asset) back to flat, and leave no order that could undo it.

    Every open order of the asset is cancelled (both sides), then what it holds is closed
    with one market order: on margin the open position (reduce-only; with `pos`, only a
    position on that side, else nothing is done), on spot the base the strategy's own
    fills bought and still hold (`core.risk.spot_position`: never coins it held before
    its run, or the runs it resumes). True when nothing is left to close afterwards; dust below the market's
    minimum order stays on spot. In live mode the closing order is waited for (its
    `waitfor`, then it is looked up): False while it is still working (a call again
    waits for it first, and never sends a second one while its outcome is unknown).
    A close the trading state (halted) or the order throttle would deny is denied before
    anything is cancelled: False, and the orders (a stop-loss) stay.
    """
    ok = True
    for ai in _assets(e, req.ai):
        ok = _close(e, ai, req.pos, by_risk) and ok
    return ok


def _close(e: Engine, ai: AssetInstance, pos: PositionSide | None, by_risk: bool,
           waitfor: float | None = None) -> bool:
    p = ai.open_position()
    if pos is not None and ai.market.is_derivative and (p is None or p.side is not pos):
        return True  # nothing open on that side
    request = closing_order(e, ai)
    if request is not None and not by_risk and not may_reduce(e, ai, request):
        return False  # the close would be denied: its cancels would only undo protection
    if ai.orders and not e.executor.cancel(ai, list(ai.orders.values()),
                                           CancelOrders(ai, waitfor=waitfor)):
        return False
    request = closing_order(e, ai)
    if request is None:
        return True
    place_order(e, request, by_risk)
    return closing_order(e, ai) is None


def closing_order(e: Engine, ai: AssetInstance) -> MarketOrder | None:
    """The market order that closes what `ai` holds, or None when it is flat."""
    p = ai.open_position()
    if p is not None:
        side = Side.SELL if p.side is PositionSide.LONG else Side.BUY
        return MarketOrder(ai, p.amount, side, p.side, True)
    if ai.market.is_derivative:
        return None
    amount = spot_position(ai, e.executor.own_trades(ai))
    if amount < max(ai.market.min_amount, ai.market.amount_step):
        return None  # dust below the market's minimum cannot be sold
    request = MarketOrder(ai, amount, Side.SELL)
    price = e.executor.order_price(ai, request)
    if price.__class__ is not str and ai.market.is_dust(amount, price):
        return None  # worth less than the market's minimum cost: dust too
    return request


# ---- breakers and the trading state ----------------------------------------------------------
# seconds the kill switch waits for an order in flight to become known before it answers
# (live: an order of unknown outcome is cancelled later, once the exchange knows it)
KILL_WAIT = 0.5


def trip(e: Engine, breach: Breach, cancel: bool | None = None, close: bool | None = None,
         waitfor: float | None = None) -> None:
    """Move the trading state as `breach` asks (never back from HALTED) and carry out the
    move: reducing cancels the orders that add exposure; halting cancels the open orders
    and closes every position, as the rules say (`halt_cancels_orders`,
    `halt_closes_positions`; `cancel` and `close` override them, and with `cancel` the
    orders are cancelled even when trading was halted already: the kill switch; a close
    that cannot finish now is tried again, `close_again`). A
    breaker's halt that keeps the positions cancels only the orders that add exposure:
    the stop-losses of what it keeps stay, as the gate would deny putting them back; the
    kill switch (`cancel`) and a close cancel every order. The cancels wait `waitfor`
    (default: the run's) for orders still in flight. A halt that closes says so in its
    event (`close`), and so does a kill switch that closes a run halted already: a
    restart goes on closing what the halt was to close (`runtime.carry`)."""
    risk, rules = e.state.risk, e.state.risk.rules
    to = target(risk.trading, breach)
    halted = (to or risk.trading) is TradingState.HALTED
    close = halted and (rules.halt_closes_positions if close is None else close)
    if to is not None or cancel and close:
        change = {"state": (to or risk.trading).value, "previous": risk.trading.value,
                  "rule": breach.rule, "reason": breach.reason, "ts": e.clock.now()}
        if close:
            change["close"] = True
        e.emit("trading_state_changed", change)
        if to is not None:
            e.executor.on_trading_state(to)
    elif not cancel:
        return
    every = halted and (cancel is not None or close)
    if cancel is None:
        cancel = not halted or rules.halt_cancels_orders
    if cancel or close:
        e.executor.soon(lambda: _enforce(e, every, cancel, close, waitfor))


def _enforce(e: Engine, every: bool, cancel: bool, close: bool,
             waitfor: float | None) -> None:
    cancelled = True
    if cancel:
        for ai in e.assets:
            orders = cancel_targets(ai, every)
            if orders:
                cancelled = e.executor.cancel(ai, orders, CancelOrders(ai, waitfor=waitfor,
                                                                        retry=True)) and cancelled
    if close:
        e.close_due = True
        if cancelled:  # else the close, which cancels first, would wait for them again
            close_again(e, waitfor)


def close_again(e: Engine, waitfor: float | None = 0.0) -> None:
    """The close a halt asked for, while it is not done (`e.close_due`): an order it must
    cancel first had an unknown outcome or its cancel was refused, or the closing order
    is still working. The mode calls this again (paper and live: every second) until the
    close is done or trading is no longer halted (a reset); the cancels wait `waitfor`
    for orders in flight (the halt's own cancels are sent again until they are taken).
    A close that is done is recorded (halted -> halted, without `close`), in every mode:
    a restart reads it, and a backtest shows it as live would."""
    if e.state.risk.trading is not TradingState.HALTED:
        e.close_due = False
        return
    ok = True
    for ai in e.assets:
        ok = _close(e, ai, None, True, waitfor) and ok
    e.close_due = not ok
    if ok:  # a restart leaves what is held then (opened by hand since) as it is
        halt = e.state.risk.changes[-1]
        e.emit("trading_state_changed", {
            "state": TradingState.HALTED.value, "previous": TradingState.HALTED.value,
            "rule": halt.get("rule"), "reason": f"{halt.get('reason')} (its close is done)",
            "ts": e.clock.now()})


def halt(e: Engine, reason: str, close: bool | None = None) -> None:
    """The kill switch: trading HALTED (a `trading_state_changed` event, rule
    "kill_switch"), every open order cancelled, and the positions closed if `close`
    (default: the rules' `halt_closes_positions`). Leaving it takes a reset. It waits
    `KILL_WAIT` at most for an order in flight: one whose outcome is unknown is cancelled
    as soon as the exchange knows it, and stays open here until then; a close waits for
    its cancels, and goes once they are done (`close_again`)."""
    trip(e, Breach("kill_switch", reason, TradingState.HALTED), cancel=True, close=close,
         waitfor=KILL_WAIT)


def watch_errors(e: Engine) -> None:
    """After an order error: trip the error-rate breaker if it is due."""
    breach = error_breach(e.state.risk, e.clock.now())
    if breach is not None and e.executor is not None:
        trip(e, breach)


def watch_equity(e: Engine, value: float, now: int, before: float | None = None) -> None:
    """Measure the equity at `now` (see core.risk.observe: a new day or a new peak is a
    `risk_measured` event) and trip a loss breaker if due."""
    risk = e.state.risk
    measured = observe(risk, value, now, before)
    if measured is not None:
        e.emit("risk_measured", measured)
    breach = equity_breach(risk, value)
    if breach is not None:
        trip(e, breach)


def reset_trading_state(e: Engine, req: ResetTradingState) -> bool:
    """Back to ACTIVE. The loss breakers measure from the equity now (the reset event
    carries it), and the order errors counted so far are forgiven."""
    risk = e.state.risk
    if risk.trading is TradingState.ACTIVE:
        return True
    value = equity(e.state, e.executor.mark)
    e.emit("trading_state_changed", {"state": TradingState.ACTIVE.value,
                                     "previous": risk.trading.value, "rule": "reset",
                                     "reason": req.reason or "reset by the strategy",
                                     "ts": e.clock.now(), "equity": value})
    e.executor.on_trading_state(TradingState.ACTIVE)
    return True


HANDLERS: Mapping[Action, Handler] = {
    Action.MARKET_ORDER: place_order,
    Action.LIMIT_ORDER: place_order,
    Action.CANCEL_ORDERS: cancel_orders,
    Action.UPDATE_LEVERAGE: update_leverage,
    Action.CLOSE_POSITION: close_position,
    Action.WATCH_OHLCV: watch_ohlcv,
    Action.RESET_TRADING_STATE: reset_trading_state,
    **contingent.HANDLERS,
}
