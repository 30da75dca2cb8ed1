"""Rounding amounts and prices to a market's steps without float fuzz."""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache

_REL = 1e-9


@lru_cache(maxsize=256)
def step_decimals(step: float) -> int:
    """Number of decimals a step has: 0.001 -> 3, 0.5 -> 1, 10 -> 0."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def is_on_step(value: float, step: float) -> bool:
    """Whether `value` is a whole multiple of `step` (within float noise)."""
    if step <= 0:
        return True
    n = value / step
    return abs(n - round(n)) <= _REL * max(1.0, abs(n))


def floor_to_step(value: float, step: float) -> float:
    """The largest multiple of `step` not above `value`."""
    if step <= 0:
        return value
    n = math.floor(value / step + _REL * max(1.0, abs(value / step)))
    return round(n * step, step_decimals(step))


def ceil_to_step(value: float, step: float) -> float:
    """The smallest multiple of `step` not below `value`."""
    if step <= 0:
        return value
    n = math.ceil(value / step - _REL * max(1.0, abs(value / step)))
    return round(n * step, step_decimals(step))


def round_to_step(value: float, step: float) -> float:
    """The multiple of `step` nearest to `value`."""
    if step <= 0:
        return value
    return round(round(value / step) * step, step_decimals(step))
