"""ccxt clients built from planar.toml: keys, URL overrides, time sync, rate limits."""

from .client import ExchangeConfig, close_client, exchange_config, open_client, rewrite_urls
from .keys import ApiKeys, load_keys

__all__ = ["ApiKeys", "ExchangeConfig", "close_client", "exchange_config", "load_keys",
           "open_client", "rewrite_urls"]
