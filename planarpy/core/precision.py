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


# Written for speed (every order passes here). A multiple k of a step written m * 10^-d
# is computed as the integer k*m divided by 10^d: Python divides integers correctly
# rounded, so this is the float nearest to the decimal k*m*10^-d, which is exactly what
# round(k * step, d) returns, at a fraction of its cost.
_GRIDS: dict[float, tuple[int, int]] = {}


def _grid(step: float) -> tuple[int, int]:
    """(m, 10^d) with step == m * 10^-d as its shortest decimal reads."""
    g = _GRIDS.get(step)
    if g is None:
        d = step_decimals(step)
        g = _GRIDS[step] = (int(Decimal(repr(step)).scaleb(d)), 10 ** d)
    return g


def _on_grid(k: int, step: float) -> float:
    m, p = _GRIDS.get(step) or _grid(step)
    return k * m / p


# the float noise allowed around n steps is _REL * max(1, |n|), written out inline below
def is_on_step(value: float, step: float) -> bool:
    """Whether `value` is a whole multiple of `step` (within float noise)."""
    if step <= 0:
        return True
    n = value / step
    d = n - round(n)
    a = n if n >= 0.0 else -n
    tol = _REL * (a if a > 1.0 else 1.0)
    return -tol <= d <= tol


def floor_to_step(value: float, step: float) -> float:
    """The largest multiple of `step` not above `value`."""
    if step <= 0:
        return value
    n = value / step
    a = n if n >= 0.0 else -n
    m, p = _GRIDS.get(step) or _grid(step)
    return math.floor(n + _REL * (a if a > 1.0 else 1.0)) * m / p


def floor_fill(value: float, whole: float, step: float) -> float:
    """How much of an order's `whole` (rest) a fill of `value` takes, on the amount step:
    `whole` itself when `value` is all of it and `whole` is on the step within float noise
    (as the market rules passed it; rounding would move it an ulp above or below what was
    ordered), else `value` rounded down to the step, never above `value`."""
    fill = floor_to_step(value, step)
    if fill == value:  # on the grid already (as amounts made with floor_amount are)
        return fill
    if value == whole and is_on_step(whole, step):
        return whole
    return fill if fill <= value else value


def ceil_to_step(value: float, step: float) -> float:
    """The smallest multiple of `step` not below `value`."""
    if step <= 0:
        return value
    n = value / step
    a = n if n >= 0.0 else -n
    m, p = _GRIDS.get(step) or _grid(step)
    return math.ceil(n - _REL * (a if a > 1.0 else 1.0)) * m / p


def round_to_step(value: float, step: float) -> float:
    """The multiple of `step` nearest to `value`."""
    if step <= 0:
        return value
    return _on_grid(round(value / step), step)
