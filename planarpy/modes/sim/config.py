"""Options of a backtest."""

from __future__ import annotations

import attrs

from ...core.errors import ConfigError
from ...core.market import FEE_SIDES


def _fee_side(_: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and value not in FEE_SIDES:
        raise ConfigError(f"[sim] {attribute.name} {value!r} is not one of "
                          f"{', '.join(FEE_SIDES)} (or none: the market's own)")


@attrs.frozen(slots=True)
class SimConfig:
    """How the sim fills orders.

    `slippage` scales the adverse slippage of market orders (0 turns it off).
    `volume_cap` limits fills by candle volume (see fills.volume_fill). `maker` and
    `taker` override the market's fee rates when not None, `fee_side` the currency the
    fee is taken in (the market's `fee_side`: Binance spot takes a buy's fee in the
    base it receives; "quote" charges every fee in cash, as backtesting.py does).
    """

    seed: int = 0
    slippage: float = 1.0
    volume_cap: bool = True
    maker: float | None = None
    taker: float | None = None
    fee_side: str | None = attrs.field(default=None, validator=_fee_side)
    check_lookahead: bool = True
