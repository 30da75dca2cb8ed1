"""`call` in paper mode: each action runs on the engine's loop; the caller blocks briefly.

Nothing is sent to the exchange: orders fill from the streamed book and public trades
(see `orders.py`). Return values are those of sim and live.
"""

from __future__ import annotations

from typing import Any

import ccxt

from ...actions import (Action, Mode, handles, order_request, order_sides, parse_pos, parse_side,
                        parse_tif)
from ...core.instances import AssetInstance
from ...core.orders import OrderType, PositionSide, Side, TimeInForce, Trade
from . import orders

PAPER = Mode.PAPER
GRACE = 10.0  # seconds beyond `waitfor` that a blocked call waits for the engine


def _run(s: Any, coro: Any, waitfor: float = 0.0) -> Any:
    return s.engine.engine.blocking(coro, waitfor + GRACE)


def _wait(s: Any, waitfor: float | None) -> float:
    return s.engine.waitfor if waitfor is None else max(0.0, float(waitfor))


@handles(PAPER, Action.MARKET_ORDER)
def market_order(s: Any, ai: AssetInstance | str, amount: float, *, side: Side | str = "buy",
                 pos: PositionSide | str = "long", reduce_only: bool = False,
                 date: int | None = None, waitfor: float | None = None,
                 synced: bool = True) -> Trade | None:
    """Sweep the streamed book: a Trade at the VWAP of the levels taken, or None."""
    ai = s.asset(ai)
    side_, pos_ = order_sides(ai, side, pos)
    request = order_request("market", ai, amount, None, side_, pos_, TimeInForce.IOC, reduce_only)
    return _run(s, orders.place(s.engine, ai, OrderType.MARKET, amount, None, side_, pos_,
                                TimeInForce.IOC, reduce_only, request, 0.0)) or None


@handles(PAPER, Action.LIMIT_ORDER)
def limit_order(s: Any, ai: AssetInstance | str, amount: float, price: float, *,
                side: Side | str = "buy", tif: TimeInForce | str = "GTC",
                pos: PositionSide | str = "long", reduce_only: bool = False,
                date: int | None = None, waitfor: float | None = None,
                synced: bool = True) -> Trade | Any | None:
    """Take what the book offers up to `price`, then rest and fill from crossing trades.

    GTC rests (waiting up to `waitfor` for a first fill); IOC keeps what fills at once;
    FOK fills whole at once or not at all; post-only (PO) is refused when it would take.
    """
    ai = s.asset(ai)
    side_, pos_ = order_sides(ai, side, pos)
    tif_ = parse_tif(tif)
    request = order_request("limit", ai, amount, price, side_, pos_, tif_, reduce_only)
    wait = _wait(s, waitfor)
    return _run(s, orders.place(s.engine, ai, OrderType.LIMIT, amount, price, side_, pos_, tif_,
                                reduce_only, request, wait), wait)


@handles(PAPER, Action.CANCEL_ORDERS)
def cancel_orders(s: Any, ai: AssetInstance | str | None = None, side: Side | str = "both", *,
                  ids: list[str] | None = None, waitfor: float | None = None,
                  confirm: bool = False, synced: bool = True) -> bool:
    """Cancel the open orders of one asset (or all) on one side or both, or those in `ids`."""
    assets = s.assets if ai is None else [s.asset(ai)]
    want = None if side == "both" else parse_side(side)
    return bool(_run(s, orders.cancel_all(s.engine, assets, want, ids)))


@handles(PAPER, Action.UPDATE_LEVERAGE)
def update_leverage(s: Any, ai: AssetInstance | str, leverage: float,
                    pos: PositionSide | str = "long") -> bool:
    """Set the leverage of an isolated-margin asset for its next orders."""
    return bool(_run(s, orders.set_leverage(s.engine, s.asset(ai), float(leverage),
                                            parse_pos(pos))))


@handles(PAPER, Action.CLOSE_POSITION)
def close_position(s: Any, ai: AssetInstance | str | None = None,
                   pos: PositionSide | str | None = None) -> bool:
    """Cancel the orders that reduce a position, then close it by sweeping the book."""
    side = parse_pos(pos) if pos is not None else None
    session = s.engine

    async def run() -> bool:
        ok = True
        for a in (s.assets if ai is None else [s.asset(ai)]):
            ok = await orders.close_position(session, a, side) and ok
        return ok
    return bool(_run(s, run()))


@handles(PAPER, Action.WATCH_OHLCV)
def watch_ohlcv(s: Any, ai: AssetInstance | str | None = None, timeframe: str | None = None) -> bool:
    """Start (or keep) the market streams of the asset(s) and refresh their candles now."""
    session = s.engine

    async def run() -> bool:
        try:
            for a in (s.assets if ai is None else [s.asset(ai)]):
                session.watch_ohlcv(a.symbol)
            await session.refresh_candles()
        except ccxt.BaseError as e:  # told to on_error, credentials removed; never raised
            await session.report_error(e, where="watch_ohlcv")
            return False
        return True
    return bool(_run(s, run()))
