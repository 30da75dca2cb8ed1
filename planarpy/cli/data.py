"""`planarpy fetch` and `planarpy data import|ls|upgrade`: fill, inspect and convert the
OHLCV store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ..data.ohlcv import check_spacing, iso, load_csv, to_ms
from ..data.store import FORMAT, OHLCVStore, SeriesInfo


def register(subparsers: Any) -> None:
    """Add the `fetch` and `data` commands."""
    fetch = subparsers.add_parser(
        "fetch", help="download candles from an exchange into the data store",
        description="Download candles through ccxt into the data store. Resumes after the "
                    "last stored candle; gaps are reported, never filled in.")
    fetch.add_argument("exchange", metavar="EXCHANGE", help="ccxt exchange id, e.g. binance")
    fetch.add_argument("symbol", metavar="SYMBOL", help="unified symbol, e.g. BTC/USDT")
    fetch.add_argument("timeframe", metavar="TIMEFRAME", help="e.g. 1m, 5m, 1h, 1d")
    fetch.add_argument("--since", help="first open time: ISO date/time (UTC) or epoch ms; "
                                       "needed for the first download of a market")
    fetch.add_argument("--until", help="stop before this open time (default: now)")
    _data_dir(fetch)
    fetch.add_argument("--exchange-url", metavar="URL",
                       help="send every REST request to this base URL instead "
                            "(a local exchange, a proxy, a custom endpoint)")
    fetch.add_argument("--limit", type=int, help="candles per request (default: the exchange's maximum)")
    fetch.add_argument("--retries", type=int, default=5,
                       help="retries of a failing request, with backoff (default 5)")
    fetch.add_argument("--no-rate-limit", action="store_true",
                       help="turn off ccxt's client-side rate limiting")
    bar = fetch.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show a progress bar (default: when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    fetch.set_defaults(func=run_fetch)

    data = subparsers.add_parser("data", help="import, list, check and upgrade stored candles",
                                 description="Manage the OHLCV data store.")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import candles from a CSV file",
                         description="Import a CSV (optionally .gz) with columns "
                                     "timestamp,open,high,low,close,volume.")
    imp.add_argument("csv", metavar="CSV", type=Path)
    imp.add_argument("--exchange", required=True)
    imp.add_argument("--symbol", required=True)
    imp.add_argument("--timeframe", required=True)
    _data_dir(imp)
    how = imp.add_mutually_exclusive_group()
    how.add_argument("--skip-existing", action="store_true",
                     help="skip candles identical to stored ones instead of refusing overlaps")
    how.add_argument("--replace", action="store_true",
                     help="replace the stored series with the file's candles")
    imp.set_defaults(func=run_import)
    ls = sub.add_parser("ls", help="list stored series", description="List stored series.")
    _data_dir(ls)
    ls.add_argument("--check", action="store_true",
                    help="verify every chunk and read every candle; name each damaged chunk")
    ls.set_defaults(func=run_ls)
    up = sub.add_parser("upgrade", help="convert series of an older format to the current one",
                        description="Rewrite every series stored in an older format "
                                    "(planarpy.ohlcv/1, without checksums) in the current "
                                    "one, each atomically.")
    _data_dir(up)
    up.set_defaults(func=run_upgrade)


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="data store directory (default: $PLANARPY_DATA or ./user/data)")


def run_fetch(args: argparse.Namespace) -> int:
    from ..data.fetch import fetch_candles, open_exchange  # ccxt is slow to import

    since = None if args.since is None else to_ms(args.since)
    until = None if args.until is None else to_ms(args.until)
    if args.limit is not None and args.limit < 1:
        raise DataError(f"--limit must be at least 1, not {args.limit}")
    exchange = open_exchange(args.exchange, url=args.exchange_url,
                             rate_limit=not args.no_rate_limit)
    store = OHLCVStore(args.data_dir)
    report = fetch_candles(exchange, store, args.symbol, args.timeframe, since=since,
                           until=until, limit=args.limit, retries=max(0, args.retries),
                           progress=args.progress)
    print(report)
    return 0


def run_import(args: argparse.Namespace) -> int:
    ohlcv = check_spacing(load_csv(args.csv), args.timeframe, str(args.csv))
    store = OHLCVStore(args.data_dir)
    if args.replace:
        report = store.save(args.exchange, args.symbol, args.timeframe, ohlcv, replace=True,
                            source=str(args.csv))
    else:
        report = store.append(args.exchange, args.symbol, args.timeframe, ohlcv,
                              on_overlap="skip" if args.skip_existing else "error",
                              source=str(args.csv))
    print(report)
    return 0


def run_ls(args: argparse.Namespace) -> int:
    store = OHLCVStore(args.data_dir)
    entries = store.series()
    if not entries:
        print(f"no stored candles in {store.root}")
        return 0
    rows = [("EXCHANGE", "SYMBOL", "TIMEFRAME", "CANDLES", "FIRST", "LAST")]
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
                     str(entry.rows), iso(entry.first), iso(entry.last)))
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
    if not entries:
        print(f"no stored candles in {store.root}")
    return 1 if failed else 0


def _where(info: SeriesInfo) -> tuple[str, str, str]:
    return info.key.exchange, info.key.symbol, info.key.timeframe
