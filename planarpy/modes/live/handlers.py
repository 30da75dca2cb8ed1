"""`call` in live mode: each action runs on the engine's loop; the caller blocks."""

from __future__ import annotations

from typing import Any

import ccxt

from ...actions import (Action, Mode, handles, order_request, order_sides, parse_pos, parse_side,
                        parse_tif)
from ...core.instances import AssetInstance
from ...core.orders import OrderType, PositionSide, Side, TimeInForce, Trade, missing
from . import orders

LIVE = Mode.LIVE
GRACE = 10.0  # seconds beyond `waitfor` that a blocked call waits for the engine


def _wait(session: Any, waitfor: float | None) -> float:
    return session.waitfor if waitfor is None else float(waitfor)


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


@handles(LIVE, Action.MARKET_ORDER)
def market_order(s: Any, ai: AssetInstance | str, amount: float, *, side: Side | str = "buy",
                 pos: PositionSide | str = "long", reduce_only: bool = False,
                 date: int | None = None, waitfor: float | None = None,
                 synced: bool = True) -> Trade | Any | None:
    """Send a market order; a Trade once a fill is seen, missing, or None if refused."""
    ai = s.asset(ai)
    side_, pos_ = order_sides(ai, side, pos)
    return _place(s, ai, OrderType.MARKET, amount, None, side_, pos_, TimeInForce.IOC,
                  reduce_only, waitfor, synced)


@handles(LIVE, Action.LIMIT_ORDER)
def limit_order(s: Any, ai: AssetInstance | str, amount: float, price: float, *,
                side: Side | str = "buy", tif: TimeInForce | str = "GTC",
                pos: PositionSide | str = "long", reduce_only: bool = False,
                date: int | None = None, waitfor: float | None = None,
                synced: bool = True) -> Trade | Any | None:
    """Send a limit order (GTC, IOC, FOK or post-only)."""
    ai = s.asset(ai)
    side_, pos_ = order_sides(ai, side, pos)
    return _place(s, ai, OrderType.LIMIT, amount, price, side_, pos_, parse_tif(tif),
                  reduce_only, waitfor, synced)


@handles(LIVE, Action.CANCEL_ORDERS)
def cancel_orders(s: Any, ai: AssetInstance | str | None = None, side: Side | str = "both", *,
                  ids: list[str] | None = None, waitfor: float | None = None,
                  confirm: bool = False, synced: bool = True) -> bool:
    """Cancel open orders on the exchange (one asset or all, one side or both, or by id)."""
    session = s.engine
    want = None if side == "both" else parse_side(side)
    wait = _wait(session, waitfor)

    async def run() -> bool:
        ok = True
        for a in (s.assets if ai is None else [s.asset(ai)]):
            ok = await orders.cancel(session, a, want, ids, waitfor=wait,
                                     confirm=confirm or synced) and ok
        return ok
    return bool(_blocking(session, run(), wait + GRACE, False, "cancel_orders"))


@handles(LIVE, Action.UPDATE_LEVERAGE)
def update_leverage(s: Any, ai: AssetInstance | str, leverage: float,
                    pos: PositionSide | str = "long") -> bool:
    """Set the leverage on the exchange, then locally."""
    parse_pos(pos)
    session = s.engine
    return bool(_blocking(session, orders.set_leverage(session, s.asset(ai), float(leverage)),
                          session.waitfor + GRACE, False, "update_leverage"))


@handles(LIVE, Action.CLOSE_POSITION)
def close_position(s: Any, ai: AssetInstance | str | None = None,
                   pos: PositionSide | str | None = None) -> bool:
    """Cancel the asset's orders, then close its position with a reduce-only market order."""
    session = s.engine
    side = parse_pos(pos) if pos is not None else None

    async def run() -> bool:
        ok = True
        for a in (s.assets if ai is None else [s.asset(ai)]):
            ok = await orders.close_position(session, a, side) and ok
        return ok
    return bool(_blocking(session, run(), 2 * session.waitfor + GRACE, False, "close_position"))


@handles(LIVE, Action.WATCH_OHLCV)
def watch_ohlcv(s: Any, ai: AssetInstance | str | None = None, timeframe: str | None = None) -> bool:
    """Fetch the candles closed since the last refresh now (the tick loop does at every
    close; the candles are ticked by the loop, not here)."""
    session = s.engine
    done = _blocking(session, session.refresh_candles(), session.waitfor + GRACE, False,
                     "watch_ohlcv")
    return done is not False  # refresh_candles answers None when it is done
