"""A Binance-compatible exchange on 127.0.0.1 for the real ccxt client (DESIGN.md section 6).

Spot (/api/v3) and USD-M futures (/fapi) over REST and WebSocket, a matching engine over
replayed market data, accounts with exact accounting, and faults switchable at run time.

    with LocalExchange() as lx:                      # bundled markets, stepped clock
        ex = point_ccxt(ccxt.binance({"apiKey": lx.api_key, "secret": lx.secret}), lx.url)
        ex.load_markets()
        lx.step(60_000)                              # replay one minute of market data
        lx.faults.update({"withhold_user": True})    # switch a fault on
"""

from .accounts import Account, Balance, Position
from .auth import BinanceError, Credentials
from .clock import Clock
from .faults import Faults
from .point import local_url, point_ccxt
from .replay import Feed, load_feed
from .server import TEST_KEY, TEST_SECRET, AccountSpec, LocalExchange, bundled_markets

__all__ = [
    "Account", "AccountSpec", "Balance", "BinanceError", "Clock", "Credentials", "Faults", "Feed",
    "LocalExchange", "Position", "TEST_KEY", "TEST_SECRET", "bundled_markets", "load_feed",
    "local_url", "point_ccxt",
]
