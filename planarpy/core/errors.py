"""Exceptions for programming and input errors.

Ordinary trading failures (not enough cash, an order below the minimum) are not
exceptions: `call` returns None and the strategy receives an order-error event.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable


def shown(value: Any, limit: int = 80) -> str:
    """`repr(value)` for an error message, cut to `limit` characters; an int too long to
    print (Python refuses more than 4300 digits) as its size."""
    try:
        text = repr(value)
    except ValueError:
        return f"an int of {value.bit_length()} bits"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class PlanarError(Exception):
    """Base class of every planarpy error."""


class ConfigError(PlanarError, ValueError):
    """A config file or option is malformed."""


class DataError(PlanarError, ValueError):
    """Market data is unusable: missing columns, unsorted or duplicate timestamps."""


class UnknownSymbol(PlanarError, KeyError):
    """A symbol is not among the exchange's markets or the strategy's universe."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""

    @classmethod
    def among(cls, symbol: str, known: Iterable[str], where: str) -> "UnknownSymbol":
        """The error for `symbol`, which is not in `where` (e.g. "binance's markets"):
        it names the symbols it may have meant, says so when only the case differs
        (symbols are case-sensitive), and lists what is known."""
        known = sorted(set(known))
        same = [k for k in known if k.upper() == symbol.upper()]
        close = same or difflib.get_close_matches(symbol.upper(), known, n=3, cutoff=0.8)
        case = " symbols are case-sensitive" if same else ""
        hint = f" (did you mean {' or '.join(repr(k) for k in close)}?{case})" if close else ""
        shown = ", ".join(known[:30]) + (f" and {len(known) - 30} more" if len(known) > 30 else "")
        return cls(f"{symbol!r} is not in {where}{hint}; known: {shown or 'none'}")


class StrategyNotFound(PlanarError, LookupError):
    """No strategy matches the given name or path."""


class UnsupportedAction(PlanarError, TypeError):
    """The strategy's mode has no handler for the requested action."""


class InvalidArgument(PlanarError, TypeError, ValueError):
    """An argument of `call` has a wrong type or value (a programming error: it raises)."""


class UnsupportedMarginMode(PlanarError, ValueError):
    """The margin mode (cross, hedged) is not built yet."""


class LookAheadError(PlanarError, ValueError):
    """A strategy's indicator uses candles after the one it belongs to."""


class LookbackError(PlanarError, ValueError):
    """A strategy's indicator depends on candles older than its declared `lookback`."""


class StartupError(PlanarError, RuntimeError):
    """A paper or live run could not start: the exchange refused or failed a start-up request."""


class StartupInterrupted(StartupError):
    """A stop was asked while a paper or live run was starting: it ran its stop sequence
    and never started."""


class ExchangeRequestError(PlanarError, RuntimeError):
    """A request to the exchange failed (refused, timed out, or the exchange is down), so
    what it asked is not known; the message has every credential and signature removed."""
