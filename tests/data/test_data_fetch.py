"""Downloading candles with the real ccxt client from the local klines server."""

from __future__ import annotations

from typing import Any

import ccxt
import numpy as np
import pytest

from planarpy.core.errors import DataError, UnknownSymbol
from planarpy.data.fetch import (FetchFailed, fetch_candles, narrow_market_types, open_exchange,
                                 retrying)
from planarpy.data.ohlcv import OHLCV, find_gaps
from planarpy.data.store import OHLCVStore

M = 60_000


def client(server: Any) -> ccxt.Exchange:
    return open_exchange("binance", url=server.url, rate_limit=False)


def fetch(server: Any, store: OHLCVStore, symbol: str = "XRP/ETH", timeframe: str = "1m",
          **kw: Any) -> Any:
    kw.setdefault("backoff", 0.001)
    return fetch_candles(client(server), store, symbol, timeframe, **kw)


def same(a: OHLCV, b: OHLCV) -> bool:
    return len(a) == len(b) and all(np.array_equal(getattr(a, c), getattr(b, c)) for c in
                                    ("timestamp", "open", "high", "low", "close", "volume"))


def test_url_override_keeps_paths() -> None:
    """Every REST URL moves to the new host with its path kept; WebSocket URLs keep theirs
    under their host's first label."""
    from planarpy.exchanges import rewrite_urls
    api = {"public": "https://api.binance.com/api/v3", "ws": {"spot": "wss://stream.binance.com:9443/ws"},
           "list": ["https://fapi.binance.com/fapi/v1"], "n": 3}
    assert rewrite_urls(api, "http://127.0.0.1:81/") == {
        "public": "http://127.0.0.1:81/api/v3", "ws": {"spot": "ws://127.0.0.1:81/stream/ws"},
        "list": ["http://127.0.0.1:81/fapi/v1"], "n": 3}


def test_open_exchange_rewrites_every_rest_url() -> None:
    """The ccxt instance sends everything to the override; unknown ids are named."""
    ex = open_exchange("binance", url="http://127.0.0.1:9")
    urls = [u for u in ex.urls["api"].values() if isinstance(u, str)]
    assert urls and all(u.startswith("http://127.0.0.1:9/") for u in urls)
    assert ex.enableRateLimit and ex.options["fetchCurrencies"] is False
    with pytest.raises(UnknownSymbol, match="unknown exchange 'binanse'.*binance"):
        open_exchange("binanse")


def test_narrow_market_types() -> None:
    """Spot symbols load spot markets only, contracts the contract types."""
    ex = ccxt.binance()
    narrow_market_types(ex, "ETH/BTC")
    assert ex.options["fetchMarkets"]["types"] == ["spot"]
    ex = ccxt.binance()
    narrow_market_types(ex, "XRP/USDT:USDT")
    assert ex.options["fetchMarkets"]["types"] == ["linear", "inverse"]


def test_download_pages_through_the_range(server: Any, store: OHLCVStore, xrp: OHLCV) -> None:
    """A range larger than one page is fetched page by page; every real candle is stored."""
    report = fetch(server, store, since=0, limit=400)
    assert report.added == len(xrp) and report.requests == len(server.requests) == 8
    assert all(r["limit"] == "400" for r in server.requests)
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp)
    assert sum(g.missing for g in report.gaps) == sum(g.missing for g in find_gaps(xrp.timestamp, "1m"))


def test_since_until_bound_the_download(server: Any, store: OHLCVStore, xrp: OHLCV) -> None:
    """--since and --until (exclusive) select open times; the exchange's max page is used."""
    lo, hi = int(xrp.timestamp[100]), int(xrp.timestamp[600])
    report = fetch(server, store, since=lo, until=hi)
    assert report.added == 500 and server.requests[0]["limit"] == "1000"
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp[100:600])


def test_resumes_after_the_last_stored_candle(server: Any, store: OHLCVStore, xrp: OHLCV) -> None:
    """A second fetch asks only for candles after the stored ones and adds exactly those."""
    fetch(server, store, since=0, until=int(xrp.timestamp[1000]))
    server.requests.clear()
    report = fetch(server, store)
    assert int(server.requests[0]["startTime"]) == int(xrp.timestamp[999]) + M
    assert report.added == len(xrp) - 1000
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp)
    again = fetch(server, store)
    assert again.added == 0 and "up to date" in str(again)


def test_since_before_stored_prepends(server: Any, store: OHLCVStore, xrp: OHLCV) -> None:
    """Asking for earlier candles than stored fetches and prepends them, then resumes."""
    fetch(server, store, since=int(xrp.timestamp[1000]), until=int(xrp.timestamp[2000]))
    report = fetch(server, store, since=0, limit=300)
    assert report.added == len(xrp) - 1000
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp)


def test_failure_mid_download_keeps_pages(server: Any, store: OHLCVStore, xrp: OHLCV) -> None:
    """Pages already committed survive a failure; the rerun completes the series."""
    ex = client(server)
    ex.fetch_ohlcv = _spy(ex.fetch_ohlcv, server)
    with pytest.raises(FetchFailed, match=r"still failing after 2 retries.*the 300 candles "
                                          r"stored before this are kept"):
        fetch_candles(ex, store, "XRP/ETH", "1m", since=0, limit=300, retries=2, backoff=0.001)
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp[:300])
    fetch(server, store, limit=300)
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp)


def _spy(fetch_ohlcv: Any, server: Any) -> Any:
    """Make the server fail three times from the second request on (wraps the real client)."""
    calls = {"n": 0}

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            server.fail_next = [503] * 3
        return fetch_ohlcv(*args, **kwargs)
    return wrapped


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_transient_errors_are_retried(server: Any, store: OHLCVStore, xrp: OHLCV,
                                      status: int) -> None:
    """5xx and 429 answers are retried with backoff and the download completes."""
    server.fail_next = [status, status]
    slept: list[float] = []
    report = fetch_candles(client(server), store, "XRP/ETH", "1m", since=0, backoff=0.5,
                           sleep=slept.append)
    assert report.retries == 2 and slept == [0.5, 1.0]
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp)


def test_retries_give_up_with_a_clear_message(server: Any, store: OHLCVStore) -> None:
    """A server that keeps failing ends the fetch with FetchFailed; nothing is stored."""
    server.fail_next = [503] * 10
    with pytest.raises(FetchFailed, match=r"binance XRP/ETH 1m: fetching candles from .* still "
                                          r"failing after 3 retries: ExchangeNotAvailable"):
        fetch(server, store, since=0, retries=3)
    assert store.info("binance", "XRP/ETH", "1m") is None


def test_retrying_does_not_retry_permanent_errors() -> None:
    """A non-transient ccxt error stops at once."""
    calls = []

    def boom() -> None:
        calls.append(1)
        raise ccxt.BadRequest("nope")

    with pytest.raises(FetchFailed, match="job: BadRequest: nope"):
        retrying(boom, "job", retries=5, backoff=0, sleep=lambda s: None)
    assert len(calls) == 1


def test_unknown_symbol_is_named(server: Any, store: OHLCVStore) -> None:
    """A symbol the exchange does not list is named, with close matches."""
    with pytest.raises(UnknownSymbol, match=r"'XRP/ETc' is not in binance's markets "
                                            r"\(did you mean 'XRP/ETH'\?\)"):
        fetch(server, store, "XRP/ETc", since=0)
    assert not server.requests and not store.series()


def test_unknown_timeframe_is_named(server: Any, store: OHLCVStore) -> None:
    """A timeframe the exchange does not offer is named with the ones it has."""
    with pytest.raises(DataError, match=r"binance has no timeframe '7m' for XRP/ETH; it has: 1s, 1m"):
        fetch(server, store, "XRP/ETH", "7m", since=0)
    assert not server.requests and not store.series()


def test_empty_range_is_reported_and_changes_nothing(server: Any, store: OHLCVStore,
                                                     xrp: OHLCV) -> None:
    """A range with no candles names the market; stored candles stay as they were."""
    with pytest.raises(DataError, match=r"binance XRP/ETH 1m: the exchange has no candles from "
                                        r"2021-01-01T00:00Z to 2021-02-01T00:00Z; nothing was stored"):
        fetch(server, store, since=1609459200000, until=1612137600000)
    assert store.info("binance", "XRP/ETH", "1m") is None
    fetch(server, store, since=0)
    with pytest.raises(DataError, match=r"no candles from 2021-01-01.*stored: 2019-10-11"):
        fetch(server, store, since=1609459200000, until=1612137600000)
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp)


def test_first_fetch_needs_since(server: Any, store: OHLCVStore) -> None:
    """With nothing stored, a start time is required (and the message says how)."""
    with pytest.raises(DataError, match="nothing stored yet.*--since"):
        fetch(server, store)


def test_until_before_since_is_refused(server: Any, store: OHLCVStore) -> None:
    with pytest.raises(DataError, match="is not after --since"):
        fetch(server, store, since=10 * M, until=5 * M)


def test_derived_interval_from_server(server: Any, store: OHLCVStore, ethbtc: OHLCV) -> None:
    """A timeframe the exchange aggregates (1h from the 5m source) is stored as served."""
    report = fetch(server, store, "ETH/BTC", "1h", since=0)
    assert report.added > 400 and store.timeframes("binance", "ETH/BTC") == ["1h"]


def test_candle_still_open_is_not_stored(server: Any, store: OHLCVStore, xrp: OHLCV) -> None:
    """Only closed candles are stored: the one still forming at 'now' waits for the next fetch."""
    ex = client(server)
    now = int(xrp.timestamp[500]) + 30_000  # half way through candle 500
    ex.milliseconds = lambda: now
    report = fetch_candles(ex, store, "XRP/ETH", "1m", since=0, backoff=0.001)
    assert report.added == 500 and report.last == xrp.timestamp[499]
    fetch(server, store)
    assert same(store.load("binance", "XRP/ETH", "1m"), xrp)
