"""`call` in sim mode: orders fill against candles, never against the future.

At a tick the strategy has seen candle `i` (closed at the tick's time). A market order
fills at the open of candle i+1, plus adverse slippage; a limit order that the open of
candle i+1 already crosses fills there (better than its limit), otherwise it waits for a
later candle to reach its price.
"""

from __future__ import annotations

from typing import Any

from ...actions import (Action, Mode, handles, order_request, order_sides, parse_pos, parse_side,
                       parse_tif)
from ...core.accounting import funds_error, leverage_error
from ...core.instances import AssetInstance
from ...core.orders import Order, OrderType, PositionSide, Side, TimeInForce, Trade, missing
from .fills import market_price, marketable

SIM = Mode.SIM


def _now_index(s: Any, date: int | None) -> int:
    i = s.i
    if i < 0:
        raise RuntimeError("sim orders can only be placed from a tick (after start)")
    if date is not None and date != s.clock.now():
        raise ValueError(f"sim orders are placed at the current time {s.clock.now()}, "
                         f"got date={date}")
    return i


def _new_order(s: Any, ai: AssetInstance, type_: OrderType, amount: float, price: float,
               side: Side, pos: PositionSide, tif: TimeInForce, reduce_only: bool) -> Order:
    return Order(id=s.engine.new_id(), symbol=ai.symbol, side=side, type=type_,
                 amount=amount, price=price, date=s.clock.now(), tif=tif, pos=pos,
                 reduce_only=reduce_only,
                 leverage=ai.leverage if ai.market.is_derivative else 1.0)


@handles(SIM, Action.MARKET_ORDER)
def market_order(s: Any, ai: AssetInstance | str, amount: float, *, side: Side | str = "buy",
                 pos: PositionSide | str = "long", reduce_only: bool = False,
                 date: int | None = None, waitfor: float | None = None,
                 synced: bool = True) -> Trade | None:
    """Fill at the next candle's open plus slippage, capped by volume; the rest is cancelled."""
    ai = s.asset(ai)
    side, pos = order_sides(ai, side, pos)
    i = _now_index(s, date)
    eng = s.engine
    data = ai.ohlcv
    volume = data.volume.item(i)
    m = ai.market
    raw = market_price(side, data.open.item(i + 1), data.close.item(i), amount, volume,
                       eng.config.slippage)
    price = m.adverse_price(raw, side is Side.BUY)
    reason = m.check_order(amount, price)
    if reason is None:
        order = _new_order(s, ai, OrderType.MARKET, amount, price, side, pos,
                           TimeInForce.IOC, reduce_only)
        reason = funds_error(s.state, ai, order)
    if reason is not None:
        s.reject(ai, reason, order_request("market", ai, amount, None, side, pos,
                                           TimeInForce.IOC, reduce_only))
        return None
    fill = eng.fillable(ai, amount, volume)
    if fill <= 0:
        s.reject(ai, f"no liquidity: the last candle traded {volume:g} {m.base}, too little "
                     f"for a market order of {amount:g}",
                 order_request("market", ai, amount, None, side, pos, TimeInForce.IOC,
                               reduce_only))
        return None
    order = s.emit("order_created", order, ai.symbol).order
    trade = eng.fill(ai, order, price, fill, taker=True, effective=i + 1)
    eng.close_rest(ai, order)
    return trade


@handles(SIM, Action.LIMIT_ORDER)
def limit_order(s: Any, ai: AssetInstance | str, amount: float, price: float, *,
                side: Side | str = "buy", tif: TimeInForce | str = "GTC",
                pos: PositionSide | str = "long", reduce_only: bool = False,
                date: int | None = None, waitfor: float | None = None,
                synced: bool = True) -> Trade | Any | None:
    """Queue a limit order; one the next open crosses fills there at once (as a taker).

    GTC rests until filled or cancelled; IOC keeps what fills at once; FOK fills whole at
    once or not at all; post-only (PO) is refused when it would take.
    """
    ai = s.asset(ai)
    side, pos = order_sides(ai, side, pos)
    tif = parse_tif(tif)
    i = _now_index(s, date)
    eng = s.engine
    m = ai.market
    reason = m.check_limit_price(price) or m.check_order(amount, price)
    if reason is None:
        order = _new_order(s, ai, OrderType.LIMIT, amount, price, side, pos, tif, reduce_only)
        reason = funds_error(s.state, ai, order)
    if reason is not None:
        s.reject(ai, reason, order_request("limit", ai, amount, price, side, pos, tif, reduce_only))
        return None
    open_ = ai.ohlcv.open.item(i + 1)
    takes = marketable(side, price, open_)
    fill = eng.fillable(ai, amount, ai.ohlcv.volume.item(i)) if takes else 0.0
    if tif is TimeInForce.POST_ONLY and takes:
        reason = f"post-only order at {price:g} would take liquidity at {open_:g}"
    elif tif is TimeInForce.FOK and fill < amount:
        reason = (f"fill-or-kill order at {price:g} killed: "
                  + (f"{fill:g} of {amount:g} available" if takes else f"the price is {open_:g}"))
    elif tif is TimeInForce.IOC and fill <= 0:
        reason = (f"immediate-or-cancel order at {price:g} cancelled: "
                  + ("no liquidity" if takes else f"the price is {open_:g}"))
    if reason is not None:
        s.reject(ai, reason, order_request("limit", ai, amount, price, side, pos, tif, reduce_only))
        return None
    order = s.emit("order_created", order, ai.symbol).order
    trade = eng.fill(ai, order, open_, fill, taker=True, effective=i + 1) if fill > 0 else None
    if tif is TimeInForce.IOC:
        eng.close_rest(ai, order)
    return trade if trade is not None else missing


@handles(SIM, Action.CANCEL_ORDERS)
def cancel_orders(s: Any, ai: AssetInstance | str | None = None, side: Side | str = "both", *,
                  ids: list[str] | None = None, waitfor: float | None = None,
                  confirm: bool = False, synced: bool = True) -> bool:
    """Cancel the open orders of one asset (or all) on one side or both, or those in `ids`."""
    assets = s.assets if ai is None else [s.asset(ai)]
    want = None if side == "both" else parse_side(side)
    found: set[str] = set()
    for a in assets:
        for order in list(a.orders.values()):
            if (want is None or order.side is want) and (ids is None or order.id in ids):
                found.add(order.id)
                s.emit("order_closed", {"id": order.id, "symbol": a.symbol,
                                        "status": "canceled"}, a.symbol)
    if ids is not None and set(ids) - found:
        unknown = sorted(set(ids) - found)
        s.reject(None, f"no open order with id {', '.join(unknown)}", {"type": "cancel", "ids": ids})
        return False
    return True


@handles(SIM, Action.UPDATE_LEVERAGE)
def update_leverage(s: Any, ai: AssetInstance | str, leverage: float,
                    pos: PositionSide | str = "long") -> bool:
    """Set the leverage of an isolated-margin asset for its next orders."""
    ai = s.asset(ai)
    parse_pos(pos)
    reason = leverage_error(ai, float(leverage))
    if reason is not None:
        s.reject(ai, reason, {"type": "leverage", "symbol": ai.symbol, "leverage": leverage})
        return False
    s.emit("leverage_updated", {"symbol": ai.symbol, "leverage": float(leverage),
                                "pos": parse_pos(pos).value}, ai.symbol)
    return True


@handles(SIM, Action.CLOSE_POSITION)
def close_position(s: Any, ai: AssetInstance | str | None = None,
                   pos: PositionSide | str | None = None) -> bool:
    """Cancel the orders that reduce a position, then close it with a market order.

    On spot, the position is the base balance: it is sold. Without `ai`, every asset.
    """
    ok = True
    for a in (s.assets if ai is None else [s.asset(ai)]):
        if a.market.is_derivative:
            p = a.open_position()
            if p is None or (pos is not None and p.side is not parse_pos(pos)):
                continue
            side = Side.SELL if p.side is PositionSide.LONG else Side.BUY
            cancel_orders(s, a, "both")
            trade = market_order(s, a, p.amount, side=side, pos=p.side, reduce_only=True)
            ok = ok and trade is not None and not a.open_position()
        else:
            cancel_orders(s, a, "sell")
            amount = a.floor_amount(a.free_balance)
            if amount <= 0 or amount < a.market.min_amount:
                continue
            trade = market_order(s, a, amount, side="sell")
            ok = ok and trade is not None
    return ok


@handles(SIM, Action.WATCH_OHLCV)
def watch_ohlcv(s: Any, ai: AssetInstance | str | None = None, timeframe: str | None = None) -> bool:
    """Sim data is all there already: nothing to do."""
    return True
