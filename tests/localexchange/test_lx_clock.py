"""An exchange whose one clock runs ahead of or behind the local machine's, in real time."""

from __future__ import annotations

import argparse

import ccxt
import pytest

from planarpy.cli import exchange as cli_exchange
from planarpy.core.errors import ConfigError
from planarpy.localexchange import point_ccxt
from planarpy.localexchange.clock import Clock, wall_ms


@pytest.mark.parametrize("offset", [97_000, -143_000])
def test_server_time_follows_a_clock_ahead_or_behind(local_exchange_factory, offset):
    """/time answers the market clock, offset from the wall clock; a ccxt client that
    measures the offset signs requests the exchange accepts; no kline opens after the
    exchange's time."""
    lx = local_exchange_factory(clock=Clock.wall(offset))
    ex = point_ccxt(ccxt.binance({"apiKey": lx.api_key, "secret": lx.secret,
                                  "options": {"adjustForTimeDifference": True}}), lx.url)
    ex.load_markets()
    assert abs(ex.fetch_time() - (wall_ms() + offset)) < 2_000
    assert abs(ex.options["timeDifference"] + offset) < 2_000
    assert ex.fetch_balance()["free"]["ETH"] > 0  # signed with the exchange's time
    assert ex.fetch_ohlcv("XRP/ETH", "1m", limit=1)[-1][0] <= lx.clock.now()


def test_a_stepped_or_accelerated_clock_leaves_server_time_on_the_wall(local_exchange_factory):
    lx = local_exchange_factory(clock=Clock(start=0, speed=None))
    assert abs(lx.server_time() - wall_ms()) < 1_000 and lx.clock.now() == 0


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_exchange.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["exchange", "serve", *argv])


def test_serve_refuses_bad_clock_options():
    with pytest.raises(ConfigError, match="--clock-offset runs the exchange in real time"):
        cli_exchange.handler(parse("--clock-offset", "30", "--speed", "60"))


@pytest.mark.parametrize("argv, message", [
    (["--clock-offset", "nan"], "argument --clock-offset: must be a number from -86400 to "
                                "86400 (seconds), not 'nan'"),
    (["--clock-offset", "100000"], "argument --clock-offset: must be a number from -86400 to "
                                   "86400 (seconds), not '100000'"),
    (["--speed", "0"], "argument --speed: must be a number > 0 (times real time), not '0'"),
])
def test_serve_refuses_bad_clock_flags_as_it_reads_them(argv, message, capsys):
    from planarpy.cli.main import main
    assert main(["exchange", "serve", *argv]) == 2
    assert message in capsys.readouterr().err
