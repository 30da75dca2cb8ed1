"""Options of a backtest."""

from __future__ import annotations

import math
from typing import Any, Callable

import attrs

from ...core.errors import ConfigError
from ...core.market import FEE_RANGE, FEE_SIDES

GAP_POLICIES = ("fill", "skip")


def _fee_side(_: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and value not in FEE_SIDES:
        raise ConfigError(f"[sim] {attribute.name} {value!r} is not one of "
                          f"{', '.join(FEE_SIDES)} (or none: the market's own)")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _rule(test: Callable[[Any], bool], allowed: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    """An attrs validator: ConfigError naming the option, its value and what is allowed."""
    def check(_: object, attribute: attrs.Attribute, value: Any) -> None:
        if not test(value):
            raise ConfigError(f"[sim] {attribute.name} must be {allowed}, not {value!r}")
    return check


_FEE = _rule(lambda v: v is None or (_number(v) and FEE_RANGE[0] <= v <= FEE_RANGE[1]),
             f"a fee rate from {FEE_RANGE[0]:g} to {FEE_RANGE[1]:g} (or none: the market's)")


@attrs.frozen(slots=True)
class SimConfig:
    """How the sim fills orders.

    `slippage` scales the adverse slippage of market orders (0 turns it off).
    `volume_cap` limits fills by candle volume (see fills.volume_fill). `maker` and
    `taker` override the market's fee rates when not None, `fee_side` the currency the
    fee is taken in (the market's `fee_side`: Binance spot takes a buy's fee in the
    base it receives; "quote" charges every fee in cash, as backtesting.py does).
    `gaps` says what a candle missing from the data is: "fill" puts a flat candle at the
    last close with no volume in its place (every step of the timeframe is ticked),
    "skip" steps over it (only the candles in the data are ticked, as in backtesting.py).
    Each value is checked: ConfigError names it.
    """

    seed: int = attrs.field(default=0, validator=_rule(
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32,
        "a whole number from 0 to 4294967295"))
    slippage: float = attrs.field(default=1.0, validator=_rule(
        lambda v: _number(v) and v >= 0, "a number >= 0 (0: no slippage)"))
    volume_cap: bool = attrs.field(default=True, validator=_rule(
        lambda v: isinstance(v, bool), "true or false"))
    maker: float | None = attrs.field(default=None, validator=_FEE)
    taker: float | None = attrs.field(default=None, validator=_FEE)
    fee_side: str | None = attrs.field(default=None, validator=_fee_side)
    check_lookahead: bool = True
    gaps: str = attrs.field(default="fill", validator=_rule(
        lambda v: v in GAP_POLICIES, f"one of {', '.join(GAP_POLICIES)}"))
