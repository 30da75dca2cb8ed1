"""`planarpy trace tail`: one readable line per event (--json: the raw event), and
--follow that waits for a trace that does not exist yet and says it is following."""

from __future__ import annotations

import json
import threading

from planarpy.cli.main import main
from planarpy.trace import EventTrace, follow

from prockit import Child

ORDER = {"id": "sim-1", "symbol": "ETH/BTC", "side": "buy", "type": "limit", "amount": 0.5,
         "price": 0.05213, "tif": "GTC", "date": 1, "pos": "long"}
FILL = {"order_id": "sim-1", "symbol": "ETH/BTC", "side": "buy", "pos": "long", "date": 2,
        "amount": 0.5, "price": 0.05213, "cost": 0.026065, "fee": 2.6065e-05,
        "fee_currency": "BTC", "taker": False, "id": "sim-1-0"}


def record(path, *events):
    with EventTrace.open(path, strategy="S", exchange="binance") as trace:
        for kind, payload, symbol, ts in events:
            trace.record(kind, payload, symbol=symbol, ts=ts)


def test_tail_prints_time_kind_symbol_and_key_fields(tmp_path, capsys):
    """Each line: ISO time to the millisecond, run, kind, symbol and what matters of the
    payload (it was the raw JSON payload); --json prints the whole event."""
    path = tmp_path / "t"
    record(path, ("order_created", ORDER, "ETH/BTC", 1_700_000_000_123_000_000),
           ("trade_created", FILL, "ETH/BTC", 1_700_000_001_000_000_000),
           ("exchange_error", {"where": "balance", "error": "timeout", "info": {"a": 1}}, None,
            1_700_000_002_000_000_000))
    assert main(["trace", "tail", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "2023-11-14T22:13:20.123Z  run 0  order_created      ETH/BTC        "
        "buy limit 0.5 @ 0.05213 GTC  id sim-1",
        "2023-11-14T22:13:21.000Z  run 0  trade_created      ETH/BTC        "
        "buy 0.5 @ 0.05213, fee 2.6065e-05 BTC  order sim-1",
        "2023-11-14T22:13:22.000Z  run 0  exchange_error     -              "
        "where=balance error=timeout (+info)"]
    assert main(["trace", "tail", str(path), "-n", "1", "--json"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["payload"]["info"] == {"a": 1} and event["kind"] == "exchange_error"


def test_follow_waits_for_a_trace_that_does_not_exist_yet(tmp_path):
    """`--follow` on a path with no trace says it waits, then that it follows, then prints
    the events once a run writes them (it was an error: not an EventTrace)."""
    path = tmp_path / "t"
    child = Child(["trace", "tail", str(path), "--follow", "--interval", "0.05"], cwd=tmp_path)
    try:
        child.wait_for(f"planarpy: waiting for a trace at {path} (none there yet)")
        with EventTrace.open(path, strategy="S", exchange="binance") as trace:
            trace.record("order_created", ORDER, symbol="ETH/BTC", ts=1_700_000_000_000_000_000)
        child.wait_for(f"planarpy: following {path} (every 0.05 s)")
        child.wait_for("order_created      ETH/BTC        buy limit 0.5 @ 0.05213 GTC  id sim-1")
        assert child.proc.poll() is None  # still following
    finally:
        child.kill()


def test_follow_says_it_is_following(tmp_path):
    """On an existing trace, --follow prints the last events, says it follows, and prints
    new ones as they are committed."""
    path = tmp_path / "t"
    record(path, ("order_created", ORDER, "ETH/BTC", 1_700_000_000_000_000_000))
    child = Child(["trace", "tail", str(path), "-f", "-n", "0", "--interval", "0.05"],
                  cwd=tmp_path)
    try:
        child.wait_for(f"planarpy: following {path}")
        record(path, ("trade_created", FILL, "ETH/BTC", 1_700_000_001_000_000_000))
        text = child.wait_for("trade_created")
        assert "order_created" not in text  # -n 0: only new events
    finally:
        child.kill()


def test_follow_starts_where_it_was_called_so_an_event_committed_before_the_first_read_shows(tmp_path):
    """`follow` reads the trace's end when called (the CLI says "following" after that): an
    event committed before the iteration starts is new, not skipped as an old one (the CLI
    test above once missed it that way under load)."""
    path = tmp_path / "t"
    record(path, ("order_created", ORDER, "ETH/BTC", 1_700_000_000_000_000_000))
    events = follow(path, n=0, interval=0.01)
    record(path, ("trade_created", FILL, "ETH/BTC", 1_700_000_001_000_000_000))
    got: list = []
    reader = threading.Thread(target=lambda: got.append(next(events)), daemon=True)
    reader.start()
    reader.join(20)
    assert got and got[0]["kind"] == "trade_created"
