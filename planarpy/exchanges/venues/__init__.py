"""Venues: each exchange's quirks behind one interface (see `base.Venue`).

The table is explicit: an exchange without a module of its own gets the base, which
keeps to ccxt's unified behaviour.
"""

from __future__ import annotations

from .base import Venue
from .binance import Binance

VENUES: dict[str, type[Venue]] = {"binance": Binance, "binanceusdm": Binance}


def venue_for(exchange_id: str) -> Venue:
    """The venue of a ccxt exchange id."""
    return VENUES.get(exchange_id, Venue)(exchange_id)


__all__ = ["Binance", "VENUES", "Venue", "venue_for"]
