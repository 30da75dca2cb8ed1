"""Building ccxt clients: one shared client (and so one rate budget) per account."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Mapping
from urllib.parse import urlsplit

import attrs

from .. import validate as V
from ..core.errors import ConfigError
from . import redact
from .keys import ApiKeys, load_keys
from .ratelimit import shared_budget
from .venues import venue_for


@attrs.frozen(slots=True)
class ExchangeConfig:
    """How to reach one exchange account.

    `url` replaces the scheme and host of every REST and WebSocket endpoint (a testnet, a
    proxy, the local exchange); `sandbox` uses ccxt's testnet URLs instead.
    """

    name: str
    id: str
    url: str | None = None
    sandbox: bool = False
    rate_limit: bool = True
    rate_limit_ms: float | None = None  # ms per unit of request cost; None: ccxt's figure
    options: Mapping[str, Any] = attrs.field(factory=dict)
    keys: str | None = None  # key file / env name; defaults to `name`
    timeout_ms: int | None = None  # per-request timeout (ccxt's default is 10 s)
    on_stop: str | None = None  # this account's default for stopping runs (see ON_STOP)


ON_STOP = ("keep", "cancel", "close")  # what a stopping run does with its orders and positions
HAND_ORDERS = ("adopt", "ignore")  # what live mode does with orders placed by hand

_EXCHANGE_KEYS = {
    "id": V.nonempty(), "url": V.url(), "sandbox": V.boolean(), "rate_limit": V.boolean(),
    "rate_limit_ms": V.positive("milliseconds per unit of request cost"),
    "options": V.table(), "keys": V.nonempty(), "timeout": V.count("milliseconds"),
    "on_stop": V.one_of(*ON_STOP),
}


def exchange_config(name: str, settings: Mapping[str, Any] | None = None,
                    url: str | None = None) -> ExchangeConfig:
    """The [exchanges.NAME] table of planar.toml (all optional), with `url` overriding."""
    exchanges = (settings or {}).get("exchanges") or {}
    if not isinstance(exchanges, Mapping):
        raise ConfigError(f"[exchanges] must be a table, not {exchanges!r}")
    table = V.read_table(exchanges.get(name), _EXCHANGE_KEYS, f"[exchanges.{name}]")
    target = V.url().value(url, "exchange url") if url is not None else table.get("url")
    return ExchangeConfig(name=name, id=table.get("id", name), url=target,
                          sandbox=table.get("sandbox", False),
                          rate_limit=table.get("rate_limit", True),
                          rate_limit_ms=table.get("rate_limit_ms"),
                          options=table.get("options", {}), keys=table.get("keys"),
                          timeout_ms=table.get("timeout"), on_stop=table.get("on_stop"))


def rewrite_urls(urls: Any, base: str) -> Any:
    """ccxt's nested `urls['api']` moved onto one endpoint `base`.

    REST URLs keep their path (`https://fapi.binance.com/fapi/v1` -> `BASE/fapi/v1`).
    WebSocket URLs keep their path under the first label of their host
    (`wss://fstream.binance.com/ws` -> `ws://BASE-HOST/fstream/ws`): one endpoint serves the
    several hosts ccxt talks to, and ccxt, which tells spot streams by `/stream` in the URL,
    still does. A path of `base` (`https://proxy/binance`) goes in front of both.
    """
    target = urlsplit(base)
    prefix = target.path.rstrip("/")
    ws_scheme = "wss" if target.scheme == "https" else "ws"
    if isinstance(urls, str):
        parts = urlsplit(urls)
        if parts.scheme in ("http", "https"):
            return parts._replace(scheme=target.scheme, netloc=target.netloc,
                                  path=prefix + parts.path).geturl()
        if parts.scheme in ("ws", "wss"):
            label = (parts.hostname or "").split(".")[0]
            return parts._replace(scheme=ws_scheme, netloc=target.netloc,
                                  path=f"{prefix}/{label}{parts.path}").geturl()
        return urls
    if isinstance(urls, Mapping):
        return {k: rewrite_urls(v, base) for k, v in urls.items()}
    if isinstance(urls, list):
        return [rewrite_urls(v, base) for v in urls]
    return urls


_CLIENTS: dict[tuple[str, str, str, int], list[Any]] = {}  # key -> [client, users]
_CLIENTS_LOCK = threading.Lock()  # engine threads open and close clients


def open_client(cfg: ExchangeConfig, keys: ApiKeys | None = None, *, pro: bool = True) -> Any:
    """The shared async ccxt client of this account (ccxt.pro when `pro`).

    Strategies using the same exchange, URL and key on one event loop share one client.
    Every client of an account, on any loop, spends one rate budget (`shared_budget`).
    Release it with `close_client`.
    """
    keys = keys if keys is not None else load_keys(cfg.keys or cfg.name)
    key = (cfg.id, cfg.url or "", keys.api_key, id(asyncio.get_running_loop()))
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(key)
        if entry is None:
            entry = _CLIENTS[key] = [_build(cfg, keys, pro), 0]
        entry[1] += 1
        return entry[0]


async def close_client(client: Any) -> None:
    """Release a client from `open_client`; the last user closes it."""
    with _CLIENTS_LOCK:
        for key, entry in list(_CLIENTS.items()):
            if entry[0] is client:
                entry[1] -= 1
                if entry[1] > 0:
                    return
                del _CLIENTS[key]
                break
    try:
        await client.close()
    except Exception:  # closing a broken connection must not hide the real error
        pass


def _build(cfg: ExchangeConfig, keys: ApiKeys, pro: bool) -> Any:
    redact.install()  # before the client can log a signed request
    redact.remember(keys.api_key, keys.secret, keys.password)
    if pro:
        import ccxt.pro as module
    else:
        import ccxt.async_support as module
    cls = getattr(module, cfg.id, None)
    if cls is None:
        raise ConfigError(f"ccxt has no exchange {cfg.id!r}")
    options: dict[str, Any] = {"adjustForTimeDifference": True, "fetchCurrencies": False,
                               "fetchMargins": False}
    # ccxt.pro re-filters its whole cache of orders and trades on every message: planarpy
    # keeps its own state and reads each update as it comes, so small caches suffice
    options.update(ordersLimit=100, tradesLimit=200)
    venue = venue_for(cfg.id)
    options.update(venue.client_options())
    options.update(cfg.options)
    client = cls({**keys.ccxt(), "enableRateLimit": cfg.rate_limit, "options": options})
    if cfg.rate_limit:
        if cfg.rate_limit_ms is not None:
            client.rateLimit = cfg.rate_limit_ms
        budget = shared_budget(cfg.id, cfg.url or "", keys.api_key, client.rateLimit)
        client.throttle = budget.take  # ccxt awaits self.throttle(cost) before each request
    if cfg.timeout_ms is not None:
        client.timeout = cfg.timeout_ms
    if cfg.sandbox:
        client.set_sandbox_mode(True)
    if cfg.url:
        client.urls["api"] = rewrite_urls(client.urls["api"], cfg.url)
    venue.prepare(client, url_overridden=bool(cfg.url))
    return client
