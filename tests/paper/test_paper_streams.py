"""Paper market data survives dropped and stalled streams, and the trace records the gap."""

from __future__ import annotations

from planarpy import Trade
from planarpy.trace import EventTrace, replay_from_trace, trace_tail

SYM = "XRP/ETH"


def test_dropped_streams_reconnect_and_ticks_go_on(paper, lx, stepping, wait_until, tmp_path):
    """After every public WebSocket is dropped, the watchers reconnect, market data flows
    again, the strategy keeps ticking, and connection_lost/restored are in the trace."""
    trace = EventTrace.open(tmp_path / "t", strategy="Idle", exchange="binance")
    run = paper(trace=trace)
    with stepping(2_000, 0.01):
        wait_until(lambda: run.market()["trades_seen"] > 0)
        assert lx.faults.drop_websockets("public") > 0
        ticks, seen = run.session.ticks, run.market()["trades_seen"]
        wait_until(lambda: run.market()["trades_seen"] > seen + 5, timeout=10)
        wait_until(lambda: run.session.ticks > ticks + 5)
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
    run.stop()
    events = trace_tail(tmp_path / "t", n=100_000)
    lost = [e for e in events if e["kind"] == "connection_lost"]
    restored = [e for e in events if e["kind"] == "connection_restored"]
    assert lost and restored and lost[0]["ts"] <= restored[0]["ts"]
    assert {e["payload"]["watcher"] for e in lost} >= {f"trades:{SYM}", f"book:{SYM}"}
    assert replay_from_trace(run.strategy, tmp_path / "t").ok


def test_stalled_streams_fall_back_to_rest(paper, lx, stepping, wait_until, tmp_path):
    """A silent market stream is covered by REST fetches: trades keep arriving."""
    trace = EventTrace.open(tmp_path / "t", strategy="Idle", exchange="binance")
    run = paper(trace=trace, stall_after=0.3)
    lx.faults.update({"stall_public": True})
    seen = run.market()["trades_seen"]
    with stepping(2_000, 0.01):
        wait_until(lambda: run.market()["trades_seen"] > seen, timeout=10)
    run.stop()
    events = trace_tail(tmp_path / "t", n=100_000)
    assert any(e["kind"] == "exchange_error" and e["payload"].get("error") == "stalled"
               for e in events)
    assert any(e["kind"] == "request_sent" and e["payload"]["method"] == "fetch_trades"
               for e in events)
