"""`planarpy exchange serve`: run the local Binance-compatible exchange on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .. import validate as V
from ..core.errors import ConfigError, UnknownSymbol
from .main import example


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("exchange", help="the local exchange (Binance-compatible, loopback only)",
                              description="A Binance-compatible exchange on 127.0.0.1 for "
                                          "running strategies end to end without a network.",
                              epilog=example("planarpy exchange serve --speed 60"))
    sub = p.add_subparsers(dest="exchange_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser(
        "serve", help="serve the local exchange until interrupted",
        description="Serve a Binance-compatible exchange (spot and USD-M futures, REST and "
                    "WebSocket) on 127.0.0.1, replaying the bundled real trades and candles "
                    "(or your CSVs), with test accounts whose keys it prints. Point live or "
                    "paper at it with --exchange-url; Ctrl-C stops it.",
        epilog=example("planarpy exchange serve --speed 60",
                       "PLANARPY_BINANCE_API_KEY=lx-test-api-key PLANARPY_BINANCE_SECRET="
                       "lx-test-secret \\\n    planarpy live sma_cross --exchange-url "
                       "http://127.0.0.1:8765"))
    s.add_argument("--port", type=V.flag(V.port()), default=8765,
                   help="port on 127.0.0.1 (0: any free port)")
    s.add_argument("--data", nargs="*", default=[], metavar="SYMBOL=CSV",
                   help="replay CSV (trades or candles) for a bundled market, e.g. XRP/ETH=trades.csv")
    s.add_argument("--speed", type=V.flag(V.positive("times real time")), default=1.0,
                   help="replay speed: 1 is real time, 60 replays a minute per second")
    s.add_argument("--clock-offset", type=V.flag(V.number(-86_400, 86_400, "seconds")),
                   default=None, metavar="SECONDS",
                   help="run the exchange's clock (market and server time) this far ahead of "
                        "the local clock, behind if negative, in real time (speed 1)")
    s.add_argument("--account", action="append", default=[], metavar="NAME",
                   help="another test account, with API key NAME-key and secret NAME-secret and "
                        "the default balances (repeatable): a counterparty, or one per strategy")
    s.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..localexchange import AccountSpec, LocalExchange
    from ..localexchange.clock import Clock
    from ..localexchange.server import bundled_markets

    data = {}
    served = [m.symbol for m in bundled_markets()]
    for item in args.data:
        symbol, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise ConfigError(f"--data expects SYMBOL=CSV with an existing file, got {item!r}")
        if symbol not in served:
            raise UnknownSymbol.among(symbol, served, "the local exchange's markets")
        data[symbol] = path
    offset = args.clock_offset
    if offset is not None and args.speed != 1.0:
        raise ConfigError("--clock-offset runs the exchange in real time: leave --speed at 1")
    names = ["test", *args.account]
    bad = [n for n in args.account if not n.isidentifier() or names.count(n) > 1]
    if bad:
        raise ConfigError(f"--account takes distinct plain names (letters, digits, _), got {bad[0]!r}")
    accounts = [AccountSpec()] + [AccountSpec(name=n, api_key=f"{n}-key", secret=f"{n}-secret")
                                  for n in args.account]
    clock = Clock.wall(int(offset * 1000)) if offset is not None else Clock(speed=args.speed)
    lx = LocalExchange(data=data, clock=clock, port=args.port, accounts=accounts)

    async def serve() -> None:
        async with lx:
            print(f"local exchange at {lx.url} (REST) and {lx.ws_url} (WebSocket)")
            print(f"markets: {', '.join(sorted(s.spec.symbol for s in [*lx.engine.spot.values(), *lx.engine.futures.values()]))}")
            print(f"api key: {lx.api_key}")
            print(f"secret:  {lx.secret}")
            for spec in accounts[1:]:
                print(f"account {spec.name}: api key {spec.api_key}, secret {spec.secret}")
            print("point ccxt with planarpy.localexchange.point_ccxt(exchange, url); Ctrl-C stops")
            await asyncio.Event().wait()

    asyncio.run(serve())
    return 0
