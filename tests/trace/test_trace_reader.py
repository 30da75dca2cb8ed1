"""trace_tail, iter_events, follow and trace_info."""

import threading

import pandas as pd
import pytest

from planarpy.core.clock import Clock
from planarpy.trace import EventTrace, TraceError, follow, iter_events, trace_info, trace_tail
from planarpy.trace.store import INDEX_CHUNK

from livekit import eventually

T0 = 1_700_000_000_000  # ms, 2023-11-14T22:13:20Z


@pytest.fixture
def sample(tmp_path):
    """A trace of 3 runs, two symbols and a few kinds; event i at T0 + i seconds."""
    clock = Clock(T0)
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x", clock=clock) as trace:
        for i in range(30):
            if i % 10 == 0:
                trace.record("strategy_started", {"i": i})
            else:
                trace.record("order_created" if i % 2 else "trade_created", {"i": i},
                             symbol="ETH/BTC" if i % 3 else "XRP/ETH")
            clock.advance(1000)
    return trace.path


def ids(events):
    return [e["payload"]["i"] for e in events]


def test_tail_returns_newest_oldest_first(sample):
    """The last n events, in recorded order."""
    assert ids(trace_tail(sample, 3)) == [27, 28, 29]
    assert ids(trace_tail(sample, 100)) == list(range(30))
    assert trace_tail(sample, 0) == []


def test_tail_filters(sample):
    """kinds, symbol, since/until and run narrow the tail."""
    assert ids(trace_tail(sample, 3, kinds="order_created")) == [25, 27, 29]
    assert ids(trace_tail(sample, 2, kinds=["strategy_started", "trade_created"])) == [26, 28]
    assert ids(trace_tail(sample, 3, symbol="XRP/ETH")) == [21, 24, 27]
    assert trace_tail(sample, 3, symbol="NOPE/X") == []
    since, until = (T0 + 5000) * 10**6, "2023-11-14T22:13:28Z"
    assert ids(trace_tail(sample, 100, since=since, until=until)) == [5, 6, 7]
    assert ids(trace_tail(sample, 2, run=2)) == [18, 19]
    assert ids(trace_tail(sample, 100, run="last")) == list(range(20, 30))


def test_tail_as_frame(sample):
    """as_frame gives a DataFrame with UTC datetimes."""
    frame = trace_tail(sample, 2, as_frame=True)
    assert list(frame.columns) == ["ts", "kind", "exchange", "symbol", "strategy", "run", "seq",
                                   "payload"]
    assert frame["ts"].iloc[-1] == pd.Timestamp("2023-11-14T22:13:49Z")
    assert frame["payload"].iloc[-1] == {"i": 29}


def test_tail_as_frame_without_pandas(sample, monkeypatch):
    """A clear error when pandas is missing."""
    import builtins
    real = builtins.__import__

    def no_pandas(name, *a, **k):
        if name == "pandas":
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(TraceError, match="as_frame=True needs pandas"):
        trace_tail(sample, as_frame=True)


def test_tail_accepts_an_event_trace(tmp_path):
    """An EventTrace works as the trace argument; only committed events are seen."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x", flush_interval=60) as t:
        t.record("market_data", {"i": 0})
        assert trace_tail(t) == []
        t.flush()
        assert ids(trace_tail(t)) == [0]


def test_tail_across_chunks_with_sparse_matches(tmp_path):
    """A rare kind far back is found through several index chunks."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x", flush_events=10**9,
                         flush_interval=60) as t:
        t.record("liquidation", {"i": -1})
        for i in range(INDEX_CHUNK * 3):
            t.record("market_data", {"i": i})
    assert ids(trace_tail(t.path, 1, kinds="liquidation")) == [-1]
    assert ids(trace_tail(t.path, 2)) == [INDEX_CHUNK * 3 - 2, INDEX_CHUNK * 3 - 1]


def test_iter_events_streams_in_order(sample):
    """iter_events yields every matching event oldest first."""
    assert ids(iter_events(sample)) == list(range(30))
    assert ids(iter_events(sample, run="last", kinds="order_created")) == [21, 23, 25, 27, 29]
    assert ids(iter_events(sample, symbol="XRP/ETH", until=(T0 + 10000) * 10**6)) == [3, 6, 9]
    with pytest.raises(TraceError, match="run must be an int"):
        iter_events(sample, run="first")


def test_follow_yields_new_events(tmp_path):
    """follow gives the tail, then events committed later."""
    trace = EventTrace.open(tmp_path / "t", strategy="S", exchange="x", flush_interval=0.01)
    trace.record("market_data", {"i": 0})
    trace.flush()
    got = []

    def consume():
        for event in follow(trace.path, n=5, interval=0.01):
            got.append(event["payload"]["i"])
            if len(got) == 4:
                return
    reader = threading.Thread(target=consume)
    reader.start()
    for i in range(1, 4):
        eventually(lambda: len(got) == i)  # it has given all so far: the next comes later
        trace.record("market_data", {"i": i})
    reader.join(10)
    trace.close()
    assert got == [0, 1, 2, 3]


def test_trace_info(sample):
    """info sums segments, runs, symbols and the time span."""
    info = trace_info(sample, check=True)
    assert info["events"] == info["readable_events"] == 30
    assert info["strategy"] == "S" and info["exchange"] == "x" and info["last_run"] == 3
    assert info["symbols"] == ["ETH/BTC", "XRP/ETH"]
    assert info["ts_min"] == T0 * 10**6 and info["ts_max"] == (T0 + 29000) * 10**6
    assert info["problems"] == []


def test_bad_filters_raise(sample):
    """A misspelt kind or an unreadable time names the problem."""
    with pytest.raises(TraceError, match="unknown event kind 'order_creatd'; known kinds:"):
        trace_tail(sample, kinds="order_creatd")
    with pytest.raises(TraceError, match="cannot read 'yesterday' as a time"):
        trace_tail(sample, since="yesterday")


def test_follow_past_a_stray_empty_segment_directory(tmp_path):
    """A stray empty s999999/ (which writers now step over) made follow wait behind it for
    ever: `trace tail --follow` showed nothing new while the run went on writing."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x") as trace:
        trace.record("market_data", {"i": 0})
    (trace.path / "s999999").mkdir()
    stream = follow(trace.path, n=5, interval=0.01)
    assert next(stream)["payload"] == {"i": 0}
    got = []
    reader = threading.Thread(target=lambda: got.append(next(stream)["payload"]), daemon=True)
    reader.start()
    with EventTrace.open(trace.path) as writer:
        writer.record("market_data", {"i": 1})
    reader.join(10)
    assert got == [{"i": 1}]
