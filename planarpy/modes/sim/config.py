"""Options of a backtest."""

from __future__ import annotations

import attrs


@attrs.frozen(slots=True)
class SimConfig:
    """How the sim fills orders.

    `slippage` scales the adverse slippage of market orders (0 turns it off).
    `volume_cap` limits fills by candle volume (see fills.volume_fill). `maker` and
    `taker` override the market's fee rates when not None.
    """

    seed: int = 0
    slippage: float = 1.0
    volume_cap: bool = True
    maker: float | None = None
    taker: float | None = None
    check_lookahead: bool = True
