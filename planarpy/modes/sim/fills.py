"""Pure fill rules of the sim: slippage, limit triggers and the volume cap."""

from __future__ import annotations

import math
import random

from ...core.orders import Side

FULL_RATIO = 100.0  # candle volume / amount at or above which an order fills whole
PROBABLE_RATIO = 10.0  # above this, a whole fill has probability log10(ratio) - 1
PARTICIPATION = 0.01  # otherwise an order takes at most 1% of the candle's volume
_BUY = Side.BUY  # read once (3.11: an enum member read in a function costs a __getattr__ hook)


def market_price(side: Side, open_: float, prev_close: float, amount: float, volume: float,
                 scale: float) -> float:
    """Fill price of a market order at `open_`, moved against the order.

    The base slippage is the gap |prev_close - open|; it grows with the order's share of
    the last candle's volume (up to double when the order is as large as the candle).
    """
    if scale <= 0:
        return open_
    share = 1.0 if volume <= 0 else min(1.0, amount / volume)
    slip = abs(prev_close - open_) * scale * (1.0 + share)
    return open_ + slip if side is _BUY else max(open_ - slip, 0.0)


def limit_triggers(side: Side, limit: float, low: float, high: float) -> bool:
    """A buy fills when the candle trades at or below its limit, a sell at or above."""
    return low <= limit if side is _BUY else high >= limit


def volume_fill(amount: float, volume: float, rng: random.Random) -> float:
    """How much of `amount` a candle of `volume` fills (before rounding to the amount step).

    volume >= 100 x amount: all of it. 10 x < volume < 100 x: all of it with probability
    log10(volume/amount) - 1, else 1% of the volume. Below that: 1% of the volume.
    """
    if volume <= 0:
        return 0.0
    ratio = volume / amount
    if ratio >= FULL_RATIO:
        return amount
    if ratio > PROBABLE_RATIO and rng.random() < math.log10(ratio) - 1.0:
        return amount
    return min(amount, volume * PARTICIPATION)
