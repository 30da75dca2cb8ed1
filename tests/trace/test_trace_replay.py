import errno
import json
import shutil
from pathlib import Path

import pytest
import zarr

from planarpy import backtest, call, find_strategy
from planarpy.cli.main import main
from planarpy.config import load_config
from planarpy.data.sources import markets_for
from planarpy.integrity import seal
from planarpy.modes.sim import SimConfig
from planarpy.trace import EventTrace, TraceError, iter_events, replay_from_trace, trace_tail
from planarpy.trace.layout import KIND
from planarpy.trace.store import TraceStore

from simkit import PERP, flat, run


@pytest.mark.parametrize("name", ["sma_cross", "margin_trend", "template"])
def test_replay_equals_the_backtest(name, tmp_path, repo_root, monkeypatch):
    """A recorded backtest replays to exactly its final state: cash, orders, positions, trades."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy(name)
    with EventTrace.open(tmp_path / "t", strategy=cls.__name__, exchange=cls.exchange) as trace:
        result = backtest(cls, config=SimConfig(seed=3), recorder=trace)
    report = replay_from_trace(result.strategy, tmp_path / "t")
    assert report.ok, str(report)
    st = report.state
    assert st.cash == result.strategy.state.cash  # exact, not approximate
    assert len(st.trades) == len(result.trades) > 20
    assert st.trades == result.trades


def test_replay_reports_differences(tmp_path):
    """Replay compared with a changed state names each difference."""
    script = {0: lambda s: call(s, "update_leverage", PERP.symbol, 4),
              1: lambda s: call(s, "market_order", PERP.symbol, 10.0, side="buy"),
              2: lambda s: call(s, "limit_order", PERP.symbol, 5.0, 110.0, side="sell",
                                reduce_only=True)}
    with EventTrace.open(tmp_path / "t", strategy="Scripted", exchange="test") as trace:
        r = run(script, flat(6), market=PERP, recorder=trace)
    s = r.strategy
    assert replay_from_trace(s, tmp_path / "t").ok
    s.state.cash += 1.0
    s.asset(PERP.symbol).long.amount = 3.0
    report = replay_from_trace(s, tmp_path / "t")
    text = str(report)
    assert not report.ok and "cash: replayed" in text and "long amount" in text


def test_replay_of_an_empty_run_is_a_clear_error(tmp_path):
    """A trace with no events for the run asked for raises TraceError."""
    with EventTrace.open(tmp_path / "t", strategy="x", exchange="test") as trace:
        trace.record("strategy_started", {"cash": 1.0})
    s = run({}, flat(3)).strategy
    with pytest.raises(TraceError, match="has no events for run 7"):
        replay_from_trace(s, tmp_path / "t", run=7)


def test_sim_record_and_trace_cli(tmp_path, repo_root, monkeypatch, capsys):
    """`planarpy sim --record` writes a trace that `trace tail` and `trace replay` read."""
    monkeypatch.chdir(repo_root)
    path = tmp_path / "rec"
    assert main(["sim", "sma_cross", "--record", str(path)]) == 0
    out = capsys.readouterr().out
    assert "trace" in out and str(path) in out
    events = trace_tail(path, n=3, kinds=["trade_created"])
    assert len(events) == 3 and all(e["symbol"] == "ETH/BTC" for e in events)
    assert main(["trace", "replay", str(path), "--strategy", "sma_cross"]) == 0
    out = capsys.readouterr().out
    assert "events" in out and "ETH/BTC" in out and "trades" in out


# finding 4: a replay that cannot be trusted says so and fails

@pytest.fixture(scope="module")
def recorded_once(tmp_path_factory, repo_root_module):
    """The trace of a sma_cross backtest: about twenty daily segments."""
    path = tmp_path_factory.mktemp("rec") / "t"
    cls = find_strategy("sma_cross", load_config(str(repo_root_module / "user" / "planar.toml")))
    with EventTrace.open(path, strategy=cls.__name__, exchange=cls.exchange) as trace:
        backtest(cls, config=SimConfig(seed=3), recorder=trace)
    return path


@pytest.fixture(scope="module")
def repo_root_module():
    return Path(__file__).parent.parent.parent


@pytest.fixture
def recorded(recorded_once, tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    path = tmp_path / "t"
    shutil.copytree(recorded_once, path)
    return path


def replay_cli(path, *extra):
    return main(["trace", "replay", str(path), "--strategy", "sma_cross", *extra])


def test_replay_cli_of_a_whole_trace_matches(recorded, capsys):
    """A complete trace replays to the end state its run recorded: exit 0."""
    assert replay_cli(recorded) == 0
    out, err = capsys.readouterr()
    assert "trades" in out and err == ""


def test_replay_refuses_a_trace_with_a_missing_segment(recorded, capsys):
    """A deleted middle segment is reported by replay and by `info` (both said nothing)."""
    names = sorted(p.name for p in recorded.iterdir() if p.name.startswith("s"))
    shutil.rmtree(recorded / names[5])
    assert replay_cli(recorded) == 1
    err = capsys.readouterr().err
    assert f"are missing between {names[4]} and {names[6]} (segment {names[5]} missing)" in err
    assert "does not match its trace's record" in err
    assert main(["trace", "info", str(recorded)]) == 1
    assert f"(segment {names[5]} missing)" in capsys.readouterr().out


@pytest.mark.parametrize("sealed", [False, True])
def test_replay_refuses_a_damaged_kind_table(recorded, capsys, sealed):
    """A kind table changed by damage (or sealed again by a faulty writer) makes that
    segment unreadable, and the replay fail (it gave exit 0 and a wrong balance)."""
    meta = recorded / "s000003" / "zarr.json"
    doc = json.loads(meta.read_text())
    kinds = doc["attributes"]["kinds"]
    kinds[4], kinds[8] = kinds[8], kinds[4]  # order_created <-> trade_created
    doc["attributes"] = seal(doc["attributes"]) if sealed else doc["attributes"]
    meta.write_text(json.dumps(doc))
    assert replay_cli(recorded) == 1
    err = capsys.readouterr().err
    assert "problem: trace" in err and "s000003 is damaged and skipped" in err
    assert ("kind table disagrees" if sealed else "fails its checksum") in err


def test_replay_refuses_another_strategy_or_exchange(recorded, capsys):
    """Replaying a trace as another strategy, or for another exchange, is refused (it gave
    exit 0 and 'cash 1 USDT, trades 0')."""
    assert main(["trace", "replay", str(recorded), "--strategy", "template"]) == 1
    assert "the trace was recorded by strategy 'SmaCross', not 'Template'" in capsys.readouterr().err
    assert replay_cli(recorded, "--exchange", "nope") == 2
    assert "no markets known for exchange 'nope'" in capsys.readouterr().err
    strategy = find_strategy("sma_cross")(markets_for("binance"))
    report = replay_from_trace(strategy, recorded, exchange="kraken", compare_state=False)
    assert not report.ok
    assert report.problems == ("the trace was recorded by exchange 'binance', not 'kraken' "
                               "(pass exchange= / --exchange if the run used another)",)


def test_replay_refuses_unknown_kinds_unless_allowed(recorded, capsys):
    """An event of a kind this planarpy does not know fails the replay (it was ignored);
    --allow-unknown-kinds skips it with a note."""
    with EventTrace.open(recorded) as trace:  # an event from a newer planarpy, say
        trace.record("market_data", {"amended": 1}, ts=trace_tail(recorded, 1)[0]["ts"])
    last = sorted(p for p in recorded.iterdir() if p.name.startswith("s"))[-1]
    doc = json.loads((last / "zarr.json").read_text())
    kinds, rows = doc["attributes"]["kinds"], doc["attributes"]["rows"]
    doc["attributes"] = seal({**doc["attributes"], "kinds": kinds + ["order_amended"]})
    (last / "zarr.json").write_text(json.dumps(doc))
    index = zarr.open_array(str(last / "index"), mode="r+")
    row = index[rows - 1]
    row[KIND] = len(kinds)
    index[rows - 1] = row
    assert replay_cli(recorded) == 1
    assert "event kind 'order_amended' (first at seq" in capsys.readouterr().err
    assert replay_cli(recorded, "--allow-unknown-kinds") == 0
    assert "note: skipped 1 event(s) of unknown kind 'order_amended'" in capsys.readouterr().out


def test_replay_cli_prints_differences_from_the_recorded_end(tmp_path, repo_root, monkeypatch,
                                                             capsys):
    """The end state a run recorded is compared, and every difference printed (the command
    never printed report.differences)."""
    monkeypatch.chdir(repo_root)
    with EventTrace.open(tmp_path / "t", strategy="SmaCross", exchange="binance") as trace:
        trace.record("strategy_started", {"cash": 1.0})
        trace.record("strategy_stopped", {"cash": 2.0, "committed": 0.0})
    assert replay_cli(tmp_path / "t") == 1
    err = capsys.readouterr().err
    assert "difference: cash when the run stopped: recorded 2.0, replayed 1.0" in err


def test_replay_with_events_waiting_in_a_journal_is_not_ok(tmp_path, repo_root, monkeypatch,
                                                          capsys):
    """A run whose last events could not be written (disk full at the end) left them in a
    journal; `trace replay` exited 0 with one trade fewer than the run made, saying only
    that the run 'recorded no strategy_stopped event'. The journal is now a problem that
    names it, and once a writer has committed it the replay is whole."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy("sma_cross")
    with EventTrace.open(tmp_path / "a", strategy=cls.__name__, exchange=cls.exchange) as t:
        result = backtest(cls, config=SimConfig(seed=3), recorder=t)
    events = list(iter_events(tmp_path / "a"))
    last_trade = max(i for i, e in enumerate(events) if e["kind"] == "trade_created")
    path = tmp_path / "SmaCross" / "binance"
    trace = EventTrace.open(path, strategy=cls.__name__, exchange=cls.exchange, flush_interval=60)
    for i, e in enumerate(events):
        if i == last_trade:
            trace.flush()
            monkeypatch.setattr(TraceStore, "append", disk_full)
        trace.record(e["kind"], e["payload"], symbol=e["symbol"], ts=e["ts"])
    trace.close()
    monkeypatch.undo()
    monkeypatch.chdir(repo_root)
    journal = trace.health().journal
    report = replay_from_trace(result.strategy, path)
    assert not report.ok and any(str(journal) in p and "not yet committed" in p
                                 for p in report.problems)
    assert main(["trace", "replay", str(path), "--strategy", "sma_cross"]) == 1
    assert f"problem: journal {journal} holds events not yet committed" in capsys.readouterr().err
    EventTrace.open(path).close()  # commits the journal
    assert replay_from_trace(result.strategy, path).ok


def disk_full(self, *args):
    raise OSError(errno.ENOSPC, "No space left on device")
