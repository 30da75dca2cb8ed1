"""`planarpy markets fetch|ls`: store markets' rules from an exchange, list the known ones."""

from __future__ import annotations

import argparse
from typing import Any

from .. import validate as V
from ..config import load_config
from ..core.errors import PlanarError
from ..core.market import Market
from .data import EXCHANGE_HELP, exchange_options, open_exchange
from .main import example


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "markets", help="fetch and list markets' rules (precision, limits, fees, type)",
        description="Markets' trading rules: those bundled with planarpy, those fetched "
                    "into the data store, and planar.toml's [markets.EXCHANGE].",
        epilog=example("planarpy markets fetch binance BTC/USDT ETH/USDT",
                       "planarpy markets ls binance"))
    sub = p.add_subparsers(dest="markets_command", metavar="ACTION", required=True)
    f = sub.add_parser("fetch", help="store markets' rules from the exchange (through ccxt)",
                       description="Load the exchange's markets through ccxt and store the "
                                   "rules of the symbols named (default: every spot, swap "
                                   "and future market) in the data store, where backtests "
                                   "find them.",
                       epilog=example("planarpy markets fetch binance BTC/USDT",
                                      "planarpy markets fetch binance ETH/BTC "
                                      "--exchange-url http://127.0.0.1:8765"))
    f.add_argument("exchange", metavar="EXCHANGE", help=EXCHANGE_HELP)
    f.add_argument("symbols", metavar="SYMBOL", nargs="*", help="unified symbols, e.g. BTC/USDT")
    exchange_options(f)
    f.set_defaults(func=run_fetch)
    ls = sub.add_parser("ls", help="list the markets a backtest of EXCHANGE can use",
                        epilog=example("planarpy markets ls binance"))
    ls.add_argument("exchange", metavar="EXCHANGE", help="exchange id, e.g. binance")
    ls.add_argument("--data-dir", metavar="DIR", type=V.flag(V.existing_dir()),
                    help="data store directory (default: $PLANARPY_DATA or ./user/data)")
    ls.add_argument("--config", help="config file (default user/planar.toml)")
    ls.set_defaults(func=run_ls)


def run_fetch(args: argparse.Namespace) -> int:
    from ..data.fetch import narrow_market_types, retrying, save_markets
    from ..data.store import OHLCVStore

    exchange = open_exchange(args)
    if args.symbols and all(":" not in s for s in args.symbols):
        narrow_market_types(exchange, args.symbols[0])  # spot only: fewer requests
    retrying(exchange.load_markets, f"{exchange.id}: loading markets", retries=args.retries,
             backoff=1.0)
    symbols = args.symbols or usable(exchange.markets, exchange.precisionMode)
    root = OHLCVStore(args.data_dir).root
    path = save_markets(exchange, symbols, root, int(exchange.milliseconds()))
    markets = [Market.from_ccxt(exchange.markets[s], exchange.precisionMode) for s in symbols]
    print(f"{exchange.id}: the rules of {len(markets)} market(s) stored in {path}")
    for m in markets[:50]:
        print(f"  {describe(m)}")
    if len(markets) > 50:
        print(f"  ... and {len(markets) - 50} more (planarpy markets ls {exchange.id})")
    return 0


def usable(markets: dict[str, Any], precision_mode: int) -> list[str]:
    """The symbols of the spot, swap and future markets a backtest can use."""
    out = []
    for sym, m in markets.items():
        try:
            Market.from_ccxt(m, precision_mode)
        except PlanarError:
            continue
        out.append(sym)
    return out


def describe(m: Market) -> str:
    """One market's rules on one line."""
    return (f"{m.symbol:<16} {m.kind:<6} amount step {m.amount_step:g}, price step "
            f"{m.price_step:g}, min amount {m.min_amount:g}, min cost {m.min_cost:g} "
            f"{m.quote}, maker {m.maker:g}, taker {m.taker:g}")


def run_ls(args: argparse.Namespace) -> int:
    from ..data.markets import stored_markets
    from ..data.sample import sample_markets
    from ..data.sources import markets_for

    cfg = load_config(args.config)
    markets = markets_for(args.exchange, cfg, args.data_dir)
    if not markets:
        print(f"no markets known for {args.exchange}: fetch them with `planarpy markets "
              f"fetch {args.exchange} SYMBOL`, or describe them under "
              f"[markets.{args.exchange}] in planar.toml")
        return 0
    try:
        bundled = set(sample_markets(args.exchange))
    except KeyError:
        bundled = set()
    stored = set(stored_markets(args.exchange, args.data_dir))
    configured = set(((cfg.get("markets") or {}).get(args.exchange) or {}))
    for sym, m in sorted(markets.items()):
        where = "planar.toml" if sym in configured else "stored" if sym in stored else \
            "bundled" if sym in bundled else "?"
        print(f"{describe(m)}  ({where})")
    return 0
