"""Journals: events a closing trace could not write, committed by the next open once, whole
and unchanged, or kept where they are and reported."""

import errno
import json
import logging
import shutil

import pytest
from diskkit import ReadOnly
from tracekit import T0, numbers, open_trace, record

from planarpy.cli.main import main
from planarpy.trace import trace_info
from planarpy.trace import journal as journal_module
from planarpy.trace import store as trace_store

def failing_store(monkeypatch):
    """Every TraceStore.append fails (a read-only disk) until the returned function is called."""
    real = trace_store.TraceStore.append

    def append(self, *args):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(trace_store.TraceStore, "append", append)
    return lambda: monkeypatch.setattr(trace_store.TraceStore, "append", real)


def journal_of(tmp_path, committed, journaled, monkeypatch):
    """A trace at tmp_path/t with events 0..committed-1, and the next ones in a journal."""
    trace = open_trace(tmp_path / "t")
    record(trace, 0, committed)
    trace.flush()
    heal = failing_store(monkeypatch)
    record(trace, committed, committed + journaled)
    trace.close()
    heal()
    assert trace.health().journaled == journaled
    return trace.path, trace.health().journal


def test_a_journal_committed_twice_adds_each_event_once(tmp_path, monkeypatch):
    """Killed after committing a journal but before deleting it: the next open finds it
    again and adds nothing twice."""
    path, journal = journal_of(tmp_path, 3, 5, monkeypatch)
    kept = journal.read_bytes()
    open_trace(path).close()
    journal.write_bytes(kept)  # as if the process had died before the delete
    with open_trace(path) as trace:
        record(trace, 8, 10)
    assert numbers(path) == list(range(10)) and not journal.exists()


def test_opening_while_the_journal_cannot_be_written_keeps_its_events(tmp_path, monkeypatch,
                                                                      capsys):
    """The disk is still read-only at the next start: the open does not fail (it raised a
    raw OSError, so live, paper and `sim --record` could not start); the journal's events
    wait in memory ahead of the new ones and the health says so; once the disk takes them,
    every event is there once, in order, and the journal is gone."""
    path, journal = journal_of(tmp_path, 3, 5, monkeypatch)
    heal = failing_store(monkeypatch)
    trace = open_trace(path)
    health = trace.health()
    assert health.pending == 5 and health.failing and "Read-only file system" in health.last_error
    record(trace, 8, 10)
    assert trace.pending == 7 and journal.exists()
    heal()
    assert trace.flush() == 7
    assert not journal.exists()
    trace.close()
    assert numbers(path) == list(range(10))


def test_closing_again_unwritten_journals_the_journal_events_too(tmp_path, monkeypatch):
    """Still read-only at the end of the second run: the first journal's events and the
    second run's all wait in a journal, and the open after that commits each once."""
    path, journal = journal_of(tmp_path, 3, 5, monkeypatch)
    heal = failing_store(monkeypatch)
    trace = open_trace(path)
    record(trace, 8, 10)
    trace.close()
    assert trace.health().journaled == 7
    heal()
    open_trace(path).close()
    assert numbers(path) == list(range(10))
    assert not list(tmp_path.glob(".t.journal-*"))


def test_a_journal_whose_numbers_were_reused_is_kept_not_dropped(tmp_path, monkeypatch,
                                                                 caplog):
    """A journal the next run did not see (another $PLANARPY_JOURNALS, an unreadable file)
    lets the trace go on with the same sequence numbers. When the journal turns up, its
    events must not be taken for committed ones: they were dropped and the journal
    deleted ("committed 0 events"). Now it is kept and reported."""
    path, journal = journal_of(tmp_path, 3, 5, monkeypatch)
    hidden = tmp_path / "elsewhere.jsonl"
    shutil.move(journal, hidden)
    with open_trace(path) as trace:
        trace.record("order_updated", {"i": 100}, ts=T0 + 100)
    shutil.move(hidden, journal)
    with caplog.at_level(logging.ERROR, logger="planarpy.trace"):
        open_trace(path).close()
    assert journal.exists()
    assert any("differ from the events the trace holds" in r.getMessage() for r in caplog.records)
    info = trace_info(path)
    assert any(str(journal) in p and "were never committed" in p for p in info["problems"])
    assert main(["trace", "info", str(path)]) == 1


def test_a_damaged_journal_is_not_committed(tmp_path, monkeypatch, caplog):
    """A flipped bit in a journal changed a price that was then committed as if recorded;
    now the journal's checksum fails, nothing of it is committed and it is kept."""
    path, journal = journal_of(tmp_path, 3, 5, monkeypatch)
    text = journal.read_text()
    assert "0.0908054" in text
    journal.write_text(text.replace("0.0908054", "0.0908055", 1))
    with caplog.at_level(logging.ERROR, logger="planarpy.trace"):
        open_trace(path).close()
    assert numbers(path) == [0, 1, 2] and journal.exists()
    assert any("fails its checksum" in r.getMessage() for r in caplog.records)


def test_journal_header_names_its_checksum(tmp_path, monkeypatch):
    path, journal = journal_of(tmp_path, 0, 2, monkeypatch)
    header = json.loads(journal.read_text().splitlines()[0])
    assert isinstance(header["crc"], int) and header["events"] == 2


@pytest.fixture
def read_only():
    ro = ReadOnly()
    yield ro
    ro.undo()


def test_a_run_on_a_still_read_only_trace_starts_and_loses_nothing(tmp_path, read_only):
    """A real read-only trace directory: the first run journals what it could not write;
    the second starts although it cannot commit the journal yet (it raised OSError), and
    journals again; once writable, every event of both runs is there once."""
    path = tmp_path / "t"
    with open_trace(path) as trace:
        record(trace, 0, 3)
    read_only.make(path)
    for lo in (3, 6):
        trace = open_trace(path)
        record(trace, lo, lo + 3)
        trace.close()
        assert trace.health().journaled == lo and trace.health().journal.exists()
    read_only.undo()
    open_trace(path).close()
    assert numbers(path) == list(range(9))
    assert not list(tmp_path.glob(".t.journal-*"))


def test_a_journal_committed_while_info_reads_is_no_problem(tmp_path, monkeypatch):
    """`trace info` racing a writer that commits and deletes a journal between finding and
    reading it reported "journal ... cannot be read: its events may be missing"."""
    path, journal = journal_of(tmp_path, 3, 5, monkeypatch)
    real, raced = journal_module.read, []

    def read(p):
        if not raced:
            raced.append(p)
            open_trace(path).close()  # a writer commits it and deletes it meanwhile
        return real(p)
    monkeypatch.setattr(journal_module, "read", read)
    info = trace_info(path)
    assert info["problems"] == [] and info["events"] == 3  # counted before the commit
    assert numbers(path) == list(range(8))
