"""`planarpy exchange serve`: run the local Binance-compatible exchange on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from ..core.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("exchange", help="the local exchange (Binance-compatible, loopback only)")
    sub = p.add_subparsers(dest="exchange_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser("serve", help="serve the local exchange until interrupted")
    s.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)")
    s.add_argument("--data", nargs="*", default=[], metavar="SYMBOL=CSV",
                   help="replay CSV (trades or candles) for a bundled market, e.g. XRP/ETH=trades.csv")
    s.add_argument("--speed", type=float, default=1.0,
                   help="replay speed: 1 is real time, 60 replays a minute per second")
    s.add_argument("--clock-offset", type=float, default=None, metavar="SECONDS",
                   help="run the exchange's clock (market and server time) this far ahead of "
                        "the local clock, behind if negative, in real time (speed 1)")
    s.add_argument("--account", action="append", default=[], metavar="NAME",
                   help="another test account, with API key NAME-key and secret NAME-secret and "
                        "the default balances (repeatable): a counterparty, or one per strategy")
    s.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from ..localexchange import AccountSpec, LocalExchange
    from ..localexchange.clock import Clock

    data = {}
    for item in args.data:
        symbol, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise ConfigError(f"--data expects SYMBOL=CSV with an existing file, got {item!r}")
        data[symbol] = path
    if not args.speed > 0 or args.speed == float("inf"):
        raise ConfigError(f"--speed must be a positive number, got {args.speed:g}")
    offset = args.clock_offset
    if offset is not None and (offset != offset or abs(offset) > 86_400):
        raise ConfigError(f"--clock-offset must be a number of seconds within a day, "
                          f"got {offset:g}")
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
