"""Signed requests as Binance checks them: API key, HMAC-SHA256 signature, timestamp window."""

from __future__ import annotations

import asyncio

import ccxt
import ccxt.pro
import pytest

from planarpy.localexchange import point_ccxt
from planarpy.localexchange.auth import Credentials, split_signature

SPOT = "XRP/ETH"


def make(cls, lx, key=None, secret=None):
    ex = cls({"apiKey": key or lx.api_key, "secret": secret or lx.secret, "timeout": 5000})
    point_ccxt(ex, lx.url)
    return ex


def test_wrong_secret_is_authentication_error(local_exchange):
    """A signature made with the wrong secret is -1022, which ccxt raises as AuthenticationError."""
    ex = make(ccxt.binance, local_exchange, secret="not-the-secret")
    ex.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        ex.fetch_balance()


def test_unknown_api_key_is_authentication_error(local_exchange):
    """An API key the exchange does not know is -2015 (HTTP 401): AuthenticationError."""
    ex = make(ccxt.binanceusdm, local_exchange, key="nobody")
    ex.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        ex.fetch_balance()


def test_stale_and_future_timestamps_are_invalid_nonce(local_exchange):
    """A timestamp older than recvWindow, or more than 1 s ahead, is -1021: InvalidNonce."""
    ex = make(ccxt.binance, local_exchange)
    ex.load_markets()
    ex.options["timeDifference"] = 20_000  # nonce 20 s behind; ccxt's recvWindow is 10 s
    with pytest.raises(ccxt.InvalidNonce, match="outside of the recvWindow"):
        ex.fetch_balance()
    ex.options["timeDifference"] = -5_000
    with pytest.raises(ccxt.InvalidNonce, match="ahead"):
        ex.fetch_balance()
    ex.options["timeDifference"] = 0
    assert ex.fetch_balance()["ETH"]["total"] == 100


def test_recv_window_limit(local_exchange):
    """recvWindow above 60000 is rejected with -1131 (BadRequest)."""
    ex = make(ccxt.binance, local_exchange)
    ex.load_markets()
    with pytest.raises(ccxt.BadRequest, match="-1131"):
        ex.fetch_balance({"recvWindow": 70_000})


def test_websocket_login_with_wrong_secret_fails(local_exchange):
    """The WebSocket API rejects a bad signature; ccxt.pro surfaces it as (or wrapping) AuthenticationError."""
    async def main():
        ex = make(ccxt.pro.binance, local_exchange, secret="wrong")
        try:
            await ex.load_markets()
            with pytest.raises((ccxt.AuthenticationError, KeyError)) as info:
                await asyncio.wait_for(ex.watch_orders(SPOT), 3)
            err = info.value
            assert isinstance(err, ccxt.AuthenticationError) or isinstance(err.__context__, ccxt.AuthenticationError)
        finally:
            await ex.close()
    asyncio.run(main())


def test_signature_payload_is_query_then_body():
    """The signed payload is the query string followed by the body, without the signature parameter."""
    c = Credentials("k", "s")
    assert split_signature("a=1&signature=ab", "") == ("a=1", "ab")
    assert split_signature("", "a=1&b=2&signature=cd") == ("a=1&b=2", "cd")
    assert split_signature("x=1", "a=2&signature=ef") == ("x=1a=2", "ef")
    assert "s" not in repr(c).replace("Credentials", "").replace("api_key", "")
