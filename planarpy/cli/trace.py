"""`planarpy trace info|tail|export|replay|upgrade`: inspect an EventTrace, also while a run
writes it; rebuild a run's state from it; convert an older format."""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import string
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import msgspec

from .. import validate as V
from ..core.errors import UnknownSymbol
from ..trace import TraceError, follow, iter_events, trace_info, trace_tail
from . import console
from .main import example

EXPORT_BATCH = 65536


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "trace", help="inspect EventTrace stores: info, tail, export, replay, upgrade",
        description="Inspect the event trace a paper or live run writes "
                    "(traces/<strategy>/<exchange>), or that `sim --record` writes.",
        epilog=example("planarpy trace tail traces/SmaCross/binance -n 20 --follow",
                       "planarpy trace replay traces/SmaCross/binance --strategy sma_cross"))
    sub = parser.add_subparsers(dest="trace_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", help="summary: events, segments, runs, symbols, time span",
                          epilog=example("planarpy trace info traces/SmaCross/binance --check"))
    info.add_argument("path", help="trace directory, e.g. traces/SmaCross/binance")
    info.add_argument("--check", action="store_true",
                      help="read every event, verifying every chunk's checksum; name the damage")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=run_info)

    tail = sub.add_parser("tail", help="print the newest events (--follow: keep printing)",
                          description="Print the newest events, one line each: time, run, "
                                      "kind, symbol and the event's main fields (--json: "
                                      "the whole event).",
                          epilog=example("planarpy trace tail traces/SmaCross/binance -n 20 "
                                         "--kind trade_created --follow"))
    tail.add_argument("path", help="trace directory")
    tail.add_argument("-n", type=V.flag(V.whole(0)), default=10, metavar="N",
                      help="how many events (default 10; 0 with --follow: only new ones)")
    _add_filters(tail)
    tail.add_argument("--since", help="only events at or after this time (ISO 8601)")
    tail.add_argument("--until", help="only events before this time (ISO 8601)")
    tail.add_argument("-f", "--follow", action="store_true",
                      help="keep printing new events; wait for a trace that does not exist yet")
    tail.add_argument("--interval", type=V.flag(V.positive("seconds")), default=0.5,
                      help="--follow poll period, seconds")
    tail.add_argument("--json", action="store_true", help="one JSON object per line (raw)")
    tail.set_defaults(func=run_tail)

    export = sub.add_parser("export", help="write events to CSV or Parquet",
                            epilog=example("planarpy trace export traces/SmaCross/binance "
                                           "--csv events.csv"))
    export.add_argument("path", help="trace directory")
    out = export.add_mutually_exclusive_group(required=True)
    out.add_argument("--csv", metavar="OUT", type=V.flag(V.out_file()),
                     help="write a CSV file (payload as a JSON column)")
    out.add_argument("--parquet", metavar="OUT", type=V.flag(V.out_file()),
                     help="write a Parquet file (needs pyarrow)")
    _add_filters(export)
    export.set_defaults(func=run_export)

    replay = sub.add_parser("replay", help="rebuild a strategy's state from a run's events",
                            epilog=example("planarpy trace replay traces/SmaCross/binance "
                                           "--strategy sma_cross --run last"))
    replay.add_argument("path", help="trace directory")
    replay.add_argument("--strategy", required=True, help="strategy name or path (for its markets)")
    replay.add_argument("--run", type=run_arg, default="last", metavar="RUN",
                        help="a run id, or 'last' (default)")
    replay.add_argument("--exchange", help="the exchange the run used, if not the strategy's")
    replay.add_argument("--allow-unknown-kinds", action="store_true",
                        help="skip events of kinds this planarpy does not know (default: fail)")
    replay.add_argument("--config", help="config file (default user/planar.toml)")
    replay.set_defaults(func=run_replay)

    upgrade = sub.add_parser("upgrade", help="convert a trace of an older format to the current one",
                             description="Convert a trace written by an older planarpy (format "
                                         "planarpy.trace/1) to the current format, keeping the "
                                         "original beside it as NAME.v1-backup.",
                             epilog=example("planarpy trace upgrade traces/SmaCross/binance"))
    upgrade.add_argument("path", help="trace directory")
    upgrade.add_argument("--force", action="store_true",
                         help="convert a damaged trace's readable events (default: refuse)")
    upgrade.set_defaults(func=run_upgrade)


def trace_outcome(recorder: Any) -> int:
    """For the end of a run: 1, saying why, if its trace could not be written at some point
    (events journaled or lost, or failed flushes); else 0."""
    health = recorder.health() if hasattr(recorder, "health") else None
    if health is None or health.ok:
        return 0
    console.say(f"planarpy: the run could not write its trace as it went: {health.describe()}")
    return 1


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", action="append", metavar="K",
                        help="only this event kind (repeatable)")
    parser.add_argument("--symbol", metavar="S", help="only events of this symbol")
    parser.add_argument("--run", type=run_arg, metavar="RUN", help="a run id, or 'last'")


def run_arg(text: str) -> int | str:
    if text == "last":
        return text
    try:
        run = int(text)
    except ValueError:
        run = -1
    if run < 0:
        raise argparse.ArgumentTypeError(f"must be a run id (a whole number >= 0) or 'last', "
                                         f"not {text!r}")
    return run


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Damage warnings as one plain line each, not Python's file:line form."""
    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        print(f"planarpy: warning: {message}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def iso_ns(ts: int) -> str:
    """An event time in ns as ISO 8601 UTC with nanoseconds."""
    sec, ns = divmod(int(ts), 10**9)
    return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def _line(event: dict, as_json: bool) -> str:
    """One event on one line: raw JSON, or time, run, kind, symbol and its main fields."""
    if as_json:
        return msgspec.json.encode(event).decode()
    return (f"{iso_ns(event['ts'])[:23]}Z  run {event['run']}  {event['kind']:<18} "
            f"{event['symbol'] or '-':<14} {describe(event['kind'], event['payload'])}")


# the fields worth a glance, per kind; other kinds show their plain fields as key=value
_TEMPLATES = {
    "order_created": "{side} {type} {amount} @ {price} {tif}  id {id}",
    "order_updated": "id {id} {status}, filled {filled}",
    "order_closed": "id {id} {status}",
    "trade_created": "{side} {amount} @ {price}, fee {fee} {fee_currency}  order {order_id}",
    "trade_emulated": "{side} {amount} @ {price}, fee {fee} {fee_currency}  order {order_id}",
    "liquidation": "{side} {amount} @ {price}  order {order_id}",
    "order_error": "{reason}",
    "strategy_started": "{strategy} ({mode}), cash {cash}",
    "strategy_stopped": "cash {cash}",
    "leverage_updated": "leverage {leverage}",
}


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def describe(kind: str, payload: Any) -> str:
    """The main fields of an event's payload, in words."""
    if not isinstance(payload, dict):
        return _value(payload)
    template = _TEMPLATES.get(kind)
    if template is not None and all(f in payload for f in _fields(template)):
        return template.format_map({k: _value(v) for k, v in payload.items()})
    plain = [f"{k}={_value(v)}" for k, v in payload.items()
             if isinstance(v, (str, int, float, bool)) or v is None]
    nested = [k for k, v in payload.items() if isinstance(v, (dict, list))]
    return " ".join(plain[:8] + ([f"(+{', '.join(nested[:4])})"] if nested else []))


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, (dict, list)):
        return msgspec.json.encode(v).decode()
    return str(v)


def _check_symbol(path: str, symbol: str | None) -> None:
    """An unknown --symbol is an error naming the trace's symbols (the case included)."""
    if symbol is None:
        return
    known = trace_info(path)["symbols"]
    if symbol not in known:
        raise UnknownSymbol.among(symbol, known, f"{path}'s events")


def _wait_for(path: str, interval: float) -> None:
    """Wait until `path` holds a trace (a run starting), saying so first."""
    if (Path(path) / "zarr.json").is_file():
        return
    console.say(f"planarpy: waiting for a trace at {path} (none there yet); Ctrl-C stops")
    while not (Path(path) / "zarr.json").is_file():
        time.sleep(interval)


def run_tail(args: argparse.Namespace) -> int:
    filters = {"kinds": args.kind, "symbol": args.symbol, "run": args.run}
    with _warnings_to_stderr():
        if args.follow:
            if args.since or args.until:
                raise TraceError("--follow cannot be combined with --since/--until")
            _wait_for(args.path, args.interval)
            events = follow(args.path, args.n, interval=args.interval, **filters)
            console.say(f"planarpy: following {args.path} (every {args.interval:g} s); "
                        "Ctrl-C stops")  # after its end is read: what follows is shown
            for event in events:
                print(_line(event, args.json), flush=True)
            return 0
        _check_symbol(args.path, args.symbol)
        for event in trace_tail(args.path, args.n, since=args.since, until=args.until, **filters):
            print(_line(event, args.json))
    return 0


def _span(info: dict) -> str:
    if info["ts_min"] is None:
        return "-"
    return f"{iso_ns(info['ts_min'])} .. {iso_ns(info['ts_max'])}"


def run_info(args: argparse.Namespace) -> int:
    info = trace_info(args.path, check=args.check)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    segs = info["segments"]
    print(f"trace     {info['path']}")
    print(f"format    {info['format']}")
    print(f"strategy  {info['strategy']}  on  {info['exchange']}")
    print(f"events    {info['events']} in {len(segs)} segment(s); last run {info['last_run']}")
    if "readable_events" in info:
        print(f"readable  {info['readable_events']}")
    print(f"time      {_span(info)}")
    print(f"symbols   {', '.join(info['symbols']) or '-'}")
    for s in segs:
        runs = "-" if s["run_first"] is None else f"{s['run_first']}..{s['run_last']}"
        print(f"  {s['name']}  {s['day'] or '-':<10}  {s['rows']:>10} events  "
              f"{s['heap_bytes']:>12} payload bytes  runs {runs}")
    for problem in info["problems"]:
        print(f"problem   {problem}")
    for note in info["notes"]:
        print(f"note      {note}")
    return 1 if info["problems"] else 0


def _rows(event: dict) -> list[Any]:
    return [event["ts"], iso_ns(event["ts"]), event["kind"], event["exchange"],
            event["symbol"] or "", event["strategy"], event["run"], event["seq"],
            msgspec.json.encode(event["payload"]).decode()]


HEADER = ["ts", "time", "kind", "exchange", "symbol", "strategy", "run", "seq", "payload"]


def run_export(args: argparse.Namespace) -> int:
    filters = {"kinds": args.kind, "symbol": args.symbol, "run": args.run}
    _check_symbol(args.path, args.symbol)
    with _warnings_to_stderr():
        if args.parquet:
            count = _export_parquet(args.path, Path(args.parquet), filters)
            out = args.parquet
        else:
            count = _export_csv(args.path, Path(args.csv), filters)
            out = args.csv
    print(f"exported {count} events to {out}", file=sys.stderr)
    return 0


def _export_csv(trace: str, out: Path, filters: dict) -> int:
    events = iter_events(trace, **filters)  # opens first: a bad path leaves no file behind
    count = 0
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for event in events:
            writer.writerow(_rows(event))
            count += 1
    return count


def _export_parquet(trace: str, out: Path, filters: dict) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TraceError("Parquet export needs pyarrow (pip install pyarrow); "
                         "or export with --csv") from None
    schema = pa.schema([("ts", pa.int64()), ("time", pa.string()), ("kind", pa.string()),
                        ("exchange", pa.string()), ("symbol", pa.string()),
                        ("strategy", pa.string()), ("run", pa.int64()), ("seq", pa.int64()),
                        ("payload", pa.string())])
    events = iter_events(trace, **filters)
    count = 0
    with pq.ParquetWriter(str(out), schema) as writer:
        batch: list[list[Any]] = []
        for event in events:
            batch.append(_rows(event))
            if len(batch) >= EXPORT_BATCH:
                writer.write_table(pa.Table.from_pylist([dict(zip(HEADER, r)) for r in batch], schema))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist([dict(zip(HEADER, r)) for r in batch], schema))
            count += len(batch)
    return count


def run_replay(args: argparse.Namespace) -> int:
    """Print the state the trace's events rebuild, then every problem and difference found;
    1 when the replay cannot be trusted or does not reach the end state the run recorded."""
    from ..config import load_config
    from ..trace.replay import replay_from_trace
    report = replay_from_trace(str(args.strategy), args.path, run=args.run, exchange=args.exchange,
                               allow_unknown=args.allow_unknown_kinds, compare_state=False,
                               settings=load_config(args.config))
    _print_state(report)
    for what, lines in (("problem", report.problems), ("difference", report.differences),
                        ("note", report.notes)):
        for line in lines:
            print(f"{what}: {line}", file=sys.stderr if what != "note" else sys.stdout)
    if not report.ok:
        print(f"planarpy: the replay of run {report.run} does not match its trace's record "
              f"({len(report.problems)} problem(s), {len(report.differences)} difference(s))",
              file=sys.stderr)
    return 0 if report.ok else 1


def _print_state(report: Any) -> None:
    from ..params import format_values
    st = report.state
    print(f"run {report.run}: {report.events} events")
    if report.params:
        print(f"params     {format_values(report.params)}")
    print(f"cash       {st.cash:.10g} {st.quote} (committed {st.committed:.10g})")
    print(f"fees paid  {st.fees:.10g} {st.quote}")
    print(f"trades     {len(st.trades)}")
    for sym, ai in st.assets.items():
        pos = ai.open_position()
        held = (f"{pos.side.value} {pos.amount:g} @ {pos.entry_price:.10g}, margin {pos.margin:.10g}"
                if pos else f"balance {ai.balance:.10g}")
        print(f"{sym:<14} {held}; open orders: {', '.join(ai.orders) or 'none'}")


def run_upgrade(args: argparse.Namespace) -> int:
    from ..trace.upgrade import upgrade_trace
    print(upgrade_trace(args.path, force=args.force))
    return 0
