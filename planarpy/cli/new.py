"""`planarpy new NAME [--margin]`: write a commented strategy into strategies/NAME.py.

The file is a complete strategy that trades its market in a backtest as it is (buys a dip
below a moving average and sells the recovery; with --margin, goes long or short on a
moving-average cross with isolated margin), so a new user starts from something that runs
and edits it. Every callback it leaves out is listed in strategies/template.py.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..config import project_dir
from ..core.errors import ConfigError
from .console import say
from .main import example

NAME = re.compile(r"[a-z][a-z0-9_]*")

SPOT = '''"""{cls}: buy a dip below the mean, sell when the price is back above it.

Run it: planarpy sim {name}       (then: planarpy paper {name} ..., planarpy live {name} ...)
Every callback, and what each receives, is in strategies/template.py.
"""

from planarpy import Param, Strategy, call
from planarpy.indicators import sma


class {cls}(Strategy):
    # -- settings: the market, its candles and the starting cash -----------------------
    exchange = "binance"          # ccxt exchange id (its markets: planarpy markets ls binance)
    quote = "BTC"                 # the cash currency
    timeframe = "5m"              # one tick per closed candle of this size
    universe = ("ETH/BTC",)       # the markets traded
    initial_cash = 1.0            # starting cash in sim and paper (live: the account's)
    warmup = 20                   # candles seen before the first tick
    lookback = 20                 # candles each indicator value reads (sma(20): 20)

    # -- parameters: -p window=30 on the command line, or planarpy optimize -r ... -----
    dip = Param(0.98, low=0.9, high=1.0)      # buy below this share of the mean
    stake = Param(0.5, low=0.01, high=0.99)   # share of the free cash per entry

    def indicators(self, ai):
        """Computed once over all candles in a backtest, candle by candle in paper and
        live; value i may read candles <= i only (the backtest checks it)."""
        return {{"mean": sma(ai.ohlcv.close, 20)}}

    def tick(self, ts):
        """Candle `self.i` closed at `ts` (epoch ms); act on what is known now."""
        ai = self.assets[0]
        price = ai.ohlcv.close.item(self.i)
        mean = ai.ind["mean"][self.i]
        if ai.orders:                       # an order is still resting: wait for it
            return
        holding = ai.free_balance >= ai.market.min_amount
        if not holding and price < self.dip * mean:
            amount = ai.floor_amount(self.free_cash * self.stake / price)
            # a Trade (filled), `missing` (accepted, resting) or None (refused: see below)
            call(self, "limit_order", ai, amount, ai.round_price(price), side="buy")
        elif holding and price > mean:
            call(self, "market_order", ai, ai.floor_amount(ai.free_balance), side="sell")

    def on_order_error(self, ai, reason, request):
        """An order was refused (market rules, funds, a risk rule): `call` returned None."""
'''

MARGIN = '''"""{cls}: long when the fast mean crosses above the slow one, short when it crosses
below, on a perpetual swap with isolated margin.

Run it: planarpy sim {name}       (then: planarpy paper {name} ..., planarpy live {name} ...)
Every callback, and what each receives, is in strategies/template.py.
"""

from planarpy import Param, Strategy, call
from planarpy.indicators import crossings, sma


class {cls}(Strategy):
    # -- settings: the market, its candles, the margin mode and the starting cash ------
    exchange = "binanceusdm"      # ccxt exchange id: Binance USD-M futures
    quote = "USDT"                # the settle (cash) currency
    timeframe = "5m"              # one tick per closed candle of this size
    margin = "isolated"           # each position holds its own margin
    universe = ("XRP/USDT:USDT",) # the markets traded (SYMBOL:SETTLE is a swap)
    initial_cash = 1000.0         # starting cash in sim and paper (live: the account's)
    warmup = 50                   # candles seen before the first tick

    # -- parameters: -p fast=12 on the command line, or planarpy optimize -r ... -------
    fast = Param(10, low=2, high=100)
    slow = Param(40, low=5, high=400)
    leverage = Param(3.0, low=1.0, high=10.0)
    stake = Param(0.5, low=0.01, high=0.9)    # share of the free cash used as margin

    @property
    def lookback(self):
        return self.slow + 1          # the cross at i reads the means at i and i - 1

    def indicators(self, ai):
        close = ai.ohlcv.close
        # +1 where fast crosses above slow, -1 below, 0 elsewhere
        return {{"cross": crossings(sma(close, self.fast), sma(close, self.slow))}}

    def start(self):
        """Before the first tick: set the leverage once."""
        call(self, "update_leverage", self.assets[0], self.leverage)

    def tick(self, ts):
        ai = self.assets[0]
        cross = ai.ind["cross"][self.i]
        if not cross:
            return
        want = "long" if cross > 0 else "short"
        pos = ai.open_position()
        if pos is not None:
            if pos.side.value == want:
                return
            call(self, "close_position", ai)      # cancel its orders, close the position
        price = ai.ohlcv.close.item(self.i)
        amount = ai.floor_amount(self.free_cash * self.stake * self.leverage / price)
        call(self, "market_order", ai, amount, side="buy" if want == "long" else "sell",
             pos=want)

    def on_position_close(self, ai, position):
        """A position was closed (by the strategy, or liquidated)."""

    def on_order_error(self, ai, reason, request):
        """An order was refused (market rules, funds, a risk rule): `call` returned None."""
'''


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "new", help="write a commented strategy into strategies/",
        description="Write strategies/NAME.py: a complete, commented strategy that trades "
                    "in a backtest as it is (spot: buys dips below a moving average and "
                    "sells the recovery; --margin: long and short on a moving-average cross "
                    "with isolated margin). strategies/template.py lists every callback.",
        epilog=example("planarpy new my_dip && planarpy sim my_dip",
                       "planarpy new my_trend --margin"))
    p.add_argument("name", metavar="NAME",
                   help="file and strategy name: lowercase letters, digits and _ (my_dip)")
    p.add_argument("--margin", action="store_true",
                   help="a long/short strategy on a perpetual swap with isolated margin")
    p.set_defaults(func=run)


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def run(args: argparse.Namespace) -> int:
    name = args.name
    if not NAME.fullmatch(name):
        raise ConfigError(f"NAME must be lowercase letters, digits and _ starting with a letter "
                          f"(a file and module name), got {name!r}")
    path = project_dir() / "strategies" / f"{name}.py"
    if path.exists():
        raise ConfigError(f"{path} exists already: choose another NAME, or remove it first")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (MARGIN if args.margin else SPOT).format(cls=class_name(name), name=name)
    with open(path, "x", encoding="utf-8") as f:
        f.write(text)
    say(f"wrote {path} (class {class_name(name)}); run it: planarpy sim {name}", out="stdout")
    return 0
