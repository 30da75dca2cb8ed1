"""`call` in live mode: each action runs on the engine's loop; the caller blocks.

Each handler receives the request `call` parsed (`planarpy.actions.requests`); `HANDLERS`
is the table the live session gives the strategy when it starts.
"""

from __future__ import annotations

from typing import Any, Mapping

import ccxt

from ...actions import Action, Handler, Mode, order_request, pipeline
from ...actions.requests import (CancelOrders, ClosePosition, LimitOrder, MarketOrder,
                                 UpdateLeverage, WatchOHLCV)
from ...core.instances import AssetInstance
from ...core.orders import OrderType, PositionSide, Side, TimeInForce, Trade, missing
from . import orders

LIVE = Mode.LIVE
GRACE = 10.0  # seconds beyond `waitfor` that a blocked call waits for the engine


def _wait(session: Any, waitfor: float | None) -> float:
    return session.waitfor if waitfor is None else waitfor


def _blocking(session: Any, coro: Any, timeout: float, late: Any, what: str) -> Any:
    """Run an action on the engine's loop and wait up to `timeout` for it. Past that the
    action goes on in the background (it is never cut off halfway), on_error hears of
    it, and the call returns `late`: `missing` for an order (it exists locally and is
    open until the exchange says more), False for the others. An exchange error that
    the action let through is told to on_error (credentials removed), never raised: the
    call returns `late` then too."""
    try:
        return session.engine.blocking(coro, timeout)
    except TimeoutError:
        error: Exception = TimeoutError(f"no answer within {timeout:g} s; it goes on in the "
                                        "background")
    except ccxt.BaseError as e:
        error = e
    session.engine.fire(session.report_error(error, where=what))
    return late


def _place(s: Any, ai: AssetInstance, type_: OrderType, amount: float, price: float | None,
           side: Side, pos: PositionSide, tif: TimeInForce, reduce_only: bool,
           waitfor: float | None, synced: bool) -> Trade | Any | None:
    session = s.engine
    limit = type_ is OrderType.LIMIT
    request = order_request(type_.value, ai, amount, price, side, pos, tif, reduce_only)
    ref = price if limit else orders._reference_price(ai)
    order = orders.new_order(session, ai, type_, amount, ref, side, pos, tif, reduce_only)
    reason = orders.precheck(session, ai, order, limit)
    if reason is not None:
        s.reject(ai, reason, request)
        return None
    wait = _wait(session, waitfor)
    coro = orders.send(session, ai, order, request, wait, synced)
    if wait <= 0 and not synced:  # fire and forget
        session.engine.fire(coro)
        return missing
    return _blocking(session, coro, wait + GRACE, missing, f"{type_.value}_order")


def market_order(s: Any, req: MarketOrder) -> Trade | Any | None:
    """Send a market order; a Trade once a fill is seen, missing, or None if refused."""
    return _place(s, req.ai, OrderType.MARKET, req.amount, None, req.side, req.pos,
                  TimeInForce.IOC, req.reduce_only, req.waitfor, req.synced)


def limit_order(s: Any, req: LimitOrder) -> Trade | Any | None:
    """Send a limit order (GTC, IOC, FOK or post-only)."""
    return _place(s, req.ai, OrderType.LIMIT, req.amount, req.price, req.side, req.pos, req.tif,
                  req.reduce_only, req.waitfor, req.synced)


def cancel_orders(s: Any, req: CancelOrders) -> bool:
    """Cancel open orders on the exchange (one asset or all, one side or both, or by id)."""
    session = s.engine
    wait = _wait(session, req.waitfor)
    ids = list(req.ids) if req.ids is not None else None

    async def run() -> bool:
        ok = True
        for a in (s.assets if req.ai is None else [req.ai]):
            ok = await orders.cancel(session, a, req.side, ids, waitfor=wait,
                                     confirm=req.confirm or req.synced) and ok
        return ok
    return bool(_blocking(session, run(), wait + GRACE, False, "cancel_orders"))


def update_leverage(s: Any, req: UpdateLeverage) -> bool:
    """Set the leverage on the exchange, then locally."""
    session = s.engine
    return bool(_blocking(session, orders.set_leverage(session, req.ai, req.leverage),
                          session.waitfor + GRACE, False, "update_leverage"))


def close_position(s: Any, req: ClosePosition) -> bool:
    """Cancel the asset's orders, then close its position with a reduce-only market order."""
    session = s.engine

    async def run() -> bool:
        ok = True
        for a in (s.assets if req.ai is None else [req.ai]):
            ok = await orders.close_position(session, a, req.pos) and ok
        return ok
    return bool(_blocking(session, run(), 2 * session.waitfor + GRACE, False, "close_position"))


def watch_ohlcv(s: Any, req: WatchOHLCV) -> bool:
    """Fetch the candles closed since the last refresh now (the tick loop does at every
    close; the candles are ticked by the loop, not here)."""
    session = s.engine
    done = _blocking(session, session.refresh_candles(), session.waitfor + GRACE, False,
                     "watch_ohlcv")
    return done is not False  # refresh_candles answers None when it is done


HANDLERS: Mapping[Action, Handler] = {
    Action.MARKET_ORDER: market_order,
    Action.LIMIT_ORDER: limit_order,
    Action.CANCEL_ORDERS: cancel_orders,
    Action.UPDATE_LEVERAGE: update_leverage,
    Action.CLOSE_POSITION: close_position,
    Action.WATCH_OHLCV: watch_ohlcv,
    Action.RESET_TRADING_STATE: pipeline.reset_trading_state,
}
