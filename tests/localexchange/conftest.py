"""Clients of the local exchange: real ccxt instances pointed at the `local_exchange` fixture."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import ccxt
import ccxt.pro
import pytest

from planarpy.localexchange import LocalExchange, point_ccxt

SPOT = "XRP/ETH"
PERP = "XRP/USDT:USDT"


def client(cls: Any, lx: LocalExchange, **config: Any) -> Any:
    ex = cls({"apiKey": lx.api_key, "secret": lx.secret, "timeout": 5000, **config})
    return point_ccxt(ex, lx.url)


@pytest.fixture
def spot(local_exchange: LocalExchange) -> Any:
    ex = client(ccxt.binance, local_exchange)
    ex.load_markets()
    return ex


@pytest.fixture
def usdm(local_exchange: LocalExchange) -> Any:
    ex = client(ccxt.binanceusdm, local_exchange)
    ex.load_markets()
    return ex


@pytest.fixture
def run_pro(local_exchange: LocalExchange) -> Callable[..., Any]:
    """Run `body(exchange)` with a loaded ccxt.pro client (binance or binanceusdm), then close it."""
    def run(body: Callable[[Any], Awaitable[Any]], cls: Any = ccxt.pro.binance) -> Any:
        async def main() -> Any:
            ex = client(cls, local_exchange)
            try:
                await ex.load_markets()
                return await body(ex)
            finally:
                await ex.close()
        return asyncio.run(main())
    return run
