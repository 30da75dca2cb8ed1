"""Per-asset state and the strategy's whole state."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import attrs

from .display import html_table, iso, num, word
from .market import Market
from .orders import Order, PositionSide, Side, Trade
from .positions import Position
from .precision import floor_to_step, round_to_step
from .risk import RiskState


@attrs.define(slots=True, eq=False)
class AssetInstance:
    """One market as the strategy holds it: balance, open orders, positions, trades.

    `balance` is the base currency held (spot). `committed` is what open orders hold of
    it: base units for spot sells, contracts for orders that reduce a position.
    """

    market: Market
    balance: float = 0.0
    committed: float = 0.0
    leverage: float = 1.0
    orders: dict[str, Order] = attrs.Factory(dict)
    long: Position = attrs.Factory(lambda: Position(PositionSide.LONG))
    short: Position = attrs.Factory(lambda: Position(PositionSide.SHORT))
    trades: list[Trade] = attrs.Factory(list)
    trade_ids: set[str] = attrs.Factory(set)
    ohlcv: Any = None
    ind: dict[str, list[float]] = attrs.Factory(dict)
    symbol: str = attrs.field(init=False)  # the market's, kept here: read on every order

    def __attrs_post_init__(self) -> None:
        self.symbol = self.market.symbol

    @property
    def free_balance(self) -> float:
        return self.balance - self.committed

    def position(self, side: PositionSide | str = PositionSide.LONG) -> Position:
        return self.long if PositionSide(side) is PositionSide.LONG else self.short

    def open_position(self) -> Position | None:
        """The open position (isolated margin is one-way: at most one side is open)."""
        if self.long.amount > 0:
            return self.long
        if self.short.amount > 0:
            return self.short
        return None

    def orders_on(self, side: Side | str | None = None) -> Iterator[Order]:
        """Open orders of this asset, on one side or both."""
        want = None if side in (None, "both") else Side(side)
        return (o for o in self.orders.values() if want is None or o.side is want)

    def floor_amount(self, amount: float) -> float:
        """`amount` rounded down to the market's amount step."""
        return floor_to_step(amount, self.market.amount_step)

    def round_price(self, price: float) -> float:
        """`price` rounded to the market's tick."""
        return round_to_step(price, self.market.price_step)

    def __repr__(self) -> str:
        pos = self.open_position()
        m = self.market
        held = (f"{pos.side.value} {num(pos.amount, m.amount_step)} @ "
                f"{num(pos.entry_price, m.price_step)}" if pos else
                f"balance={num(self.balance, m.amount_step)}")
        return f"<AssetInstance {self.symbol} {held} orders={len(self.orders)} trades={len(self.trades)}>"

    def _repr_html_(self) -> str:
        m = self.market
        a, p = m.amount_step, m.price_step
        rows = [("market", f"{m.symbol} ({m.kind})"), ("balance", num(self.balance, a)),
                ("committed", num(self.committed, a)), ("free", num(self.free_balance, a))]
        pos = self.open_position()
        if pos is not None:
            rows += [(f"{pos.side.value} {k}", v) for k, v in pos.rows(a, p)]
        rows.append(("trades", str(len(self.trades))))
        head = ["id", "status", "type", "side", "amount", "price", "filled", "date"]
        table = [head] + [[o.id, word(o.status), word(o.type), word(o.side), num(o.amount, a),
                           num(o.price, p), num(o.filled, a), iso(o.date)]
                          for o in self.orders.values()]
        return html_table(f"AssetInstance {self.symbol}", rows, table if self.orders else None)


@attrs.define(slots=True, eq=False)
class State:
    """The strategy's money: cash in the quote currency, what open orders hold, the assets.

    `cash` includes `committed`; `free_cash` is what new orders may use. `active` holds the
    assets with open orders or positions, so the sim only matches those. `orders_placed`
    counts the orders accepted, `orders_partial` those that ended partly filled. `risk`
    holds the trading state and what the risk rules count (see core/risk.py).
    """

    quote: str
    cash: float
    committed: float = 0.0
    assets: dict[str, AssetInstance] = attrs.Factory(dict)
    trades: list[Trade] = attrs.Factory(list)
    fees: float = 0.0
    # the filled share of each order that opened or added to a position and ended partly filled
    entries_partial: list[float] = attrs.Factory(list)
    active: dict[str, AssetInstance] = attrs.Factory(dict)
    orders_placed: int = 0
    orders_partial: int = 0
    risk: RiskState = attrs.Factory(RiskState)

    @property
    def free_cash(self) -> float:
        return self.cash - self.committed

    def equity(self, prices: Mapping[str, float]) -> float:
        """Cash plus the value of holdings and positions at `prices` (symbol -> price)."""
        total = self.cash
        for sym, ai in self.assets.items():
            price = prices.get(sym)
            if price is None:
                continue
            m = ai.market
            total += ai.balance * price
            for p in (ai.long, ai.short):
                if p.amount > 0:
                    total += p.margin + p.unrealized_pnl(price, m.contract_size)
        return total

    def open_orders(self) -> Iterator[Order]:
        for ai in self.assets.values():
            yield from ai.orders.values()
