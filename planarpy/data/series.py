"""Which series a store holds: keys, what a series holds, what a write did."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

import attrs

from ..core.errors import DataError
from .ohlcv import Gap, iso, timeframe_ms

_SAFE = frozenset(string.ascii_letters + string.digits + "-.")
_EXCHANGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def default_root() -> Path:
    """$PLANARPY_DATA, else user/data under the current directory."""
    env = os.environ.get("PLANARPY_DATA")
    return Path(env) if env else Path.cwd() / "user" / "data"


def symbol_key(symbol: str) -> str:
    """A file and Zarr-safe name for a symbol: '/' becomes '_', ':' becomes '+'.

    Any other character outside letters, digits, '-' and '.' (and a leading '.') is
    %-escaped, so distinct symbols never share a key: 'ETH/BTC' -> 'ETH_BTC',
    'XRP/USDT:USDT' -> 'XRP_USDT+USDT'.
    """
    if not isinstance(symbol, str) or not symbol.strip():
        raise DataError(f"symbol {symbol!r} is empty")
    out = []
    for i, ch in enumerate(symbol):
        if ch == "/":
            out.append("_")
        elif ch == ":":
            out.append("+")
        elif ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
    return "".join(out)


def symbol_from_key(key: str) -> str:
    """The symbol a `symbol_key` came from."""
    text = key.replace("_", "/").replace("+", ":")
    raw = re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode())
    return raw.decode("utf-8", errors="replace")


@attrs.frozen(slots=True)
class SeriesKey:
    """Which candles: exchange id, unified symbol, timeframe."""

    exchange: str
    symbol: str
    timeframe: str = attrs.field(converter=lambda tf: tf.strip() if isinstance(tf, str) else tf)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.exchange, str) or not _EXCHANGE_RE.fullmatch(self.exchange):
            raise DataError(f"exchange id {self.exchange!r} must be letters, digits, '_', '.', '-'")
        symbol_key(self.symbol)
        timeframe_ms(self.timeframe)

    @property
    def path(self) -> str:
        return f"{self.exchange}/{symbol_key(self.symbol)}/{self.timeframe}"

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe}"


@attrs.frozen(slots=True)
class SeriesInfo:
    """What a series holds, from its committed attributes."""

    key: SeriesKey
    path: Path
    rows: int
    first: int | None
    last: int | None
    format: str = ""

    def __str__(self) -> str:
        return f"{self.key}: {self.rows} candles from {iso(self.first)} to {iso(self.last)}"


@attrs.frozen(slots=True)
class WriteReport:
    """What a save or append did: candles added, identical overlaps skipped, gaps found."""

    key: SeriesKey
    added: int
    skipped: int
    gaps: tuple[Gap, ...]
    rows: int
    first: int | None
    last: int | None
    rewritten: bool = False

    @property
    def missing(self) -> int:
        return sum(g.missing for g in self.gaps)

    def __str__(self) -> str:
        text = f"{self.key}: {self.added} candles added"
        if self.skipped:
            text += f", {self.skipped} already stored skipped"
        if self.gaps:
            big = max(self.gaps, key=lambda g: g.missing)
            text += (f", {len(self.gaps)} gap(s) with {self.missing} candle(s) missing "
                     f"(largest {iso(big.start)} to {iso(big.stop)})")
        return text + f"; stored {self.rows} from {iso(self.first)} to {iso(self.last)}"
