"""Markets as the exchange sees them: the core Market's rules as exact Decimals."""

from __future__ import annotations

from decimal import Decimal

import attrs

from ..core.market import Market

ZERO = Decimal(0)
# spot's TRAILING_DELTA filter (basis points), Binance's usual figures: the same bounds
# above the market (a buy stop, a sell take-profit) and below it (a sell stop, a buy target)
TRAILING_DELTA = (10, 2000)
# spot's MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS filters: open orders of one account on one
# symbol, all of them and the stop / take-profit ones (Binance's usual figures)
MAX_ORDERS, MAX_ALGO_ORDERS = 200, 5


def dec(x: float | str | int) -> Decimal:
    """A float as the Decimal its shortest repr names (0.1 -> Decimal('0.1'))."""
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


@attrs.frozen(slots=True)
class MarketSpec:
    """One market's rules; `futures` markets trade on /fapi, the others on /api."""

    market: Market
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal
    maker: Decimal
    taker: Decimal
    mmr: Decimal
    max_leverage: int

    @property
    def id(self) -> str:
        return self.market.id

    @property
    def symbol(self) -> str:
        return self.market.symbol

    @property
    def base(self) -> str:
        return self.market.base

    @property
    def quote(self) -> str:
        return self.market.quote

    @property
    def futures(self) -> bool:
        return self.market.is_derivative

    def floor_qty(self, qty: Decimal) -> Decimal:
        return (qty // self.step) * self.step

    def on_tick(self, price: Decimal) -> bool:
        return price % self.tick == 0

    def on_step(self, qty: Decimal) -> bool:
        return qty % self.step == 0

    def round_price(self, price: float | Decimal) -> Decimal:
        p = Decimal(repr(price)) if isinstance(price, float) else price
        return (p / self.tick).to_integral_value() * self.tick

    @classmethod
    def from_market(cls, m: Market) -> "MarketSpec":
        big = Decimal("1e12")
        return cls(
            market=m, tick=dec(m.price_step), step=dec(m.amount_step),
            min_qty=dec(m.min_amount) if m.min_amount else dec(m.amount_step),
            max_qty=big if m.max_amount == float("inf") else dec(m.max_amount),
            min_price=dec(m.min_price) if m.min_price else dec(m.price_step),
            max_price=big if m.max_price == float("inf") else dec(m.max_price),
            min_notional=dec(m.min_cost), maker=dec(m.maker), taker=dec(m.taker),
            mmr=dec(m.maintenance_margin_rate), max_leverage=int(m.max_leverage),
        )
