"""Market rules fetched from an exchange, kept in the data store beside the candles.

`planarpy markets fetch` and `planarpy fetch` store each market's precision, limits, fees
and type, as ccxt reports them, in `<data dir>/<exchange>/markets.json`: portable JSON,
replaced atomically, sealed with a CRC-32C like every commit of the store. Runs read
them (`data.sources.markets_for`) between the bundled markets and planar.toml's
`[markets]`, so a market fetched once backtests like a bundled one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ..core.errors import DataError
from ..core.market import Market
from ..integrity import format_version, seal, seal_ok, write_json
from .series import default_root

FORMAT_NAME = "planarpy.markets"
FORMAT = f"{FORMAT_NAME}/1"
FILE = "markets.json"


def markets_file(exchange: str, root: str | Path | None = None) -> Path:
    """Where the stored markets of `exchange` are (the file may not exist)."""
    return (Path(root) if root is not None else default_root()) / exchange / FILE


def stored_markets(exchange: str, root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The stored markets of `exchange` as ccxt-shaped dicts ({} if none are stored);
    DataError naming the file if it is damaged."""
    return _read(exchange, root)["markets"]


def store_markets(exchange: str, markets: Iterable[Market], fetched: int,
                  root: str | Path | None = None) -> Path:
    """Add (or replace) `markets` in the stored markets of `exchange`, atomically;
    `fetched` is when they were read from the exchange (epoch ms)."""
    path = markets_file(exchange, root)
    doc = _read(exchange, root)
    known, times = dict(doc["markets"]), dict(doc.get("fetched") or {})
    for m in markets:
        known[m.symbol] = m.to_ccxt()
        times[m.symbol] = fetched
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, seal({"format": FORMAT, "exchange": exchange,
                           "markets": dict(sorted(known.items())),
                           "fetched": dict(sorted(times.items()))}), fsync=True)
    return path


def _read(exchange: str, root: str | Path | None) -> dict[str, Any]:
    path = markets_file(exchange, root)
    try:
        doc = json.loads(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return {"markets": {}, "fetched": {}}
    except (OSError, ValueError) as e:
        raise DataError(f"{path} cannot be read ({type(e).__name__}: {e}); fetch the markets "
                        f"again with `planarpy markets fetch {exchange}`") from None
    if not isinstance(doc, dict) or format_version(doc.get("format"), FORMAT_NAME) != 1 \
            or seal_ok(doc) is not True or not isinstance(doc.get("markets"), dict):
        raise DataError(f"{path} is damaged or not a planarpy markets file ({FORMAT}); fetch "
                        f"the markets again with `planarpy markets fetch {exchange}`")
    return doc


__all__ = ["markets_file", "stored_markets", "store_markets", "FORMAT"]
