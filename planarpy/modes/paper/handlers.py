"""`call` in paper mode: each action runs on the engine's loop; the caller blocks briefly.

Nothing is sent to the exchange: orders fill from the streamed book and public trades
(see `orders.py`). Return values are those of sim and live. Each handler receives the
request `call` parsed (`planarpy.actions.requests`); `HANDLERS` is the table the paper
session gives the strategy when it starts.
"""

from __future__ import annotations

from typing import Any, Mapping

import ccxt

from ...actions import Action, Handler, Mode, pipeline
from ...actions.requests import (CancelOrders, ClosePosition, LimitOrder, MarketOrder,
                                 UpdateLeverage, WatchOHLCV)
from ...core.orders import OrderType, TimeInForce, Trade
from . import orders

PAPER = Mode.PAPER
GRACE = 10.0  # seconds beyond `waitfor` that a blocked call waits for the engine


def _run(s: Any, coro: Any, waitfor: float = 0.0) -> Any:
    return s.engine.engine.blocking(coro, waitfor + GRACE)


def _wait(s: Any, waitfor: float | None) -> float:
    return s.engine.waitfor if waitfor is None else waitfor


def market_order(s: Any, req: MarketOrder) -> Trade | None:
    """Sweep the streamed book: a Trade at the VWAP of the levels taken, or None."""
    return _run(s, orders.place(s.engine, req.ai, OrderType.MARKET, req.amount, None, req.side,
                                req.pos, TimeInForce.IOC, req.reduce_only, req.payload(),
                                0.0)) or None


def limit_order(s: Any, req: LimitOrder) -> Trade | Any | None:
    """Take what the book offers up to `price`, then rest and fill from crossing trades.

    GTC rests (waiting up to `waitfor` for a first fill); IOC keeps what fills at once;
    FOK fills whole at once or not at all; post-only (PO) is refused when it would take.
    """
    wait = _wait(s, req.waitfor)
    return _run(s, orders.place(s.engine, req.ai, OrderType.LIMIT, req.amount, req.price,
                                req.side, req.pos, req.tif, req.reduce_only, req.payload(),
                                wait), wait)


def cancel_orders(s: Any, req: CancelOrders) -> bool:
    """Cancel the open orders of one asset (or all) on one side or both, or those in `ids`."""
    assets = s.assets if req.ai is None else [req.ai]
    ids = list(req.ids) if req.ids is not None else None
    return bool(_run(s, orders.cancel_all(s.engine, assets, req.side, ids)))


def update_leverage(s: Any, req: UpdateLeverage) -> bool:
    """Set the leverage of an isolated-margin asset for its next orders."""
    return bool(_run(s, orders.set_leverage(s.engine, req.ai, req.leverage, req.pos)))


def close_position(s: Any, req: ClosePosition) -> bool:
    """Cancel the orders that reduce a position, then close it by sweeping the book."""
    session = s.engine

    async def run() -> bool:
        ok = True
        for a in (s.assets if req.ai is None else [req.ai]):
            ok = await orders.close_position(session, a, req.pos) and ok
        return ok
    return bool(_run(s, run()))


def watch_ohlcv(s: Any, req: WatchOHLCV) -> bool:
    """Start (or keep) the market streams of the asset(s) and refresh their candles now."""
    session = s.engine

    async def run() -> bool:
        try:
            for a in (s.assets if req.ai is None else [req.ai]):
                session.watch_ohlcv(a.symbol)
            await session.refresh_candles()
        except ccxt.BaseError as e:  # told to on_error, credentials removed; never raised
            await session.report_error(e, where="watch_ohlcv")
            return False
        return True
    return bool(_run(s, run()))


HANDLERS: Mapping[Action, Handler] = {
    Action.MARKET_ORDER: market_order,
    Action.LIMIT_ORDER: limit_order,
    Action.CANCEL_ORDERS: cancel_orders,
    Action.UPDATE_LEVERAGE: update_leverage,
    Action.CLOSE_POSITION: close_position,
    Action.WATCH_OHLCV: watch_ohlcv,
    Action.RESET_TRADING_STATE: pipeline.reset_trading_state,
}
