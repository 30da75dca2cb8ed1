"""Nothing committed is lost, duplicated or silently changed: write failures, bit flips,
damaged segments, a bounded pending buffer, journals."""

import errno
import json
import logging
import os
import random
import subprocess
import threading
import time
import warnings
from pathlib import Path

import diskkit
import pytest
from tracekit import check_exact, open_trace, record
from zarr.storage import LocalStore

from planarpy.cli.main import main
from planarpy.trace import EventTrace, TraceDamageWarning, TraceError, iter_events, trace_info
from planarpy.trace import store as trace_store
from planarpy.trace.layout import segment_names

def fail_once(monkeypatch, owner, name, error):
    """Make owner.name raise `error` the first time it is called."""
    real = getattr(owner, name)
    calls = []

    def failing(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise error
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, failing)
    return calls


# finding 2: a failed rotation must not make the retry write committed events again

def disk_full_in_new_segments(monkeypatch):
    """Make zarr's LocalStore fail with ENOSPC on the files of segments being built."""
    real = LocalStore.set

    async def set_(self, key, value):
        if ".tmp-" in str(self.root) or ".tmp-" in key:
            raise OSError(errno.ENOSPC, "No space left on device")
        return await real(self, key, value)
    monkeypatch.setattr(LocalStore, "set", set_)
    return lambda: monkeypatch.setattr(LocalStore, "set", real)


@pytest.mark.parametrize("boundary", ["segment", "zarr store"])
def test_enospc_at_rotation_never_duplicates(tmp_path, monkeypatch, boundary):
    """Disk full while starting a new segment (injected where the trace creates segments,
    or where zarr writes files): the first part is committed, the retry writes only the
    rest (it wrote all 200 again: 250 read back)."""
    trace = open_trace(tmp_path / "t", segment_rows=150, daily=False)
    record(trace, 0, 200)
    trace.flush()
    if boundary == "segment":
        fail_once(monkeypatch, trace_store.Segment, "create",
                  OSError(errno.ENOSPC, "No space left on device"))
    else:
        heal = disk_full_in_new_segments(monkeypatch)
    record(trace, 200, 400)
    with pytest.raises(TraceError, match="No space left on device"):
        trace.flush()
    assert trace.pending == 100 and trace.store.next_seq == 300
    health = trace.health()
    assert health.failing and health.failed_flushes == 1 and not health.ok
    if boundary == "zarr store":
        heal()
    assert trace.flush() == 100
    trace.close()
    check_exact(trace.path, 400)
    assert [s["rows"] for s in trace_info(trace.path)["segments"]] == [150, 150, 100]


def test_rotation_failing_after_its_rename_goes_on_in_the_next_name(tmp_path, monkeypatch):
    """A new segment renamed into place whose opening then fails is left empty, and the
    retry writes to the next name: nothing lost, nothing twice, no gap reported."""
    trace = open_trace(tmp_path / "t", segment_rows=10, daily=False)
    record(trace, 0, 10)
    trace.flush()
    real = trace_store.Segment.open.__func__
    fails = []

    def open_(cls, path, attributes):
        if attributes["index"] == 1 and not fails:
            fails.append(path)
            raise TraceError("injected")
        return real(cls, path, attributes)
    monkeypatch.setattr(trace_store.Segment, "open", classmethod(open_))
    record(trace, 10, 25)
    with pytest.raises(TraceError, match="injected"):
        trace.flush()
    trace.flush()
    trace.close()
    check_exact(trace.path, 25)
    assert segment_names(trace.path) == ["s000000", "s000001", "s000002", "s000003"]
    assert trace_info(trace.path, check=True)["problems"] == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs mounted for this test (root only), so the disk really fills up."""
    with diskkit.small_tmpfs(tmp_path / "mnt") as mount:
        yield mount


def test_real_full_disk_at_rotation(small_tmpfs):
    """On a real full tmpfs, with 4 to 64 KiB left, a flush that rotates fails part-way at
    some sizes; once space is freed every event is there exactly once."""
    partial = 0
    for leave in range(4096, 65537, 4096):
        path = small_tmpfs / f"t{leave}"
        trace = open_trace(path, segment_rows=150, daily=False)
        record(trace, 0, 149)
        trace.flush()
        filler = diskkit.fill(small_tmpfs, leave)
        record(trace, 149, 300)
        try:
            trace.flush()
        except TraceError as e:
            assert "No space left on device" in str(e)
            partial += trace_info(path)["events"] > 149
        filler.unlink()
        trace.flush()
        trace.close()
        check_exact(path, 300)
        for p in small_tmpfs.iterdir():
            if p.name.startswith("t"):
                subprocess.run(["rm", "-rf", str(p)], check=True)
    assert partial, "no flush failed after committing its first part: size the test again"


# finding 3: a flipped bit must never change what is read

def flip_each(path: Path, positions: list[int]):
    """Yield after flipping each bit position of the file `path` in turn (restored after)."""
    original = path.read_bytes()
    for bit in positions:
        data = bytearray(original)
        data[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(data))
        yield bit
    path.write_bytes(original)


@pytest.mark.parametrize("chunk", ["heap/c/0", "index/c/0/0"])
def test_bit_flips_are_detected_never_read(tmp_path, chunk, capsys):
    """40 single-bit flips in a heap or index chunk: no event is ever read changed (5 of 40
    changed a price silently), and each flip is found and named; `info --check` fails."""
    with open_trace(tmp_path / "t") as trace:
        record(trace, 0, 300)
    original = {e["payload"]["i"]: e for e in iter_events(trace.path)}
    target = trace.path / "s000000" / chunk
    positions = random.Random(3).sample(range(target.stat().st_size * 8), 40)
    changed = []
    for bit in flip_each(target, positions):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TraceDamageWarning)
            changed += [(bit, e) for e in iter_events(trace.path) if e != original.get(e["payload"]["i"])]
    assert changed == []
    for _ in flip_each(target, positions):
        with pytest.warns(TraceDamageWarning) as warned:
            list(iter_events(trace.path))
        text = "\n".join(str(w.message) for w in warned)
        assert f"segment s000000: {chunk.split('/')[0]} chunk 0 is damaged" in text
        assert main(["trace", "info", "--check", str(trace.path)]) == 1
        assert "is damaged" in capsys.readouterr().out
    assert main(["trace", "info", "--check", str(trace.path)]) == 0


def test_damaged_commit_is_found(tmp_path):
    """A flipped bit in a committed count or kind table fails the segment's seal."""
    with open_trace(tmp_path / "t", segment_rows=2, daily=False) as trace:
        record(trace, 0, 6)
    meta = trace.path / "s000001" / "zarr.json"
    meta.write_text(meta.read_text().replace('"order_created"', '"order_createe"'))
    with pytest.warns(TraceDamageWarning) as warned:
        assert [e["payload"]["i"] for e in iter_events(trace.path)] == [0, 1, 4, 5]
    text = "\n".join(str(w.message) for w in warned)
    assert "s000001 is damaged and skipped: its metadata fails its checksum" in text
    assert "events 2..3 are missing between s000000 and s000002" in text


# finding 5: damaged segments never block readers or writers

LEFT_BY_A_RACE = {"zarr_format": 3, "node_type": "group", "attributes": {}}


@pytest.mark.parametrize("damage", ["no attributes", "garbage", "tail chunk", "no index"])
def test_writer_starts_after_a_damaged_last_segment(tmp_path, damage):
    """Whatever the damage to the last segment, a writer opens the trace and goes on in a
    new segment, and readers read every intact event (a writer could not open it)."""
    with open_trace(tmp_path / "t", segment_rows=3, daily=False) as trace:
        record(trace, 0, 5)
    last = trace.path / "s000001"
    if damage == "no attributes":
        (last / "zarr.json").write_text(json.dumps(LEFT_BY_A_RACE))
    elif damage == "garbage":
        (last / "zarr.json").write_bytes(os.urandom(64))
    elif damage == "tail chunk":
        chunk = last / "heap" / "c" / "0"
        chunk.write_bytes(chunk.read_bytes()[:-1] + b"!")
    else:
        (last / "index" / "zarr.json").unlink()
    with open_trace(trace.path, segment_rows=3, daily=False) as writer:
        assert writer.store.next_seq == 5 or damage in ("no attributes", "garbage")
        record(writer, 5, 7)
    assert segment_names(trace.path)[-1] == "s000002"
    with pytest.warns(TraceDamageWarning) as warned:
        got = [e["payload"]["i"] for e in iter_events(trace.path)]
    assert got == [0, 1, 2, 5, 6]
    assert all("s000001" in str(w.message) for w in warned)


def test_segment_left_without_attributes_is_skipped_in_the_middle(tmp_path):
    """What race 1 left behind (a segment zarr.json with no attributes) made the whole trace
    unreadable; now only that segment is skipped, with a warning naming it."""
    with open_trace(tmp_path / "t", segment_rows=2, daily=False) as trace:
        record(trace, 0, 6)
    (trace.path / "s000001" / "zarr.json").write_text(json.dumps(LEFT_BY_A_RACE))
    with pytest.warns(TraceDamageWarning) as warned:
        assert [e["payload"]["i"] for e in iter_events(trace.path)] == [0, 1, 4, 5]
    text = "\n".join(str(w.message) for w in warned)
    assert "segment s000001 is damaged and skipped: its format attribute is None" in text
    assert "events 2..3 are missing between s000000 and s000002" in text


def test_stray_empty_segment_directory_blocks_nothing(tmp_path, recwarn):
    """A stray empty s999999/ stopped every writer; now it is no segment at all."""
    with open_trace(tmp_path / "t") as trace:
        record(trace, 0, 3)
    (trace.path / "s999999").mkdir()
    with open_trace(trace.path) as writer:
        record(writer, 3, 5)
    check_exact(trace.path, 5)
    assert trace_info(trace.path, check=True)["problems"] == []
    assert not [w for w in recwarn if issubclass(w.category, TraceDamageWarning)]


# finding 6: failures are surfaced, memory is bounded, nothing is lost

def failing_store(monkeypatch, error=None):
    """Make every append of TraceStore fail until the returned function is called."""
    error = error or OSError(errno.EROFS, "Read-only file system")
    real = trace_store.TraceStore.append

    def append(self, *args):
        raise error
    monkeypatch.setattr(trace_store.TraceStore, "append", append)
    return lambda: monkeypatch.setattr(trace_store.TraceStore, "append", real)


def wait_for(condition, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_pending_events_are_bounded_by_back_pressure(tmp_path, monkeypatch):
    """While the trace cannot be written, record blocks at max_pending events instead of
    growing memory (2,001 pending after 1 s, no cap); it resumes once writes succeed."""
    trace = open_trace(tmp_path / "t", flush_interval=0.01, flush_events=10, max_pending=100)
    heal = failing_store(monkeypatch)
    producer = threading.Thread(target=record, args=(trace, 0, 250))
    producer.start()
    wait_for(lambda: trace.pending == 100 and trace.health().failed_flushes > 0,
             "the buffer to fill")
    assert producer.is_alive() and trace.pending == 100
    heal()
    producer.join(30)
    assert not producer.is_alive()
    trace.close()
    check_exact(trace.path, 250)
    assert not trace.health().ok and trace.health().failed_flushes >= 1


def test_failures_are_logged_once_then_recovery(tmp_path, monkeypatch, caplog):
    """Many failed flushes make one error line (not 106), and recovery one more line."""
    trace = open_trace(tmp_path / "t", flush_interval=0.005, flush_events=1)
    heal = failing_store(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="planarpy.trace"):
        record(trace, 0, 5)
        wait_for(lambda: trace.health().failed_flushes >= 5, "five failed flushes")
        assert "trace FAILING: 5 events pending" in str(trace.health())
        heal()
        wait_for(lambda: trace.pending == 0, "the events to be written")
        trace.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "cannot write ([Errno 30] Read-only file system)" in lines[0] and "retrying" in lines[0]
    assert "written again after" in lines[1] and "nothing lost" in lines[1]
    assert "trace ok again after" in str(trace.health())
    check_exact(trace.path, 5)


def test_events_left_at_close_are_journaled_and_committed_by_the_next_open(tmp_path,
                                                                          monkeypatch):
    """A trace still unwritable at close saves its events to a journal beside it; the next
    open commits them once, in order, and the numbering goes on."""
    trace = open_trace(tmp_path / "t")
    record(trace, 0, 3)
    trace.flush()
    heal = failing_store(monkeypatch)
    record(trace, 3, 10)
    trace.close()
    health = trace.health()
    assert health.journaled == 7 and health.journal == tmp_path / ".t.journal-3.jsonl"
    assert str(health) == "trace NOT WRITTEN: 7 events saved to a journal"
    assert "7 events could not be written ([Errno 30] Read-only file system); they are saved " \
           f"in {health.journal}, and the next open of the trace commits them" in health.describe()
    assert any("journal" in n for n in trace_info(trace.path)["notes"])
    heal()
    with open_trace(trace.path) as again:
        record(again, 10, 12)
    check_exact(trace.path, 12)
    assert not health.journal.exists()
    with open_trace(trace.path):
        pass  # a second open finds no journal and changes nothing
    check_exact(trace.path, 12)


def test_journal_goes_to_the_state_directory_when_beside_the_trace_fails(tmp_path,
                                                                        monkeypatch):
    """When nothing can be written beside the trace, the journal goes to $PLANARPY_JOURNALS
    (else the user's state directory), and the next open finds it there."""
    monkeypatch.setenv("PLANARPY_JOURNALS", str(tmp_path / "journals"))
    trace = open_trace(tmp_path / "t")
    heal = failing_store(monkeypatch)
    record(trace, 0, 4)
    (tmp_path / ".t.journal-0.jsonl").mkdir()  # nothing can be written under that name
    trace.close()
    where = trace.health().journal
    assert where is not None and where.parent == tmp_path / "journals"
    heal()
    open_trace(trace.path).close()
    check_exact(trace.path, 4)
    assert not where.exists()


def test_sim_that_cannot_write_its_trace_fails_and_keeps_the_events(tmp_path, repo_root,
                                                                   monkeypatch, capsys):
    """`sim --record` onto a trace that cannot be written ends non-zero, saying so, and its
    events wait in a journal for the next open."""
    monkeypatch.chdir(repo_root)
    heal = failing_store(monkeypatch)
    assert main(["sim", "sma_cross", "--record", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "planarpy: error: cannot write trace" in err and "Read-only file system" in err
    heal()
    EventTrace.open(tmp_path / "t").close()
    events = list(iter_events(tmp_path / "t", errors="raise"))
    assert events[0]["kind"] == "strategy_started" and events[-1]["kind"] == "strategy_stopped"
    assert [e["seq"] for e in events] == list(range(len(events)))


def test_damaged_root_metadata_is_reported_and_not_written_to(tmp_path, capsys):
    """A root whose seal fails (the recorded strategy may be wrong) is a problem for info
    and replay, and writers refuse it; its events are still read."""
    with open_trace(tmp_path / "t") as trace:
        record(trace, 0, 3)
    meta = trace.path / "zarr.json"
    meta.write_text(meta.read_text().replace('"strategy": "S"', '"strategy": "T"'))
    with pytest.warns(TraceDamageWarning, match="root metadata .* fails its checksum"):
        assert len(list(iter_events(trace.path))) == 3
    assert main(["trace", "info", str(trace.path)]) == 1
    assert "fails its checksum" in capsys.readouterr().out
    with pytest.raises(TraceError, match="fails its checksum: the recorded strategy and exchange "
                                         "may be wrong; not writing to it"):
        EventTrace.open(trace.path)


def test_close_releases_a_producer_waiting_for_room(tmp_path, monkeypatch):
    """A producer blocked by back-pressure is released by close (with a TraceError: its
    event was not recorded); the events already taken are journaled."""
    trace = open_trace(tmp_path / "t", max_pending=10)
    failing_store(monkeypatch)
    errors = []

    def produce():
        try:
            record(trace, 0, 11)
        except TraceError as e:
            errors.append(str(e))
    producer = threading.Thread(target=produce)
    producer.start()
    wait_for(lambda: trace.pending == 10, "the buffer to fill")
    trace.close()
    producer.join(10)
    assert not producer.is_alive() and errors == [f"trace {trace.path} is closed"]
    assert trace.health().journaled == 10
