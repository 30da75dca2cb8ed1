"""Isolated-margin positions and the arithmetic of margin and liquidation."""

from __future__ import annotations

import attrs

from .display import html_table, iso, num, word
from .orders import PositionSide


@attrs.define(slots=True, eq=False)
class Position:
    """One side of an isolated-margin position.

    `amount` is in contracts (always >= 0), `margin` is the isolated margin in quote
    currency, `liquidation_price` the mark price at which the margin no longer covers
    the maintenance margin.
    """

    side: PositionSide
    amount: float = 0.0
    entry_price: float = 0.0
    leverage: float = 1.0
    margin: float = 0.0
    liquidation_price: float = 0.0
    date: int = 0

    @property
    def is_open(self) -> bool:
        return self.amount > 0

    def __repr__(self) -> str:
        if not self.is_open:
            return f"<Position {word(self.side)} closed>"
        return (f"<Position {word(self.side)} {num(self.amount)} @ {num(self.entry_price)} "
                f"x{num(self.leverage)} margin {num(self.margin)} liq {num(self.liquidation_price)}>")

    def _repr_html_(self) -> str:
        return html_table(f"Position {word(self.side)}", self.rows())

    def rows(self, amount_step: float | None = None, price_step: float | None = None) -> list[tuple[str, str]]:
        """(name, shown value) pairs, at the given steps when known."""
        return [("amount", num(self.amount, amount_step)),
                ("entry price", num(self.entry_price, price_step)),
                ("leverage", num(self.leverage)), ("margin", num(self.margin)),
                ("liquidation price", num(self.liquidation_price, price_step)),
                ("since", iso(self.date) if self.date else "-")]

    def notional(self, price: float, contract_size: float = 1.0) -> float:
        return self.amount * contract_size * price

    def unrealized_pnl(self, price: float, contract_size: float = 1.0) -> float:
        return pnl(self.side, self.entry_price, price, self.amount * contract_size)

    def maintenance_margin(self, price: float, mmr: float, contract_size: float = 1.0) -> float:
        return self.notional(price, contract_size) * mmr

    def reset(self) -> None:
        self.amount = self.entry_price = self.margin = self.liquidation_price = 0.0


def pnl(side: PositionSide, entry: float, price: float, qty: float) -> float:
    """Profit of `qty` base units bought (long) or sold (short) at `entry`, closed at `price`."""
    return (price - entry) * qty if side is PositionSide.LONG else (entry - price) * qty


def liquidation_price(side: PositionSide, entry: float, qty: float, margin: float,
                      mmr: float) -> float:
    """Price at which margin plus unrealized pnl equals the maintenance margin.

    Long: margin + (p - entry)*qty = mmr*p*qty  ->  p = (entry*qty - margin) / (qty*(1 - mmr))
    Short: margin + (entry - p)*qty = mmr*p*qty ->  p = (entry*qty + margin) / (qty*(1 + mmr))
    """
    if qty <= 0:
        return 0.0
    if side is PositionSide.LONG:
        return max(0.0, (entry * qty - margin) / (qty * (1.0 - mmr)))
    return (entry * qty + margin) / (qty * (1.0 + mmr))
