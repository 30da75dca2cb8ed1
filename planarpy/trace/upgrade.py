"""`upgrade_trace`: convert a trace written in an older format to the current one.

The events are read with the old format's reader and written, in order and with the same
times, kinds, symbols, runs and payloads, to a new trace built beside the old one. Both
are then read back and compared event by event; only then is the new trace renamed into
place, and the old one is kept beside it (``<name>.v1-backup``) until the user deletes it.
A kill at any point leaves the old trace where it was, or both renamed; the next upgrade,
or the next writer to open the trace, finishes the job (both renames and a trace's
creation hold the same lock on the parent directory, so a writer starting meanwhile
waits rather than creating a new, empty trace in its place).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from itertools import zip_longest
from pathlib import Path
from typing import Any, Iterator

import attrs
import numpy as np

from ..core.events import KIND_CODES
from ..integrity import seal, write_json
from .layout import (FORMAT, INDEX_FIELDS, KIND, RUN, SEQ, TS, VERSION, TraceError, WriterLock,
                     check_format, finish_upgrade, group_doc, load_root, parent_lock,
                     upgrade_leftovers)
from .payload import encode_payload
from .reader import _Report, scan
from .store import TraceStore

BATCH = 65536


@attrs.frozen(slots=True)
class UpgradeReport:
    """What an upgrade did."""

    path: Path
    old_format: str
    events: int
    backup: Path | None
    problems: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.backup is None:
            return f"{self.path} is already in format {self.old_format}: nothing to do"
        text = (f"converted {self.events} events of {self.path} from {self.old_format} to "
                f"planarpy.trace/{VERSION}; the original is kept at {self.backup} (delete it "
                "once satisfied)")
        if self.problems:
            text += f"; {len(self.problems)} damaged part(s) could not be converted:\n  "
            text += "\n  ".join(self.problems)
        return text


def upgrade_trace(path: str | Path, *, force: bool = False) -> UpgradeReport:
    """Convert the trace at `path` to the current format, keeping the original beside it.

    A trace with damage (events that cannot be read) is refused unless `force`, which
    converts every readable event and lists the rest in the report.
    """
    path = Path(path)
    with parent_lock(path):
        finish_upgrade(path)
    _, root = load_root(path)
    version = check_format(root, path)
    if version == VERSION:
        return UpgradeReport(path, str(root.get("format")), 0, None)
    lock = WriterLock(path)
    lock.acquire()
    try:
        for stale in upgrade_leftovers(path):  # a killed conversion
            shutil.rmtree(stale, ignore_errors=True)
        tmp = path.parent / f".{path.name}.upgrade-{uuid.uuid4().hex[:8]}"
        try:
            count, problems = _convert(path, tmp, root, force)
            _verify(path, tmp)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError):  # a full or read-only disk
                why = f"[Errno {e.errno}] {e.strerror}" if e.strerror else str(e)
                raise TraceError(f"cannot upgrade {path}: {why}; nothing was changed") from None
            raise
        with parent_lock(path):  # a writer creating the trace waits for both renames
            backup = _free_name(path.parent / f"{path.name}.v{version}-backup")
            os.rename(path, backup)
            os.rename(tmp, path)
    finally:
        lock.release()
    return UpgradeReport(path, str(root.get("format")), count, backup, tuple(problems))


def _convert(path: Path, tmp: Path, root: dict[str, Any], force: bool) -> tuple[int, list[str]]:
    report = _Report("skip", path)
    store = TraceStore.open(tmp, str(root.get("strategy")), str(root.get("exchange")))
    count = 0
    try:
        for rows, symbols, payloads in _batches(scan(path, report), report):
            store.append(rows, symbols, payloads)
            count += len(rows)
    finally:
        store.close()
    write_json(tmp / "zarr.json", group_doc(seal({
        **{k: v for k, v in root.items() if k != "crc"}, "format": FORMAT,
        "upgraded_from": root.get("format"), "upgraded_ns": time.time_ns()})))
    if report.problems and not force:
        raise TraceError(f"{path} has damage, so converting it would leave events behind; "
                         "nothing was changed. Convert the readable events anyway with "
                         "--force (force=True):\n  " + "\n  ".join(report.problems))
    return count, report.problems


def _batches(events: Iterator[dict], report: _Report) -> Iterator[tuple]:
    """The events as (index rows, symbols, payloads) batches numbered from seq 0."""
    seq = 0
    while True:
        batch = []
        for event in events:
            if event["kind"] not in KIND_CODES:
                report.add(f"event of unknown kind {event['kind']!r} at ts {event['ts']} "
                           "cannot be converted")
                continue
            batch.append(event)
            if len(batch) == BATCH:
                break
        if not batch:
            return
        rows = np.zeros((len(batch), len(INDEX_FIELDS)), np.int64)
        rows[:, SEQ] = np.arange(seq, seq + len(batch))
        rows[:, TS] = [e["ts"] for e in batch]
        rows[:, KIND] = [KIND_CODES[e["kind"]] for e in batch]
        rows[:, RUN] = [e["run"] for e in batch]
        seq += len(batch)
        yield rows, [e["symbol"] for e in batch], [encode_payload(e["payload"]) for e in batch]


def _verify(old: Path, new: Path) -> None:
    """Read both traces back and compare every event; TraceError at the first difference."""
    fields = ("ts", "kind", "symbol", "run", "payload")
    known = (e for e in scan(old, _Report("skip", old)) if e["kind"] in KIND_CODES)
    pairs = zip_longest(known, scan(new, _Report("raise", new)))
    for i, (a, b) in enumerate(pairs):
        if a is None or b is None or any(a[f] != b[f] for f in fields):
            raise TraceError(f"converting {old} failed: event {i} reads back differently "
                             f"({a} became {b}); nothing was changed")


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}{n}")
    return candidate
