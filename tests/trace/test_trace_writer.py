"""EventTrace writing: buffering, flushing, runs, segments, reopening."""

import subprocess
import sys
import time

import pytest
import zarr

from planarpy.core.clock import Clock
from planarpy.trace import EventTrace, TraceError, iter_events, trace_info, trace_tail
from planarpy.trace.layout import DAY_NS, HEAP_CHUNK, INDEX_CHUNK, INDEX_FIELDS, segment_names

T0 = 1_700_000_000_000  # ms


def open_trace(tmp_path, **kw):
    kw.setdefault("clock", Clock(T0))
    return EventTrace.open(tmp_path / "t", strategy="S", exchange="binance", **kw)


def test_record_flush_and_read_back(tmp_path):
    """Recorded events read back in order with the schema fields."""
    clock = Clock(T0)
    with open_trace(tmp_path, clock=clock, flush_interval=60) as trace:
        trace.record("strategy_started", {"cash": 100})
        clock.advance(5)
        trace.record("order_created", {"id": "a"}, symbol="ETH/BTC")
        trace.record("trade_created", {"id": "t"}, symbol="ETH/BTC", ts=123)
        assert trace.pending == 3 and trace_tail(trace.path) == []
        assert trace.flush() == 3 and trace.pending == 0
    events = trace_tail(trace.path)
    assert [e["kind"] for e in events] == ["strategy_started", "order_created", "trade_created"]
    assert events[1] == {"ts": (T0 + 5) * 10**6, "kind": "order_created", "exchange": "binance",
                         "symbol": "ETH/BTC", "strategy": "S", "run": 1, "seq": 1,
                         "payload": {"id": "a"}}
    assert events[2]["ts"] == 123 and events[0]["symbol"] is None


def test_clock_may_be_a_callable(tmp_path):
    """A plain function returning ns serves as the clock."""
    with open_trace(tmp_path, clock=lambda: 42) as trace:
        trace.record("balance_updated", {})
    assert trace_tail(trace.path)[0]["ts"] == 42
    with pytest.raises(TypeError, match="now_ns"):
        EventTrace.open(tmp_path / "u", strategy="S", exchange="x", clock=5)


def test_payload_is_a_snapshot(tmp_path):
    """Mutating a payload dict after record does not change what is stored."""
    with open_trace(tmp_path) as trace:
        payload = {"filled": 0}
        trace.record("order_updated", payload)
        payload["filled"] = 1
    assert trace_tail(trace.path)[0]["payload"] == {"filled": 0}


def test_unknown_kind_and_closed_trace_raise(tmp_path):
    """Programming errors raise at once with a clear message."""
    trace = open_trace(tmp_path)
    with pytest.raises(ValueError, match="unknown event kind 'nope'; known kinds: strategy_started"):
        trace.record("nope", {})
    with pytest.raises(TypeError, match="must be a dict"):
        trace.record("order_created", "x")
    trace.close()
    trace.close()  # idempotent
    with pytest.raises(TraceError, match="is closed"):
        trace.record("order_created", {})


def test_background_flush_by_count_and_by_time(tmp_path):
    """The worker thread commits at flush_events events, and after flush_interval."""
    with open_trace(tmp_path, flush_interval=60, flush_events=50) as trace:
        for i in range(50):
            trace.record("market_data", {"i": i})
        deadline = time.monotonic() + 5
        while trace_info(trace.path)["events"] < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert trace_info(trace.path)["events"] == 50
    with open_trace(tmp_path, flush_interval=0.05, flush_events=10**6) as trace:
        trace.record("market_data", {"i": 50})
        deadline = time.monotonic() + 5
        while trace_info(trace.path)["events"] < 51 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert trace_info(trace.path)["events"] == 51


def test_a_change_of_the_trading_state_is_committed_at_once(tmp_path):
    """A restart reads the trading state back from the trace, so a halt is not left in
    the buffer until the next flush_interval (a crash then would lose it): recording it
    wakes the worker, which commits it and what came before it."""
    with open_trace(tmp_path, flush_interval=60, flush_events=10**6) as trace:
        trace.record("market_data", {"i": 0})
        trace.record("trading_state_changed", {"state": "halted", "previous": "active",
                                               "rule": "max_daily_loss", "reason": "x"})
        deadline = time.monotonic() + 5
        while trace_info(trace.path)["events"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert trace_info(trace.path)["events"] == 2
        assert [e["kind"] for e in trace_tail(trace.path, n=2)] == ["market_data",
                                                                    "trading_state_changed"]


def test_runs_continue_across_reopen(tmp_path):
    """Each strategy_started opens a run; a reopened writer continues the numbering."""
    with open_trace(tmp_path) as trace:
        trace.record("order_created", {})
        trace.record("strategy_started", {})
        trace.record("order_created", {})
    with open_trace(tmp_path) as trace:
        assert trace.run == 1
        trace.record("order_created", {"late": True})
        trace.record("strategy_started", {})
        trace.record("order_created", {"n": 2})
    assert [e["run"] for e in iter_events(trace.path)] == [0, 1, 1, 1, 2, 2]
    assert [e["payload"] for e in iter_events(trace.path, run="last")] == [{}, {"n": 2}]
    assert len(list(iter_events(trace.path, run=1))) == 3


def test_capacity_doubles_and_data_survives(tmp_path):
    """Growing past the first index and heap chunks keeps every event."""
    n = INDEX_CHUNK * 2 + 100
    pad = "x" * 100
    with open_trace(tmp_path, flush_interval=60, flush_events=10**9) as trace:
        for i in range(n):
            trace.record("market_data", {"i": i, "pad": pad})
    group = zarr.open_group(str(trace.path / "s000000"), mode="r")
    assert group["index"].shape == (INDEX_CHUNK * 4, len(INDEX_FIELDS))
    assert group["heap"].shape[0] >= n * 100 and group["heap"].shape[0] % HEAP_CHUNK == 0
    assert [e["payload"]["i"] for e in iter_events(trace.path)] == list(range(n))


def test_segments_rotate_by_day_and_size(tmp_path):
    """A new segment starts at UTC midnight and at segment_rows; readers see one trace."""
    day = DAY_NS
    with open_trace(tmp_path, segment_rows=3) as trace:
        for i, ts in enumerate([day - 2, day - 1, day, day + 1, day + 2, day + 3, 3 * day]):
            trace.record("market_data", {"i": i}, ts=ts)
    names = segment_names(trace.path)
    info = trace_info(trace.path)
    assert names == ["s000000", "s000001", "s000002", "s000003"]
    assert [s["rows"] for s in info["segments"]] == [2, 3, 1, 1]
    assert [s["day"] for s in info["segments"]] == ["1970-01-01", "1970-01-02", "1970-01-02",
                                                    "1970-01-04"]
    assert [e["payload"]["i"] for e in iter_events(trace.path)] == list(range(7))
    assert [e["payload"]["i"] for e in trace_tail(trace.path, 5)] == [2, 3, 4, 5, 6]
    assert [e["payload"]["i"] for e in trace_tail(trace.path, 2, since=day, until=3 * day)] == [4, 5]


def test_daily_rotation_can_be_switched_off(tmp_path):
    """With daily=False only segment_rows splits a trace."""
    with open_trace(tmp_path, daily=False) as trace:
        for ts in (0, DAY_NS, 5 * DAY_NS):
            trace.record("market_data", {}, ts=ts)
    assert segment_names(trace.path) == ["s000000"]


def test_fsync_option_commits_normally(tmp_path):
    """fsync=True writes the same trace, syncing each commit."""
    with open_trace(tmp_path, fsync=True) as trace:
        for i in range(3):
            trace.record("market_data", {"i": i}, symbol="A/B")
            trace.flush()
    assert [e["payload"]["i"] for e in iter_events(trace.path)] == [0, 1, 2]


def test_second_writer_is_refused(tmp_path):
    """Only one writer may hold a trace; the lock goes with close."""
    with open_trace(tmp_path):
        with pytest.raises(TraceError, match="being written by another process"):
            open_trace(tmp_path)
    open_trace(tmp_path).close()


def test_open_checks_identity_and_path(tmp_path):
    """An existing trace must match the strategy and exchange given; new ones need both."""
    open_trace(tmp_path).close()
    with pytest.raises(TraceError, match="trace of exchange 'binance', not 'kraken'"):
        EventTrace.open(tmp_path / "t", exchange="kraken")
    with pytest.raises(TraceError, match="give strategy and exchange"):
        EventTrace.open(tmp_path / "new")
    with pytest.raises(TraceError, match="cannot name a trace directory"):
        EventTrace.open(strategy="../x", exchange="binance", root=tmp_path)
    EventTrace.open(tmp_path / "t").close()


def test_default_path_is_traces_strategy_exchange(tmp_path, monkeypatch):
    """Without a path the trace goes to traces/<strategy>/<exchange> ($PLANARPY_TRACES)."""
    monkeypatch.chdir(tmp_path)
    with EventTrace.open(strategy="Sma", exchange="binance") as trace:
        trace.record("strategy_started", {})
    assert trace.path == tmp_path / "traces" / "Sma" / "binance"
    monkeypatch.setenv("PLANARPY_TRACES", str(tmp_path / "elsewhere"))
    with EventTrace.open(strategy="Sma", exchange="binance") as trace:
        pass
    assert trace.path == tmp_path / "elsewhere" / "Sma" / "binance"


def test_leftover_partial_files_are_deleted_on_open(tmp_path):
    """Temporaries of a killed writer are removed by the next writer."""
    with open_trace(tmp_path) as trace:
        trace.record("market_data", {})
    partial = trace.path / "s000000" / "index" / "c" / "0" / "0.deadbeef.partial"
    partial.write_bytes(b"junk")
    tmp_segment = trace.path / ".s000001.tmp-1234"
    tmp_segment.mkdir()
    open_trace(tmp_path).close()
    assert not partial.exists() and not tmp_segment.exists()


def test_layout_is_plain_zarr(tmp_path):
    """Zarr itself opens the hierarchy: the index and heap, their chunks and attributes."""
    with open_trace(tmp_path) as trace:
        trace.record("order_created", {"id": 1}, symbol="ETH/BTC")
    root = zarr.open_group(str(trace.path), mode="r")
    assert root.attrs["format"] == "planarpy.trace/2"
    assert (root.attrs["strategy"], root.attrs["exchange"]) == ("S", "binance")
    seg = root["s000000"]
    assert seg.attrs["rows"] == 1 and seg.attrs["symbols"] == [None, "ETH/BTC"]
    assert seg.attrs["seq_first"] == 0 and isinstance(seg.attrs["crc"], int)
    seq, ts, kind, sym, run, off = seg["index"][0]
    assert (seq, sym, run, off) == (0, 1, 0, 8)
    assert seg.attrs["kinds"][kind] == "order_created"
    assert (str(seg["index"].dtype), str(seg["heap"].dtype)) == ("int64", "uint8")
    assert seg["index"].chunks == (INDEX_CHUNK, 6) and seg["heap"].chunks == (HEAP_CHUNK,)
    assert [c.to_dict()["name"] for c in seg["heap"].compressors] == ["zstd", "crc32c"]
    assert bytes(seg["heap"][:off]) == b'{"id":1}'
    assert [k for k, _ in root.members()] == ["s000000"]


def test_atexit_flushes_an_unclosed_trace(tmp_path):
    """A process that exits without close() still commits its events."""
    code = ("from planarpy.trace import EventTrace\n"
            f"t = EventTrace.open({str(tmp_path / 't')!r}, strategy='S', exchange='x',"
            " flush_interval=3600)\n"
            "for i in range(10): t.record('market_data', {'i': i})\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert [e["payload"]["i"] for e in iter_events(tmp_path / "t")] == list(range(10))


def test_flush_failure_keeps_events_and_raises(tmp_path):
    """A failed write keeps the batch for the next flush and surfaces as TraceError."""
    trace = open_trace(tmp_path, flush_interval=60)
    trace.record("market_data", {"i": 0})
    def fail(*args):
        raise OSError("disk full")
    type(trace.store).append, real = fail, type(trace.store).append
    try:
        with pytest.raises(TraceError, match="cannot write trace .*: disk full"):
            trace.flush()
        assert trace.pending == 1
    finally:
        type(trace.store).append = real
    trace.close()
    assert len(trace_tail(trace.path)) == 1


@pytest.mark.anyio
async def test_async_flush_and_close(tmp_path):
    """aflush/aclose run the blocking work in a worker thread."""
    trace = open_trace(tmp_path, flush_interval=60)
    trace.record("market_data", {})
    assert await trace.aflush() == 1
    await trace.aclose()
    assert trace.closed


@pytest.fixture
def anyio_backend():
    return "asyncio"




@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_forked_child_does_not_flush_parent_events(tmp_path):
    """Events buffered before a fork are written once, by the parent."""
    code = ("import os, sys\n"
            "from planarpy.trace import EventTrace\n"
            f"t = EventTrace.open({str(tmp_path / 't')!r}, strategy='S', exchange='x',"
            " flush_interval=3600)\n"
            "t.record('market_data', {'i': 0})\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    sys.exit(0)\n"
            "os.waitpid(pid, 0)\n"
            "t.close()\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert [e["payload"]["i"] for e in iter_events(tmp_path / "t")] == [0]
