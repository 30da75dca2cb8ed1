"""Journals: events a closing EventTrace could not commit, kept until the next open commits them.

A journal is one JSON-lines file: a header, then one line per event,
``[seq, ts, kind, symbol, run, payload]`` with the payload as its JSON text, scrubbed of
credentials as the trace's own payloads are. The header's "crc" is the CRC-32C of the
lines after it, so a damaged journal is refused, never committed with changed values. It
is written to a temporary file, synced and renamed into place, so a journal is whole or
absent.

Every event keeps its sequence number, so committing a journal twice, or one whose events
were partly committed, adds each event once. Events of a journal whose numbers the trace
already holds are compared with the trace's: if they differ (the trace went on without the
journal, which another environment kept elsewhere), the journal is kept and reported,
never deleted as if committed. A journal the store cannot take at open (the disk is still
full or read-only) is handed back to the EventTrace, which keeps its events pending ahead
of new ones and deletes the file once they are committed.

Where: beside the trace (``<parent>/.<name>.journal-<first seq>.jsonl``) when that
directory takes it, else under $PLANARPY_JOURNALS, else the user's state directory
(``~/.local/state/planarpy/journals/<hash of the trace path>-<first seq>.jsonl``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import attrs
import google_crc32c
import numpy as np

from ..core.events import KIND_CODES, KINDS
from ..integrity import write_atomic
from .layout import INDEX_FIELDS, KIND, RUN, SEQ, TS
from .payload import decode_payload, scrub_batch

log = logging.getLogger(__name__)

FORMAT = "planarpy.trace-journal/1"
_FIRST = re.compile(r"-(\d+)\.jsonl$")


@attrs.frozen(slots=True, eq=False)
class Journal:
    """A journal read back: its header and its events as index rows, symbols, payloads."""

    path: Path
    header: dict[str, Any]
    rows: np.ndarray
    symbols: list[str | None]
    payloads: list[bytes]

    @property
    def last_seq(self) -> int:
        return int(self.rows[-1, SEQ]) if len(self.rows) else -1


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
    body = "".join(json.dumps([seq, ts, KINDS[code], sym, run, data.decode()]) + "\n"
                   for (seq, ts, code, sym, run, _), data in zip(events, payloads)).encode()
    header = {"format": FORMAT, "trace": str(store.path), "strategy": store.strategy,
              "exchange": store.exchange, "events": len(events),
              "crc": google_crc32c.value(body)}
    text = json.dumps(header).encode() + b"\n" + body
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


def read(path: Path) -> Journal:
    """A journal's header and events; ValueError if it is not one or fails its checksum."""
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n")
    try:
        header = json.loads(head.decode("utf-8"))
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a planarpy trace journal")
    crc = header.get("crc")
    if crc is not None and crc != google_crc32c.value(body):
        raise ValueError(f"{path} fails its checksum (damaged); nothing of it is committed")
    events = [json.loads(line) for line in body.decode("utf-8").splitlines() if line]
    if len(events) != header.get("events"):
        raise ValueError(f"{path} holds {len(events)} events, its header says {header.get('events')}")
    rows = np.zeros((len(events), len(INDEX_FIELDS)), np.int64)
    for i, (seq, ts, kind, _, run, _) in enumerate(events):
        if kind not in KIND_CODES:
            raise ValueError(f"{path}: event {seq} has unknown kind {kind!r}")
        rows[i, SEQ], rows[i, TS], rows[i, KIND], rows[i, RUN] = seq, ts, KIND_CODES[kind], run
    return Journal(path, header, rows, [e[3] for e in events], [e[5].encode() for e in events])


def conflict(journal: Journal, trace: Path, next_seq: int) -> str | None:
    """Why the events of `journal` that the trace numbers as committed (below `next_seq`)
    are not the trace's events, or None when they are (a journal committed before)."""
    seq = journal.rows[:, SEQ]
    done = np.flatnonzero(seq < next_seq)
    if not done.size:
        return None
    from .reader import committed_events  # the reader imports this module
    held = committed_events(trace, int(seq[done[0]]), int(seq[done[-1]]) + 1)
    for i in done:
        event = held.get(int(seq[i]))
        if event is None or not _same(journal, int(i), event):
            return (f"its events {int(seq[done[0]])}..{int(seq[done[-1]])} differ from the "
                    f"events the trace holds under those numbers (from event {int(seq[i])} on): "
                    "the trace went on without this journal, so its events were never "
                    "committed; it is kept for you")
    return None


def _same(journal: Journal, i: int, event: dict[str, Any]) -> bool:
    row = journal.rows[i]
    try:
        payload = decode_payload(journal.payloads[i])
    except ValueError:
        return False
    return (event["ts"] == int(row[TS]) and event["kind"] == KINDS[int(row[KIND])]
            and event["symbol"] == journal.symbols[i] and event["run"] == int(row[RUN])
            and event["payload"] == payload)


def commit_journals(store: Any) -> tuple[list[Journal], OSError | None]:
    """Commit every journal left for this trace, deleting each once committed.

    Returns the journals the store could not take (a write failed: the disk is still full
    or read-only), oldest first, with that error: their events are not committed past
    `store.next_seq`, and the caller keeps them. A journal that cannot be read, belongs to
    another strategy or exchange, or conflicts with the trace is left where it is, with
    an error in the log.
    """
    waiting: list[Journal] = []
    error: OSError | None = None
    for path in find(store.path):
        journal = _load(store, path)
        if journal is None:
            continue
        if waiting:  # an older one is not committed: this one waits behind it
            waiting.append(journal)
            continue
        before = store.next_seq
        try:
            store.append(journal.rows.copy(), journal.symbols, journal.payloads)
        except OSError as e:
            log.error("trace %s: journal %s cannot be committed now (%s); its events are kept "
                      "pending ahead of new ones", store.path, path, _why(e))
            waiting.append(journal)
            error = e
            continue
        added = int(np.count_nonzero(journal.rows[:, SEQ] >= before))
        log.warning("trace %s: committed %d events saved in journal %s", store.path, added, path)
        discard(path)
    return waiting, error


def _load(store: Any, path: Path) -> Journal | None:
    """The journal at `path` if it may be committed to `store`; None (logged) if not."""
    try:
        journal = read(path)
    except (OSError, ValueError) as e:
        log.error("trace %s: journal %s cannot be read (%s); left in place", store.path, path, e)
        return None
    header = journal.header
    if (header.get("strategy"), header.get("exchange")) != (store.strategy, store.exchange):
        log.error("trace %s: journal %s belongs to %s on %s; left in place", store.path, path,
                  header.get("strategy"), header.get("exchange"))
        return None
    why = conflict(journal, store.path, store.next_seq)
    if why is not None:
        log.error("trace %s: journal %s: %s", store.path, path, why)
        return None
    return journal


def problems(trace: Path, next_seq: int) -> tuple[list[str], list[str]]:
    """What the journals of a trace mean: (problems, notes), for `trace_info`."""
    found, notes = [], []
    for path in find(trace):
        try:
            why = conflict(read(path), trace, next_seq)
        except FileNotFoundError:
            continue  # committed and deleted by a writer since it was found
        except (OSError, ValueError) as e:
            found.append(f"journal {path} cannot be read ({_why(e)}): its events may be missing")
            continue
        if why is not None:
            found.append(f"journal {path}: {why}")
        else:
            notes.append(f"journal {path} holds events not yet committed; the next writer to "
                         "open the trace commits them")
    return found, notes


def discard(path: Path) -> None:
    """Delete a journal whose events are committed (one left behind is committed again
    harmlessly: its events are then found in the trace)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _why(e: BaseException) -> str:
    return f"[Errno {e.errno}] {e.strerror}" if isinstance(e, OSError) and e.strerror else str(e)
