"""Replay source, clock, URL pointing and the `planarpy exchange` command."""

from __future__ import annotations

import argparse
import time

import ccxt
import numpy as np
import pytest

from planarpy.cli import exchange as cli_exchange
from planarpy.data.ohlcv import load_csv
from planarpy.data.sample import sample_path, trades_path
from planarpy.localexchange import TEST_KEY, TEST_SECRET, Clock, load_feed, local_url, point_ccxt
from planarpy.localexchange.replay import HOUR_MS, from_candles

from livekit import eventually


def test_candle_ticks_rebuild_the_candles():
    """Four ticks per candle aggregate back to exactly the source candles."""
    raw = load_csv(sample_path("binanceusdm", "XRP/USDT:USDT", "5m"))
    feed = from_candles(raw)
    rows = feed.klines(300_000, int(raw.timestamp[-1]) + 300_000, start=int(raw.timestamp[0]), limit=1000)
    got = np.array([[r[0], *map(float, r[1:6])] for r in rows])
    want = np.array(raw[:1000].to_rows())
    assert np.allclose(got, want)


def test_trades_csv_and_shift():
    """A trades CSV replays trade by trade; shifting moves it by whole hours onto the clock start."""
    feed = load_feed(trades_path("binance", "XRP/ETH"))
    assert len(feed) == 12477 and feed.buyer_maker[0]  # the first trade is a sell
    start = 1_800_000_000_000
    moved = feed.shifted(start)
    shift = int(moved.ts[0] - feed.ts[0])
    assert shift % HOUR_MS == 0
    assert moved.ts[moved.pos - 1] <= start < moved.ts[moved.pos]


def test_an_origin_after_the_clock_start_moves_the_replay_an_hour_earlier():
    """The replay moves by whole hours to put `origin` at or before the clock's start: an
    origin 1 ms after it (a clock read just after its start) lands an hour earlier."""
    raw = load_csv(sample_path("binance", "ETH/BTC", "5m"))
    feed = from_candles(raw)
    origin = int(raw.timestamp[100]) // HOUR_MS * HOUR_MS
    start = 1_800_000_000_000 // HOUR_MS * HOUR_MS
    assert int(feed.shifted(start, origin).ts[0] - feed.ts[0]) == start - origin
    assert int(feed.shifted(start, origin + 1).ts[0] - feed.ts[0]) == start - origin - HOUR_MS
    assert int(feed.shifted(start - 1, origin).ts[0] - feed.ts[0]) == start - origin - HOUR_MS


def test_clock_modes():
    """A stepped clock moves only when stepped; an accelerated one runs `speed` times the wall clock."""
    c = Clock(start=1000)
    assert c.now() == 1000 and c.step(500) == 1500 and c.set(1200) == 1500
    fast = Clock(start=0, speed=1000.0)
    time.sleep(0.05)  # the scenario: 50 ms of wall time pass (at least)
    assert fast.now() >= 40_000
    with pytest.raises(RuntimeError):
        fast.step(1)


def test_accelerated_exchange_replays_by_itself(local_exchange_factory):
    """With speed=600, trades are replayed in the background without any step."""
    lx = local_exchange_factory(clock=Clock(speed=600.0))
    before = lx.engine.spot["XRPETH"].feed.pos
    eventually(lambda: lx.engine.spot["XRPETH"].feed.pos > before)


def test_point_rewrites_every_url(local_exchange):
    """point_ccxt rewrites nested REST and WebSocket URLs to the local address, keeping paths."""
    assert local_url("https://fapi.binance.com/fapi/v1", "http://127.0.0.1:9") == "http://127.0.0.1:9/fapi/v1"
    assert local_url("wss://stream.binance.com:9443/ws", "http://127.0.0.1:9") == "ws://127.0.0.1:9/stream/ws"
    ex = point_ccxt(ccxt.binance(), local_exchange.url)
    flat = []
    def walk(node):
        for v in node.values():
            walk(v) if isinstance(v, dict) else flat.append(v)
    walk(ex.urls["api"])
    assert flat and all(u.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")) for u in flat)
    assert ex.options["fetchMarkets"] == {"types": ["spot"]} and ex.enableRateLimit is False


def test_cli_registers_exchange_serve():
    """`planarpy exchange serve --port --data --speed` parses into the serve handler."""
    parser = argparse.ArgumentParser()
    cli_exchange.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["exchange", "serve", "--port", "0", "--speed", "60",
                              "--data", "XRP/ETH=x.csv"])
    assert args.func is cli_exchange.handler and args.speed == 60 and args.data == ["XRP/ETH=x.csv"]
    assert args.account == []


def test_cli_serve_refuses_a_bad_account_name():
    """A repeated or odd --account name is refused before anything starts, naming it."""
    from planarpy.core.errors import ConfigError
    parser = argparse.ArgumentParser()
    cli_exchange.register(parser.add_subparsers(dest="command"))
    for bad in (["--account", "a b"], ["--account", "x", "--account", "x"], ["--account", "test"]):
        args = parser.parse_args(["exchange", "serve", *bad])
        with pytest.raises(ConfigError, match="--account takes distinct plain names"):
            args.func(args)


def test_cli_serve_with_a_second_account(tmp_path):
    """`exchange serve --account other` prints the account's keys, and they trade on their own
    balances: the default account's are untouched."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "planarpy.cli.main", "exchange", "serve",
                             "--port", "0", "--account", "other"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        url = lines[0].split()[3]
        assert any("account other: api key other-key, secret other-secret" in x for x in lines)
        other = point_ccxt(ccxt.binance({"apiKey": "other-key", "secret": "other-secret"}), url)
        other.load_markets()
        assert other.create_order("XRP/ETH", "market", "buy", 100)["filled"] == 100
        assert other.fetch_balance()["XRP"]["total"] == pytest.approx(100_100 - 0.1)  # taker fee in XRP
        mine = point_ccxt(ccxt.binance({"apiKey": TEST_KEY, "secret": TEST_SECRET}), url)
        assert mine.fetch_balance()["XRP"]["total"] == 100000
    finally:
        proc.terminate()
        proc.wait(10)
