"""Real Binance market data bundled with planarpy, so a first backtest needs no network.

| name | market | candles |
|---|---|---|
| binance_ETH-BTC_5m | spot ETH/BTC, 5m, 2018-01-10 to 2018-01-30 | 5,760 |
| binance_XRP-ETH_1m | spot XRP/ETH, 1m, 2019-10-11 to 2019-10-13 (gaps where no trade) | 2,469 |
| binanceusdm_XRP-USDT-USDT_5m | USD-M perpetual XRP/USDT:USDT, 5m, 2021-11-15 to 2021-11-21 | 1,999 |

binance_XRP-ETH_trades holds every public trade of the same two XRP/ETH days.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ...core.errors import DataError, UnknownSymbol

_HERE = resources.files(__name__)


def sample_path(exchange: str, symbol: str, timeframe: str) -> Path | None:
    """Path of the bundled candles for a market, or None if none are bundled."""
    name = f"{exchange}_{symbol.replace('/', '-').replace(':', '-')}_{timeframe}.csv.gz"
    p = _HERE / name
    return Path(str(p)) if p.is_file() else None


def trades_path(exchange: str, symbol: str) -> Path | None:
    name = f"{exchange}_{symbol.replace('/', '-').replace(':', '-')}_trades.csv.gz"
    p = _HERE / name
    return Path(str(p)) if p.is_file() else None


def sample_markets(exchange: str) -> dict[str, dict[str, Any]]:
    """ccxt-shaped market dicts of the bundled markets of `exchange`."""
    markets = json.loads((_HERE / "markets.json").read_text())
    if exchange not in markets:
        raise UnknownSymbol(f"no bundled markets for exchange {exchange!r}; "
                            f"bundled: {', '.join(sorted(markets))}")
    return markets[exchange]


def list_samples() -> list[str]:
    return sorted(p.name.removesuffix(".csv.gz") for p in _HERE.iterdir()
                  if p.name.endswith(".csv.gz"))


__all__ = ["sample_path", "trades_path", "sample_markets", "list_samples", "DataError"]
