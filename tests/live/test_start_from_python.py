"""`start_live` and `start_paper` from Python keep the command line's promises: a clear
error naming where keys come from when there are none, and a trace recorded by default;
`replay_from_trace` takes the strategy by name or class as `trace replay` does."""

from __future__ import annotations

import re

import pytest

from planarpy import ConfigError, find_strategy
from planarpy.exchanges import ApiKeys
from planarpy.modes.live import live_run, start_live
from planarpy.modes.paper import start_paper
from planarpy.trace import iter_events, replay_from_trace

from livekit import Quiet

SETTINGS = {"exchanges": {"binance": {"rate_limit": False}}}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project directory as the current one: no keys, no config, no traces."""
    monkeypatch.chdir(tmp_path)
    for name in ("PLANARPY_HOME", "PLANARPY_TRACES", "PLANARPY_BINANCE_API_KEY",
                 "PLANARPY_BINANCE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_no_keys_is_an_error_naming_where_keys_come_from(project):
    """Without keys, start-up stops before any request with one message naming the
    environment variables, the key file and the local exchange's keys."""
    with pytest.raises(ConfigError) as e:
        live_run(Quiet, exchange_url="http://127.0.0.1:9", settings={})
    msg = str(e.value)
    for part in ("PLANARPY_BINANCE_API_KEY", "PLANARPY_BINANCE_SECRET", "user/keys/binance.toml",
                 "planarpy exchange serve"):
        assert part in msg
    assert not (project / "traces").exists()


def test_keys_from_the_environment_are_taken(project, local_exchange, monkeypatch):
    """The variables the error names are the ones read."""
    monkeypatch.setenv("PLANARPY_BINANCE_API_KEY", local_exchange.api_key)
    monkeypatch.setenv("PLANARPY_BINANCE_SECRET", local_exchange.secret)
    with start_live(Quiet, exchange_url=local_exchange.url, settings=SETTINGS, trace=None,
                    clock=local_exchange.clock) as run:
        assert run.reconcile() == []


def started(path) -> list[dict]:
    return list(iter_events(path, kinds="strategy_started"))


def test_start_live_records_a_trace_by_default(project, local_exchange):
    """As `planarpy live` does: traces/STRATEGY/EXCHANGE under the current directory, and
    it replays by strategy class."""
    keys = ApiKeys(local_exchange.api_key, local_exchange.secret)
    with start_live(Quiet, exchange_url=local_exchange.url, keys=keys, settings=SETTINGS,
                    clock=local_exchange.clock) as run:
        run.call("market_order", "XRP/ETH", 100.0, side="buy")
    path = project / "traces" / "Quiet" / "binance"
    assert len(started(path)) == 1
    report = replay_from_trace(Quiet, path)
    assert report.ok, report
    assert len(report.state.trades) == 1 and report.state.trades[0].amount == 100.0


def test_start_paper_records_a_trace_by_default(project, local_exchange):
    local_exchange.step(3_600_000)
    with start_paper(Quiet, exchange_url=local_exchange.url, settings={},
                     clock=local_exchange.clock) as run:
        run.call("market_order", "XRP/ETH", 10.0, side="buy")
    path = project / "traces" / "Quiet" / "binance"
    assert len(started(path)) == 1
    assert replay_from_trace(Quiet, path).ok


def test_trace_none_records_nothing(project, local_exchange):
    local_exchange.step(3_600_000)
    with start_paper(Quiet, exchange_url=local_exchange.url, settings={}, trace=None,
                     clock=local_exchange.clock):
        pass
    assert not (project / "traces").exists()


def test_replay_by_strategy_name(project, repo_root):
    """A strategy's name (or path) is built on its exchange's markets with the run's
    parameters, as `planarpy trace replay --strategy` builds it."""
    from planarpy.cli.main import main
    (project / "strategies").symlink_to(repo_root / "strategies")
    assert main(["sim", "sma_cross", "-p", "fast=12", "--record"]) == 0
    path = project / "traces" / "SmaCross" / "binance"
    report = replay_from_trace("sma_cross", path)
    assert report.ok, report
    assert report.params["fast"] == 12 and len(report.state.trades) > 20
    assert replay_from_trace(find_strategy("sma_cross"), path).ok
    with pytest.raises(TypeError, match="Strategy instance, class or name"):
        replay_from_trace(3, path)


def test_live_and_paper_end_with_a_summary_like_sims(project, local_exchange):
    """The handle's summary: PnL, this run's fills and fees, what is open; its HTML shows
    the status and the assets at market precision."""
    keys = ApiKeys(local_exchange.api_key, local_exchange.secret)
    local_exchange.step(3_600_000)
    for start, extra in ((start_live, {"keys": keys}), (start_paper, {})):
        run = start(Quiet, exchange_url=local_exchange.url, settings=SETTINGS, trace=None,
                    clock=local_exchange.clock, **extra)
        try:
            run.call("market_order", "XRP/ETH", 100.0, side="buy")
            run.call("limit_order", "XRP/ETH", 100.0, 0.0001, side="buy")
            html = run._repr_html_()
            assert "status" in html and "XRP/ETH" in html and "<thead>" in html
        finally:
            run.stop()
        d = run.summary()
        assert d["fills"] == 1 and d["fees"] > 0 and len(d["open"]) == 1
        text = run.format_summary()
        lines = dict(line.split(None, 1) for line in text.splitlines())
        assert set(lines) == {"strategy", "equity", "pnl", "fills", "fees", "open"}
        assert lines["fills"] == "1" and "order" in lines["open"] and "@ 0.0001" in lines["open"]
        assert re.match(r"[+-]?[\d.e-]+ ETH \([+-]\d+\.\d\d%\)$", lines["pnl"]), lines["pnl"]
