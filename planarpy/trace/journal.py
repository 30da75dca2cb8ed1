"""Journals: events a closing EventTrace could not commit, kept until the next open commits them.

A journal is one JSON-lines file: a header, then one line per event,
``[seq, ts, kind, symbol, run, payload]`` with the payload as its JSON text, scrubbed of
credentials as the trace's own payloads are. It is written to a temporary file, synced
and renamed into place, so a journal is whole or absent. Because every event keeps its
sequence number, committing a journal twice, or one whose events were partly committed,
adds each event once.

Where: beside the trace (``<parent>/.<name>.journal-<first seq>.jsonl``) when that
directory takes it, else under $PLANARPY_JOURNALS, else the user's state directory
(``~/.local/state/planarpy/journals/<hash of the trace path>-<first seq>.jsonl``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..core.events import KIND_CODES, KINDS
from ..integrity import write_atomic
from .layout import INDEX_FIELDS, KIND, RUN, SEQ, TS
from .payload import scrub_batch

log = logging.getLogger(__name__)

FORMAT = "planarpy.trace-journal/1"
_FIRST = re.compile(r"-(\d+)\.jsonl$")


def state_dir() -> Path:
    """Where journals go when the trace's own directory takes none."""
    env = os.environ.get("PLANARPY_JOURNALS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "planarpy" / "journals"


def _key(trace: Path) -> str:
    return hashlib.sha256(str(trace.resolve()).encode()).hexdigest()[:16]


def _places(trace: Path, first: int | str) -> list[Path]:
    return [trace.parent / f".{trace.name}.journal-{first}.jsonl",
            state_dir() / f"{_key(trace)}-{first}.jsonl"]


def find(trace: Path) -> list[Path]:
    """The journals waiting to be committed to the trace at `trace`, oldest first."""
    found = []
    for pattern in _places(trace, "*"):
        if pattern.parent.is_dir():
            found += pattern.parent.glob(pattern.name)
    return sorted(found, key=lambda p: int(_FIRST.search(p.name).group(1)))  # type: ignore[union-attr]


def spill(store: Any, events: list[tuple], redact: tuple[bytes, ...] = ()) -> Path:
    """Write `events` (seq, ts, kind code, symbol, run, payload) to a journal; its path.

    OSError if no place takes it.
    """
    payloads = scrub_batch([e[5] for e in events], redact)
    header = {"format": FORMAT, "trace": str(store.path), "strategy": store.strategy,
              "exchange": store.exchange, "events": len(events)}
    lines = [json.dumps(header)]
    lines += [json.dumps([seq, ts, KINDS[code], sym, run, data.decode()])
              for (seq, ts, code, sym, run, _), data in zip(events, payloads)]
    text = ("\n".join(lines) + "\n").encode()
    error: OSError | None = None
    for place in _places(store.path, events[0][0]):
        try:
            place.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(place, text, fsync=True)
            return place
        except OSError as e:
            error = e
    assert error is not None
    raise error


def read(path: Path) -> tuple[dict[str, Any], np.ndarray, list[str | None], list[bytes]]:
    """A journal's header, index rows, symbols and payloads; ValueError if it is not one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0]) if lines else None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a planarpy trace journal")
    events = [json.loads(line) for line in lines[1:] if line]
    if len(events) != header.get("events"):
        raise ValueError(f"{path} holds {len(events)} events, its header says {header.get('events')}")
    rows = np.zeros((len(events), len(INDEX_FIELDS)), np.int64)
    for i, (seq, ts, kind, _, run, _) in enumerate(events):
        if kind not in KIND_CODES:
            raise ValueError(f"{path}: event {seq} has unknown kind {kind!r}")
        rows[i, SEQ], rows[i, TS], rows[i, KIND], rows[i, RUN] = seq, ts, KIND_CODES[kind], run
    return header, rows, [e[3] for e in events], [e[5].encode() for e in events]


def commit_journals(store: Any) -> int:
    """Commit every journal left for this trace, then delete it; the events committed.

    A journal that cannot be read, or that belongs to another strategy or exchange, is
    left where it is with an error in the log.
    """
    count = 0
    for path in find(store.path):
        try:
            header, rows, symbols, payloads = read(path)
        except (OSError, ValueError) as e:
            log.error("trace %s: journal %s cannot be read (%s); left in place", store.path, path, e)
            continue
        if (header.get("strategy"), header.get("exchange")) != (store.strategy, store.exchange):
            log.error("trace %s: journal %s belongs to %s on %s; left in place", store.path, path,
                      header.get("strategy"), header.get("exchange"))
            continue
        before = store.next_seq
        store.append(rows, symbols, payloads)
        path.unlink()
        added = int(np.count_nonzero(rows[:, SEQ] >= before))
        log.warning("trace %s: committed %d events saved in journal %s", store.path, added, path)
        count += added
    return count
