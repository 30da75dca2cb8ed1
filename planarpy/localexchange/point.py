"""Point an unmodified ccxt Binance client (sync, async or pro) at a local exchange."""

from __future__ import annotations

import copy
import re
from typing import Any

_URL = re.compile(r"^(https?|wss?)://([^/:]+)(?::\d+)?(/.*)?$")


def local_url(url: str, base_url: str) -> str:
    """`https://fapi.binance.com/fapi/v1` -> `http://127.0.0.1:P/fapi/v1`.

    WebSocket URLs keep their path under a prefix named after the host's first label
    (`wss://fstream.binance.com/ws` -> `ws://127.0.0.1:P/fstream/ws`), so the server can
    tell spot streams from futures streams and ccxt still recognises spot stream URLs.
    """
    m = _URL.match(url)
    if not m:
        return url
    scheme, host, path = m.group(1), m.group(2), m.group(3) or ""
    base = base_url.rstrip("/")
    if scheme.startswith("ws"):
        base = re.sub(r"^http", "ws", base)
        return f"{base}/{host.split('.')[0]}{path}"
    return base + path


def _rewrite(node: Any, base_url: str) -> Any:
    if isinstance(node, dict):
        return {k: _rewrite(v, base_url) for k, v in node.items()}
    if isinstance(node, str):
        return local_url(node, base_url)
    return node


def point_ccxt(exchange: Any, base_url: str, *, rate_limit: bool = False) -> Any:
    """Rewrite every REST and WebSocket URL of a ccxt binance/binanceusdm instance.

    Call before `load_markets` (and never call `set_sandbox_mode` afterwards: it replaces
    the URLs). Also sets the options the local exchange needs: no currencies or margin
    pairs request, only the instance's own market types, and, unless `rate_limit`, no
    client-side throttling. ccxt picks market-specific error codes (-2019, -5022...) by
    matching the real host in the URL; that table is merged into the instance's general
    one, so errors map as they would against Binance.
    """
    exchange.urls["api"] = _rewrite(exchange.urls["api"], base_url)
    futures = exchange.id == "binanceusdm" or exchange.options.get("defaultType") in ("swap", "future")
    market_type = "linear" if futures else "spot"
    exchange.options["fetchCurrencies"] = False
    exchange.options["fetchMargins"] = False
    exchange.options["fetchMarkets"] = {"types": [market_type]}
    exchange.enableRateLimit = rate_limit
    exceptions = copy.deepcopy(exchange.exceptions)
    specific = exceptions.get(market_type, {})
    for kind in ("exact", "broad"):
        merged = dict(exceptions.get(kind, {}))
        merged.update(specific.get(kind, {}))
        exceptions[kind] = merged
    exchange.exceptions = exceptions
    return exchange
