import numpy as np
import pytest

from planarpy import backtest, call, find_strategy
from planarpy.cli.main import main
from planarpy.modes.sim import SimConfig
from planarpy.trace import EventTrace, TraceError, replay_from_trace, trace_tail

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
              2: lambda s: call(s, "limit_order", PERP.symbol, 5.0, 90.0, side="sell", pos="short",
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
