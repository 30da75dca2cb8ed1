"""Pure fill rules of paper mode: sweeping a book, sharing public trades, the day's volume.

Levels are (price, amount) pairs, best first: asks ascending for a buy, bids descending
for a sell. Nothing here knows about orders, strategies or time.
"""

from __future__ import annotations

import math
from typing import Hashable, Iterable, Sequence

import attrs

from ...core.orders import Side
from ...core.precision import floor_fill
from ...core.triggers import marketable

Level = tuple[float, float]


@attrs.frozen(slots=True)
class Sweep:
    """What a taker gets from a book: the levels it takes (price, amount taken) in order."""

    taken: tuple[Level, ...] = ()

    @property
    def amount(self) -> float:
        return math.fsum(q for _, q in self.taken)

    @property
    def cost(self) -> float:
        return math.fsum(p * q for p, q in self.taken)

    @property
    def vwap(self) -> float:
        """Volume-weighted price of the levels taken (0 when nothing is taken)."""
        amount = self.amount
        return self.cost / amount if amount > 0 else 0.0

    def __bool__(self) -> bool:
        return bool(self.taken)


def sweep(levels: Iterable[Level], amount: float, side: Side, limit: float | None = None,
          step: float = 0.0) -> Sweep:
    """Take up to `amount` from `levels` (the opposite side of the book, best first).

    A limit stops the sweep at the first level it does not cross. With `step`, the total
    taken is rounded down to the amount step (the last level taken gives back the excess).
    """
    if not amount > 0:
        return Sweep()
    eligible = []
    for price, qty in levels:
        if limit is not None and not marketable(side, limit, price):
            break
        if qty > 0 and price > 0:
            eligible.append((float(price), float(qty)))
    total = min(amount, math.fsum(q for _, q in eligible))
    if step > 0:
        total = floor_fill(total, amount, step)
    taken: list[Level] = []
    left = total
    for price, qty in eligible:
        if left <= 0:
            break
        take = qty if qty < left else left
        taken.append((price, take))
        left -= take
        if left <= total * 1e-12:
            break
    if taken and step > 0:  # float residue: make the amounts sum to the rounded total
        price, take = taken[-1]
        taken[-1] = (price, take + (total - math.fsum(q for _, q in taken)))
    return Sweep(tuple(taken))


def deplete(levels: Sequence[Level], taken: Iterable[Level]) -> list[Level]:
    """`levels` less what a sweep took from them (levels taken whole disappear)."""
    used: dict[float, float] = {}
    for price, qty in taken:
        used[price] = used.get(price, 0.0) + qty
    out = []
    for price, qty in levels:
        left = qty - used.get(price, 0.0)
        if left > qty * 1e-12:
            out.append((price, left))
    return out


def would_take(side: Side, limit: float, levels: Sequence[Level]) -> bool:
    """Whether a limit order would take liquidity at once (the post-only check)."""
    return bool(levels) and marketable(side, limit, levels[0][0])


@attrs.frozen(slots=True)
class Resting:
    """A resting limit order as trade sharing sees it."""

    key: Hashable
    side: Side
    limit: float
    remaining: float


def share_trade(orders: Iterable[Resting], price: float, amount: float,
                step: float = 0.0) -> list[tuple[Hashable, float]]:
    """Split one public trade at `price` among the resting orders it crosses.

    Orders go best limit first (highest buy, lowest sell), then in the given order (oldest
    first); each gets at most its remaining amount, rounded down to `step`, and together
    they never get more than the trade's `amount`.
    """
    crossing = [o for o in orders if marketable(o.side, o.limit, price) and o.remaining > 0]
    crossing.sort(key=lambda o: -o.limit if o.side is Side.BUY else o.limit)  # stable: age kept
    out = []
    left = amount
    for o in crossing:
        take = min(o.remaining, left)
        if step > 0:
            take = floor_fill(take, o.remaining, step)
        if take <= 0:
            continue
        out.append((o.key, take))
        left -= take
        if left <= amount * 1e-12:
            break
    return out


def volume_left(day_volume: float, taken: float) -> float:
    """What the day's traded volume still lets a paper order take (never below zero)."""
    return max(0.0, day_volume - taken)
