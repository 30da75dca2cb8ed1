"""`planarpy trace info|tail|export`."""

import csv
import json
import subprocess
import sys

import pytest

from planarpy.cli.main import main
from planarpy.core.clock import Clock
from planarpy.trace import EventTrace

T0 = 1_700_000_000_000  # ms, 2023-11-14T22:13:20Z


@pytest.fixture
def sample(tmp_path):
    clock = Clock(T0)
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="binance", clock=clock) as trace:
        trace.record("strategy_started", {"cash": 10})
        for i in range(5):
            clock.advance(1000)
            trace.record("order_created", {"i": i}, symbol="ETH/BTC" if i % 2 else "XRP/ETH")
    return trace.path


def test_info(sample, capsys):
    """info prints identity, counts, span, symbols and segments."""
    assert main(["trace", "info", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "strategy  S  on  binance" in out
    assert "events    6 in 1 segment(s); last run 1" in out
    assert "time      2023-11-14T22:13:20.000000000Z .. 2023-11-14T22:13:25.000000000Z" in out
    assert "symbols   ETH/BTC, XRP/ETH" in out
    assert main(["trace", "info", "--json", str(sample)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 6


def test_tail_with_filters(sample, capsys):
    """tail prints one line per event, oldest first (a payload without an order's fields
    as key=value); --json gives JSON lines."""
    assert main(["trace", "tail", str(sample), "-n", "2", "--kind", "order_created",
                 "--symbol", "ETH/BTC"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "2023-11-14T22:13:22.000Z  run 1  order_created      ETH/BTC        i=1",
        "2023-11-14T22:13:24.000Z  run 1  order_created      ETH/BTC        i=3"]
    assert main(["trace", "tail", str(sample), "-n", "1", "--json", "--run", "last"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["payload"] == {"i": 4} and event["strategy"] == "S" and event["run"] == 1


def test_tail_rejects_bad_arguments(sample, capsys):
    """A bad kind is a planarpy error; a bad run value is an argparse error."""
    assert main(["trace", "tail", str(sample), "--kind", "nope"]) == 2
    assert "planarpy: error: unknown event kind 'nope'" in capsys.readouterr().err
    assert main(["trace", "tail", str(sample), "--run", "first"]) == 2
    assert "argument --run: must be a run id (a whole number >= 0) or 'last', not 'first'" \
        in capsys.readouterr().err


def test_export_csv(sample, tmp_path, capsys):
    """export --csv writes a header and one row per event, payload as JSON."""
    out = tmp_path / "events.csv"
    assert main(["trace", "export", str(sample), "--csv", str(out)]) == 0
    assert "exported 6 events" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert [r["kind"] for r in rows] == ["strategy_started"] + ["order_created"] * 5
    assert json.loads(rows[-1]["payload"]) == {"i": 4}
    assert rows[0]["time"] == "2023-11-14T22:13:20.000000000Z" and rows[0]["symbol"] == ""
    assert [r["seq"] for r in rows] == [str(i) for i in range(6)]


def test_export_parquet_needs_pyarrow(sample, tmp_path, capsys):
    """Without pyarrow the user is told what to install."""
    pytest.importorskip("pandas")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert main(["trace", "export", str(sample), "--parquet", str(tmp_path / "x.pq")]) == 2
        assert "Parquet export needs pyarrow (pip install pyarrow)" in capsys.readouterr().err
        assert not (tmp_path / "x.pq").exists()
    else:
        import pandas as pd
        assert main(["trace", "export", str(sample), "--parquet", str(tmp_path / "x.pq")]) == 0
        assert len(pd.read_parquet(tmp_path / "x.pq")) == 6


def test_tail_follow_in_a_subprocess(tmp_path):
    """tail --follow prints events as another writer commits them."""
    trace = EventTrace.open(tmp_path / "t", strategy="S", exchange="x", flush_interval=0.01)
    trace.record("market_data", {"i": 0})
    trace.flush()
    proc = subprocess.Popen([sys.executable, "-m", "planarpy.cli.main", "trace", "tail",
                             str(trace.path), "--follow", "--interval", "0.02", "--json"],
                            stdout=subprocess.PIPE, text=True)
    try:
        got = [json.loads(proc.stdout.readline())["payload"]["i"]]
        for i in (1, 2):  # each line read: the follower runs, and the next event comes later
            trace.record("market_data", {"i": i})
            got.append(json.loads(proc.stdout.readline())["payload"]["i"])
        assert got == [0, 1, 2]
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        trace.close()
