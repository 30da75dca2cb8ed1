"""Bad input: what a user sees, and that every intact event stays readable."""

import json

import pytest
import zarr

from planarpy.cli.main import main
from planarpy.core.errors import PlanarError
from planarpy.integrity import seal
from planarpy.trace import (EventTrace, TraceDamageWarning, TraceError, iter_events, trace_info,
                            trace_tail)
from planarpy.trace.layout import INDEX_CHUNK, KIND

N = INDEX_CHUNK * 2 + 1000  # three index chunks


@pytest.fixture
def big(tmp_path):
    """A trace of N events in one segment; payload {"i": i} plus padding."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x", flush_events=10**9,
                         flush_interval=60) as trace:
        for i in range(N):
            trace.record("market_data", {"i": i, "pad": "p" * 50}, symbol="A/B")
    return trace.path


def ids(events):
    return [e["payload"]["i"] for e in events]


def messages(record):
    return "\n".join(str(w.message) for w in record)


def reseal(segment, **changes):
    """Change a segment's attributes and seal them again, as a faulty writer would."""
    meta = segment / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"] = seal({**doc["attributes"], **changes})
    meta.write_text(json.dumps(doc))


def test_trace_error_is_a_planar_error():
    assert issubclass(TraceError, PlanarError)


def test_path_that_is_not_a_trace(tmp_path):
    """Missing directories, plain directories, files and foreign Zarr groups are refused."""
    with pytest.raises(TraceError, match="is not an EventTrace: no such directory"):
        trace_tail(tmp_path / "missing")
    with pytest.raises(TraceError, match="is not an EventTrace: no zarr.json there"):
        trace_tail(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TraceError, match="no such directory"):
        trace_tail(tmp_path / "file")
    zarr.open_group(str(tmp_path / "g"), mode="w", attributes={"format": "planarpy.ohlcv/1"})
    with pytest.raises(TraceError, match=r"is not an EventTrace \(format attribute "
                                         r"'planarpy.ohlcv/1', expected 'planarpy.trace/2'\)"):
        trace_tail(tmp_path / "g")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "zarr.json").write_text("{not json")
    with pytest.raises(TraceError, match=r"zarr.json is not valid JSON \(JSONDecodeError"):
        trace_info(tmp_path / "junk")


def test_writer_refuses_a_foreign_directory(tmp_path):
    """A writer never writes into a non-empty directory that is not a trace."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "notes.txt").write_text("mine")
    with pytest.raises(TraceError, match="exists and is not an EventTrace; refusing to write"):
        EventTrace.open(tmp_path / "t", strategy="S", exchange="x")


def test_newer_format_version(tmp_path):
    """A trace from a newer planarpy says so and asks for an upgrade."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x") as trace:
        trace.record("market_data", {})
    zarr.open_group(str(trace.path), mode="r+").update_attributes({"format": "planarpy.trace/9"})
    message = "written in trace format version 9, newer than this planarpy reads .*upgrade"
    with pytest.raises(TraceError, match=message):
        trace_tail(trace.path)
    with pytest.raises(TraceError, match=message):
        EventTrace.open(trace.path)


def test_deleted_index_chunk(big):
    """A deleted chunk file loses its rows (and the next row, whose payload starts where
    the lost row's ended) only; the warning names segment and rows."""
    (big / "s000000" / "index" / "c" / "1" / "0").unlink()
    with pytest.warns(TraceDamageWarning, match=rf"s000000: {INDEX_CHUNK + 1} damaged events "
                                                rf"skipped \(rows {INDEX_CHUNK}..{2 * INDEX_CHUNK}"):
        got = ids(iter_events(big))
    assert got == list(range(INDEX_CHUNK)) + list(range(2 * INDEX_CHUNK + 1, N))
    with pytest.warns(TraceDamageWarning):
        assert ids(trace_tail(big, 2)) == [N - 2, N - 1]
    with pytest.raises(TraceError, match="damaged events skipped"):
        list(iter_events(big, errors="raise"))


def test_truncated_index_chunk(big):
    """A truncated chunk fails its checksum and is reported by name."""
    chunk = big / "s000000" / "index" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    with pytest.warns(TraceDamageWarning) as record:
        got = ids(iter_events(big))
    assert got == list(range(INDEX_CHUNK + 1, N))  # the first row after needs off[-1]
    assert "segment s000000: index chunk 0 is damaged (checksum mismatch)" in messages(record)
    assert f"{INDEX_CHUNK + 1} damaged events skipped (rows 0..{INDEX_CHUNK}" in messages(record)


def test_truncated_heap_chunk(big):
    """Events whose payload lies in a damaged heap chunk are skipped, others read."""
    chunk = big / "s000000" / "heap" / "c" / "1"
    chunk.write_bytes(b"garbage")
    with pytest.warns(TraceDamageWarning) as record:
        got = ids(iter_events(big))
    assert "segment s000000: heap chunk 1 is damaged (checksum mismatch)" in messages(record)
    assert "events with unreadable payloads skipped" in messages(record)
    assert 0 < len(got) < N and got == sorted(got) and got[0] == 0 and got[-1] == N - 1
    info = trace_info(big, check=True)
    assert info["readable_events"] == len(got)
    assert any("unreadable payloads skipped" in p for p in info["problems"])


def test_committed_count_larger_than_data(big):
    """A (sealed) count beyond the arrays is clamped; unwritten rows are skipped."""
    reseal(big / "s000000", rows=10**9)
    with pytest.warns(TraceDamageWarning) as record:
        got = ids(iter_events(big))
    assert got == list(range(N))
    assert "s000000 claims 1000000000 events / " in messages(record)
    assert "reading what is there" in messages(record)


def test_damaged_segment_metadata(tmp_path):
    """A segment whose zarr.json is garbage is skipped; other segments are read."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x", segment_rows=2) as trace:
        for i in range(6):
            trace.record("market_data", {"i": i})
    (trace.path / "s000001" / "zarr.json").write_text("garbage")
    with pytest.warns(TraceDamageWarning) as record:
        assert ids(iter_events(trace.path)) == [0, 1, 4, 5]
    assert "segment s000001 is damaged and skipped: " in messages(record)
    assert "s000001/zarr.json is not valid JSON" in messages(record)
    assert "events 2..3 are missing between s000000 and s000002" in messages(record)
    (trace.path / "s000002" / "index" / "zarr.json").unlink()
    with pytest.warns(TraceDamageWarning) as record:
        assert ids(trace_tail(trace.path, 10)) == [0, 1]
    assert "segment s000002 is damaged and skipped: its arrays cannot be opened" in messages(record)
    with EventTrace.open(trace.path) as writer:  # a writer carries on in a fresh segment
        writer.record("market_data", {"i": 6})
    with pytest.warns(TraceDamageWarning):
        assert ids(trace_tail(trace.path, 10)) == [0, 1, 6]


def test_unknown_kind_code(tmp_path):
    """A code missing from the kind table reads back as unknown:<code>."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x") as trace:
        trace.record("market_data", {"i": 0})
        trace.record("market_data", {"i": 1})
    zarr.open_array(str(trace.path / "s000000" / "index"), mode="r+")[1, KIND] = 200
    events = trace_tail(trace.path)
    assert [e["kind"] for e in events] == ["market_data", "unknown:200"]
    assert ids(trace_tail(trace.path, kinds="unknown:200")) == [1]


def test_kind_table_comes_from_the_trace(tmp_path):
    """Kinds are named by the table stored in the trace: a newer planarpy's appended kinds
    read by name; a table that renames a code is damage, and its segment is skipped."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x") as trace:
        trace.record("market_data", {"i": 0})
        trace.record("market_data", {"i": 1})
    seg = trace.path / "s000000"
    kinds = json.loads((seg / "zarr.json").read_text())["attributes"]["kinds"]
    reseal(seg, kinds=kinds + ["order_amended"])
    zarr.open_array(str(seg / "index"), mode="r+")[1, KIND] = len(kinds)
    assert [e["kind"] for e in trace_tail(trace.path)] == ["market_data", "order_amended"]
    kinds[kinds.index("market_data")] = "market_data_v2"
    reseal(seg, kinds=kinds)
    with pytest.warns(TraceDamageWarning, match="its kind table disagrees with this planarpy's "
                                                r"\(code \d+ is 'market_data_v2' there"):
        assert trace_tail(trace.path) == []


def test_cli_shows_errors_and_damage(big, tmp_path, capsys):
    """The command prints `planarpy: error: ...` and damage warnings on one line each."""
    assert main(["trace", "tail", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"planarpy: error: {tmp_path / 'missing'} is not an EventTrace: no such directory\n"
    (big / "s000000" / "index" / "c" / "2" / "0").unlink()
    assert main(["trace", "tail", str(big), "-n", "1"]) == 0
    out, err = capsys.readouterr()
    assert "market_data" in out and "i=32767" in out
    assert err == (f"planarpy: warning: trace {big}: segment s000000: 1000 damaged events "
                   "skipped (rows 32768..33767: missing or damaged chunks, or inconsistent "
                   "rows)\n")
    assert main(["trace", "info", "--check", str(big)]) == 1
    out = capsys.readouterr().out
    assert "readable  32768" in out and "problem   trace" in out


def test_hand_edited_root_metadata(tmp_path):
    """A root zarr.json that is valid JSON but no group is rejected."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "zarr.json").write_text(json.dumps({"zarr_format": 2}))
    with pytest.raises(TraceError, match="zarr.json is not the metadata of a Zarr v3 group"):
        trace_tail(tmp_path / "t")


def test_malformed_committed_count(tmp_path):
    """A count that is not a number skips that segment only, sealed or not."""
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="x", segment_rows=1) as trace:
        trace.record("market_data", {"i": 0})
        trace.record("market_data", {"i": 1})
    reseal(trace.path / "s000000", rows="many")
    with pytest.warns(TraceDamageWarning, match="s000000 is damaged and skipped: its committed "
                                                "state is malformed"):
        assert ids(trace_tail(trace.path)) == [1]
    zarr.open_group(str(trace.path / "s000000"), mode="r+").update_attributes({"rows": 1})
    with pytest.warns(TraceDamageWarning, match="s000000 is damaged and skipped: its metadata "
                                                "fails its checksum"):
        assert ids(trace_tail(trace.path)) == [1]


def test_errors_argument_is_checked(tmp_path):
    """A misspelt errors= value is refused."""
    EventTrace.open(tmp_path / "t", strategy="S", exchange="x").close()
    with pytest.raises(ValueError, match="errors must be 'warn', 'raise' or 'skip', not 'ignore'"):
        trace_tail(tmp_path / "t", errors="ignore")
