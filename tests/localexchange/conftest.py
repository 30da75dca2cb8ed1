"""Clients of the local exchange: real ccxt instances pointed at the `local_exchange` fixture."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import ccxt
import ccxt.pro
import pytest

from planarpy.data.sample import sample_markets
from planarpy.localexchange import Clock, LocalExchange, point_ccxt

from tapekit import T0, by_minute

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


@pytest.fixture
def spot_lx(local_exchange_factory: Any) -> LocalExchange:
    """XRP/ETH: 0.0015 (history), then 0.00152, 0.00149, 0.00146, 0.00150 a minute apart."""
    m = sample_markets("binance")[SPOT]
    return local_exchange_factory(markets=[m], clock=Clock(start=T0), origin=T0,
                                  data={SPOT: by_minute([0.0015, 0.00152, 0.00149, 0.00146, 0.0015], 500.0)})


@pytest.fixture
def perp_lx(local_exchange_factory: Any) -> LocalExchange:
    """XRP/USDT:USDT: 1.0 (history), then 1.02, 1.05, 1.03, 1.00, 0.97 a minute apart."""
    m = sample_markets("binanceusdm")[PERP]
    return local_exchange_factory(markets=[m], clock=Clock(start=T0), origin=T0,
                                  data={PERP: by_minute([1.0, 1.02, 1.05, 1.03, 1.00, 0.97], 500.0)})
