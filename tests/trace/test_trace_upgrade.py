"""Traces written by the code at fa13644 (format 1): read as they are, upgraded on request."""

import os
import shutil
from pathlib import Path

import diskkit
import pytest

from planarpy.cli.main import main
from planarpy.trace import EventTrace, TraceError, iter_events, trace_info
from planarpy.trace import upgrade as upgrade_module

FIXTURE = Path(__file__).parent.parent / "fixtures" / "v1" / "trace"


@pytest.fixture
def v1(tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)  # sma_cross and its markets
    path = tmp_path / "SmaCross" / "binance"
    shutil.copytree(FIXTURE, path)
    return path


def fields(events):
    return [(e["ts"], e["kind"], e["symbol"], e["run"], e["payload"]) for e in events]


def test_format_1_reads_and_replays_as_it_is(v1, capsys):
    """Tail, info and replay read a format-1 trace unchanged; info notes the missing checksums."""
    events = list(iter_events(v1, errors="raise"))
    assert len(events) == 34 and events[0]["kind"] == "strategy_started"
    assert {e["seq"] for e in events} == {None}
    info = trace_info(v1, check=True)
    assert info["format"] == "planarpy.trace/1" and info["problems"] == []
    assert "has no checksums" in info["notes"][0] and "planarpy trace upgrade" in info["notes"][0]
    assert main(["trace", "replay", str(v1), "--strategy", "sma_cross"]) == 0
    assert "trades     14" in capsys.readouterr().out


def test_writer_names_the_format_and_the_upgrade(v1, capsys):
    """A writer refuses a format-1 trace, naming the format and the command that converts it."""
    with pytest.raises(TraceError, match=r"written in trace format planarpy.trace/1 .*"
                                         rf"`planarpy trace upgrade {v1}`"):
        EventTrace.open(v1)
    assert main(["sim", "sma_cross", "--record", str(v1)]) == 2
    assert "planarpy trace upgrade" in capsys.readouterr().err


def test_upgrade_converts_every_event_and_keeps_the_original(v1, capsys):
    """`planarpy trace upgrade` rewrites the trace in the current format, the same events in
    the same order, keeps the original beside it, and writers can go on."""
    before = fields(iter_events(v1))
    assert main(["trace", "upgrade", str(v1)]) == 0
    out = capsys.readouterr().out
    assert "converted 34 events" in out and "binance.v1-backup" in out
    after = list(iter_events(v1, errors="raise"))
    assert fields(after) == before and [e["seq"] for e in after] == list(range(34))
    assert trace_info(v1, check=True)["format"] == "planarpy.trace/2"
    assert fields(iter_events(v1.parent / "binance.v1-backup")) == before
    with EventTrace.open(v1) as trace:
        trace.record("market_data", {"after": True})
    assert main(["trace", "replay", str(v1), "--strategy", "sma_cross"]) == 0
    assert main(["trace", "upgrade", str(v1)]) == 0
    assert "already in format planarpy.trace/2" in capsys.readouterr().out


def test_upgrade_refuses_damage_unless_forced(v1, capsys):
    """A damaged format-1 trace is not converted (events would be left behind) unless
    --force, which converts what is readable and lists the rest."""
    (v1 / "s000001" / "ts" / "c" / "0").unlink()
    assert main(["trace", "upgrade", str(v1)]) == 2
    assert "has damage" in capsys.readouterr().err
    assert trace_info(v1)["format"] == "planarpy.trace/1"
    assert not list(v1.parent.glob(".binance.upgrade-*"))
    assert main(["trace", "upgrade", str(v1), "--force"]) == 0
    assert "could not be converted" in capsys.readouterr().out
    assert len(list(iter_events(v1, errors="raise"))) == 34 - 27


def kill_between_renames(v1, monkeypatch):
    """Run an upgrade of `v1` that stops as if killed after moving the original away."""
    real = os.rename

    def rename(src, dst):
        if Path(src).name.startswith(".binance.upgrade-"):  # the new trace into place
            raise KeyboardInterrupt  # as if killed here
        real(src, dst)
    monkeypatch.setattr(upgrade_module.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        upgrade_module.upgrade_trace(v1)
    monkeypatch.undo()


def test_upgrade_killed_between_its_renames_is_finished_by_the_next(v1, monkeypatch):
    """Old trace moved away, new one not yet in place: running the upgrade again finishes."""
    before = fields(iter_events(v1))
    kill_between_renames(v1, monkeypatch)
    assert not v1.exists()
    assert "already in format" in str(upgrade_module.upgrade_trace(v1))
    assert fields(iter_events(v1, errors="raise")) == before


@pytest.mark.parametrize("names", [{}, {"strategy": "SmaCross", "exchange": "binance"}])
def test_writer_after_an_upgrade_killed_between_its_renames_finishes_it(v1, monkeypatch, names):
    """Killed with the old trace moved away and the new one not yet in place, the next thing
    to run may be a writer (live, paper, sim --record), not the upgrade: it made a new,
    empty trace there, and the converted events were left in a hidden directory that a
    second upgrade then ignored. Now the writer finishes the upgrade and goes on."""
    before = fields(iter_events(v1))
    kill_between_renames(v1, monkeypatch)
    with pytest.raises(TraceError, match="an upgrade of it was interrupted"):
        list(iter_events(v1))
    with EventTrace.open(v1, **names) as trace:
        assert trace.store.next_seq == 34
        trace.record("market_data", {"after": True})
    after = list(iter_events(v1, errors="raise"))
    assert fields(after[:34]) == before and after[34]["payload"] == {"after": True}
    assert not list(v1.parent.glob(".binance.upgrade-*"))


def test_upgrade_on_a_full_disk_is_a_clear_error_and_changes_nothing(tmp_path, capsys):
    """On a real full tmpfs the conversion ran out of space part-way and `trace upgrade`
    ended in a raw OSError traceback (exit 1); now one line, exit 2, the original where it
    was, no leftovers, and the same command succeeds once there is room."""
    with diskkit.small_tmpfs(tmp_path / "mnt", "400k") as mount:
        path = mount / "binance"
        shutil.copytree(FIXTURE, path)
        before = fields(iter_events(path))
        filler = diskkit.fill(mount, 24 << 10)
        assert main(["trace", "upgrade", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "No space left on device; nothing was changed" in err
        assert sorted(p.name for p in mount.iterdir()) == ["binance", "filler"]
        assert trace_info(path)["format"] == "planarpy.trace/1"
        filler.unlink()
        assert main(["trace", "upgrade", str(path)]) == 0
        assert fields(iter_events(path, errors="raise")) == before
