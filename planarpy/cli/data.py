"""`planarpy fetch` and `planarpy data import|ls|rm|upgrade`: fill, inspect, prune and
convert the OHLCV store."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, Iterator

from .. import validate as V
from ..core.errors import DataError, UnknownSymbol
from ..data.ohlcv import check_spacing, iso, load_csv, timeframe_ms
from ..data.store import FORMAT, OHLCVStore, SeriesInfo
from .main import example
from .sim import time_flag


def register(subparsers: Any) -> None:
    """Add the `fetch` and `data` commands."""
    fetch = subparsers.add_parser(
        "fetch", help="download candles from an exchange into the data store",
        description="Download candles through ccxt into the data store, with the market's "
                    "rules (precision, limits, fees, type), so a backtest of a market that "
                    "is not bundled needs nothing else. Resumes after the last stored "
                    "candle; gaps are reported, never filled in.",
        epilog=example("planarpy fetch binance BTC/USDT 1m --since 2024-01-01 --until 2024-02-01",
                       "planarpy fetch binance ETH/BTC 5m --since 2024-01-01 "
                       "--exchange-url http://127.0.0.1:8765"))
    fetch.add_argument("exchange", metavar="EXCHANGE", help=EXCHANGE_HELP)
    fetch.add_argument("symbol", metavar="SYMBOL", help="unified symbol, e.g. BTC/USDT")
    fetch.add_argument("timeframe", metavar="TIMEFRAME", type=_timeframe,
                       help="e.g. 1m, 5m, 1h, 1d")
    fetch.add_argument("--since", type=time_flag,
                       help="first open time: ISO date/time (UTC) or epoch ms; "
                            "needed for the first download of a market")
    fetch.add_argument("--until", type=time_flag,
                       help="stop before this open time (default: now)")
    fetch.add_argument("--limit", type=V.flag(V.count("candles")),
                       help="candles per request (default: the exchange's maximum)")
    exchange_options(fetch)
    bar = fetch.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show a progress bar (default: when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    fetch.set_defaults(func=run_fetch)

    data = subparsers.add_parser(
        "data", help="import, list, check, remove and upgrade stored candles",
        description="Manage the OHLCV data store (default $PLANARPY_DATA, else ./user/data).",
        epilog=example("planarpy data ls --check", "planarpy data rm binance ETH/BTC 1m"))
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import candles from a CSV file",
                         description="Import a CSV (optionally .gz) with columns "
                                     "timestamp,open,high,low,close,volume (epoch ms).",
                         epilog=example("planarpy data import btc.csv --exchange binance "
                                        "--symbol BTC/USDT --timeframe 1m"))
    imp.add_argument("csv", metavar="CSV", type=Path, help="the file to import")
    imp.add_argument("--exchange", required=True, type=V.flag(V.nonempty()),
                     help="exchange id the candles are stored under, e.g. binance")
    imp.add_argument("--symbol", required=True, type=V.flag(V.nonempty()),
                     help="unified symbol they are stored under, e.g. BTC/USDT")
    imp.add_argument("--timeframe", required=True, type=_timeframe,
                     help="the file's timeframe, e.g. 1m (its candles must be on that grid)")
    _data_dir(imp, create=True)
    how = imp.add_mutually_exclusive_group()
    how.add_argument("--skip-existing", action="store_true",
                     help="skip candles identical to stored ones instead of refusing overlaps")
    how.add_argument("--replace", action="store_true",
                     help="replace the stored series with the file's candles")
    imp.set_defaults(func=run_import)
    ls = sub.add_parser("ls", help="list stored series", description="List stored series.",
                        epilog=example("planarpy data ls --check --data-dir user/data"))
    _data_dir(ls)
    ls.add_argument("--check", action="store_true",
                    help="verify every chunk and read every candle; name each damaged chunk")
    ls.set_defaults(func=run_ls)
    rm = sub.add_parser("rm", help="remove stored series",
                        description="Remove the stored candles of a market: the timeframes "
                                    "named, or all of them. Damaged series can be removed "
                                    "too. The market's rules stay.",
                        epilog=example("planarpy data rm binance ETH/BTC 1m",
                                       "planarpy data rm binance XRP/ETH"))
    rm.add_argument("exchange", metavar="EXCHANGE", help="exchange id, e.g. binance")
    rm.add_argument("symbol", metavar="SYMBOL", help="unified symbol, e.g. ETH/BTC")
    rm.add_argument("timeframes", metavar="TIMEFRAME", nargs="*", type=_timeframe,
                    help="the timeframes to remove (default: every stored one)")
    _data_dir(rm)
    rm.set_defaults(func=run_rm)
    up = sub.add_parser("upgrade", help="convert series of an older format to the current one",
                        description="Rewrite every series stored in an older format "
                                    "(planarpy.ohlcv/1, without checksums) in the current "
                                    "one, each atomically.",
                        epilog=example("planarpy data upgrade --data-dir user/data"))
    _data_dir(up)
    up.set_defaults(func=run_upgrade)


EXCHANGE_HELP = "ccxt exchange id (e.g. binance), or an [exchanges.NAME] of planar.toml"


def exchange_options(p: argparse.ArgumentParser) -> None:
    """The options of a command that asks an exchange and writes to the store."""
    _data_dir(p, create=True)
    p.add_argument("--exchange-url", metavar="URL", type=V.flag(V.url()),
                   help="send every REST request to this base URL instead "
                        "(a local exchange, a proxy, a custom endpoint)")
    p.add_argument("--config", help="config file (default user/planar.toml)")
    p.add_argument("--retries", type=V.flag(V.whole(0)), default=5,
                   help="retries of a failing request, with backoff")
    p.add_argument("--no-rate-limit", action="store_true",
                   help="turn off ccxt's client-side rate limiting")


def open_exchange(args: argparse.Namespace) -> Any:
    """A ccxt client for the command's EXCHANGE: its [exchanges.NAME] table of planar.toml
    (each key checked), the --exchange-url and --no-rate-limit flags."""
    from ..config import load_config
    from ..data.fetch import open_exchange as open_client  # ccxt is slow to import
    from ..exchanges import exchange_config

    xcfg = exchange_config(args.exchange, load_config(args.config), url=args.exchange_url)
    return open_client(xcfg.id, url=xcfg.url, options=xcfg.options,
                       rate_limit=xcfg.rate_limit and not args.no_rate_limit,
                       timeout_ms=xcfg.timeout_ms, sandbox=xcfg.sandbox)


def _timeframe(text: str) -> str:
    """An argparse `type=` for a timeframe such as 1m, 5m, 1h or 1d."""
    try:
        timeframe_ms(text)
    except DataError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _data_dir(parser: argparse.ArgumentParser, create: bool = False) -> None:
    """--data-dir: a store to write may be created; one to read must exist."""
    rule = V.Rule("a directory (it is created if missing)", lambda v: not Path(v).exists()
                  or Path(v).is_dir()) if create else V.existing_dir()
    parser.add_argument("--data-dir", type=V.flag(rule), metavar="DIR",
                        help="data store directory (default: $PLANARPY_DATA or ./user/data)")


@contextlib.contextmanager
def _writes(store: OHLCVStore, what: str) -> Iterator[None]:
    """Turn a write the file system refuses (a full disk, a read-only store) into one line
    saying so and what became of the data."""
    try:
        yield
    except OSError as e:
        raise DataError(f"cannot write to the data store {store.root} "
                        f"({e.filename or store.root}: {e.strerror or e}); {what}") from None


def run_fetch(args: argparse.Namespace) -> int:
    from ..data.fetch import fetch_candles

    exchange = open_exchange(args)
    store = OHLCVStore(args.data_dir)
    report = fetch_candles(exchange, store, args.symbol, args.timeframe, since=args.since,
                           until=args.until, limit=args.limit, retries=args.retries,
                           progress=args.progress)
    print(report)
    return 0


def run_import(args: argparse.Namespace) -> int:
    ohlcv = check_spacing(load_csv(args.csv), args.timeframe, str(args.csv))
    store = OHLCVStore(args.data_dir)
    with _writes(store, "the stored candles are as they were; nothing was imported"):
        if args.replace:
            report = store.save(args.exchange, args.symbol, args.timeframe, ohlcv,
                                replace=True, source=str(args.csv))
        else:
            report = store.append(args.exchange, args.symbol, args.timeframe, ohlcv,
                                  on_overlap="skip" if args.skip_existing else "error",
                                  source=str(args.csv))
    print(report)
    return 0


def run_rm(args: argparse.Namespace) -> int:
    store = OHLCVStore(args.data_dir)
    stored = store.timeframes(args.exchange, args.symbol)
    if not stored:
        symbols = {e.key.symbol for e in store.series()
                   if isinstance(e, SeriesInfo) and e.key.exchange == args.exchange}
        raise UnknownSymbol.among(args.symbol, symbols,
                                  f"the stored candles of {args.exchange} in {store.root}")
    missing = [tf for tf in args.timeframes if tf not in stored]
    if missing:
        raise DataError(f"no stored {missing[0]} candles for {args.exchange} {args.symbol} in "
                        f"{store.root}; stored: {', '.join(stored)}; nothing was removed")
    with _writes(store, "what was not reported removed is still there"):
        for tf in args.timeframes or stored:
            print(f"removed {store.remove(args.exchange, args.symbol, tf)}")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    store = OHLCVStore(args.data_dir)
    entries = store.series()
    if not entries:
        print(f"no stored candles in {store.root}")
        return 0
    rows = [("EXCHANGE", "SYMBOL", "TIMEFRAME", "CANDLES", "MISSING", "FIRST", "LAST")]
    damaged, old = [], []
    for entry in entries:
        problems = [str(entry)] if isinstance(entry, DataError) else \
            store.check(*_where(entry)) if args.check else []
        if problems:
            damaged += problems
            continue
        assert isinstance(entry, SeriesInfo)
        if entry.format != FORMAT:
            old.append(f"{entry.key} is in format {entry.format} (no checksums)")
        rows.append((entry.key.exchange, entry.key.symbol, entry.key.timeframe,
                     str(entry.rows), str(_missing(entry)), iso(entry.first), iso(entry.last)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    for message in damaged:
        print(f"damaged: {message}", file=sys.stderr)
    for message in old:
        print(f"note: {message}; convert it with `planarpy data upgrade --data-dir {store.root}`",
              file=sys.stderr)
    return 1 if damaged else 0


def run_upgrade(args: argparse.Namespace) -> int:
    store = OHLCVStore(args.data_dir)
    entries = store.series()
    failed = 0
    for entry in entries:
        if isinstance(entry, DataError):
            print(f"damaged, not converted: {entry}", file=sys.stderr)
            failed += 1
            continue
        try:
            print(store.upgrade(*_where(entry)))
        except DataError as e:
            print(f"not converted: {e}", file=sys.stderr)
            failed += 1
        except OSError as e:  # a full disk, a read-only store: the series is as it was
            print(f"not converted: {entry.key}: cannot write to {store.root} "
                  f"({e.strerror or e}); it is as it was", file=sys.stderr)
            failed += 1
    if not entries:
        print(f"no stored candles in {store.root}")
    return 1 if failed else 0


def _missing(info: SeriesInfo) -> int:
    """Candles missing between the first and the last stored (the gaps)."""
    if not info.rows or info.first is None or info.last is None:
        return 0
    return (info.last - info.first) // timeframe_ms(info.key.timeframe) + 1 - info.rows


def _where(info: SeriesInfo) -> tuple[str, str, str]:
    return info.key.exchange, info.key.symbol, info.key.timeframe
