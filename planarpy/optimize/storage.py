"""Where a study lives: Optuna's journal file (synced once per batch, mended of a torn
last record, refused when damaged) or an RDB URL, and the lock that keeps one driver per
study."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..core.errors import ConfigError, PlanarError
from ..modes.sim.results import MissingExtra

log = logging.getLogger("planarpy.optimize")
SYNC_EVERY = 1.0  # seconds between two fsyncs of a journal, at most

try:
    import fcntl
except ImportError:  # Windows: no lock; one driver per study is up to the user
    fcntl = None  # type: ignore[assignment]


_QUIET: list[Any] = []  # optuna, once its INFO lines are turned off


def _optuna() -> Any:
    if _QUIET:
        return _QUIET[0]
    try:
        import optuna
    except ImportError:
        raise MissingExtra("optimisation needs Optuna: pip install optuna") from None
    optuna.logging.set_verbosity(logging.WARNING)  # once: it takes a lock and walks loggers
    _QUIET.append(optuna)
    return optuna


class StorageError(PlanarError):
    """The study's storage could not be written (a full disk); what was written is whole."""


def open_storage(spec: str | Path) -> tuple[Any, Callable[[bool], None]]:
    """An RDB URL ('sqlite:///x.db', 'postgresql://...') or a journal file path; and what
    to call to make the writes so far durable (`sync(now)`: at most once a second unless
    `now`)."""
    optuna = _optuna()
    text = str(spec)
    if "://" in text:
        try:
            return optuna.storages.RDBStorage(text), lambda now=False: None
        except Exception as e:  # a bad URL, a missing driver, an unreachable server
            raise ConfigError(f"--storage {text!r}: cannot open it ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        check_journal(path)
        from optuna.storages.journal import JournalStorage
        backend = _journal()(str(path))
        return JournalStorage(backend), backend.sync
    except OSError as e:
        raise ConfigError(f"--storage {text}: cannot open it ({e.strerror or e})") from None


def check_journal(path: Path) -> None:
    """Drop a torn last record and refuse a damaged or foreign file (under `study_lock`).

    A record without its line end is a write that never finished (a crash of the machine,
    a full disk): it was not committed, and Optuna would append the next record to it,
    spoiling both. Any other line that is not a JSON record means the file is damaged or
    is not a journal: it is left as it is, and the study does not start.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if data and not data.endswith(b"\n"):
        whole = data.rfind(b"\n") + 1
        log.warning("study journal %s ended in a partial record (%d bytes of an interrupted "
                    "write, never committed): dropped it", path, len(data) - whole)
        os.truncate(path, whole)
        data = data[:whole]
    for number, line in enumerate(data.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "op_code" not in record:
            raise ConfigError(f"--storage {path}: line {number} is not a record of an Optuna "
                              "journal (the file is damaged, or is not a study journal); "
                              "give another --storage")


def _journal() -> type:
    """Optuna's journal file, synced to disk at most once a second (after a batch) and at
    the end of a study, instead of once per write.

    Optuna fsyncs every record (about 6 a trial: 2-10 ms each here, as long as a short
    backtest). A killed process loses nothing either way: what it wrote is in the page
    cache. Only a crash of the machine could lose the records since the last sync, and
    those trials are run again, with the same result, when the study resumes. Records
    are appended with one write each (O_APPEND); one driver writes a journal at a time
    (`study_lock`), so Optuna's per-write lock file is not needed, and after its first
    read of the file the driver reads back only what it wrote itself: Optuna reads the
    journal again after every write and before every query (an open, a seek and a JSON
    decode each, 1,000 a 100-trial study), so those records are handed back from memory.
    """
    from optuna.storages.journal import JournalFileBackend

    class BatchSyncedJournal(JournalFileBackend):
        def __init__(self, file_path: str) -> None:
            super().__init__(file_path)
            self.path = file_path
            self.synced = time.monotonic()
            self.unread: list[dict[str, Any]] | None = None  # None: the file not read yet
            self.first = 0  # the number of unread[0]

        def read_logs(self, log_number_from: int) -> Any:
            if self.unread is None or log_number_from < self.first:
                logs = list(super().read_logs(log_number_from))
                self.unread, self.first = [], log_number_from + len(logs)
                return logs
            logs = self.unread[log_number_from - self.first:]
            self.unread, self.first = [], log_number_from + len(logs)
            return logs

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                try:
                    _write_all(fd, text.encode("utf-8"))
                except OSError as e:  # a full disk: leave no partial record behind
                    os.ftruncate(fd, size)
                    raise StorageError(f"cannot write to the study journal {self.path}: "
                                       f"{e.strerror or e}; the trials finished before are "
                                       "kept, run it again to resume") from None
            finally:
                os.close(fd)
            if self.unread is not None:  # as read from the file: tuples made lists...
                self.unread.extend(json.loads(line) for line in text[:-1].split("\n"))

        def sync(self, now: bool = False) -> None:
            if not now and time.monotonic() - self.synced < SYNC_EVERY:
                return
            self.synced = time.monotonic()
            try:
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                raise StorageError(f"cannot sync the study journal {self.path} to disk: "
                                   f"{e.strerror or e}") from None

    return BatchSyncedJournal


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (a write may take only part of them)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def study_lock(spec: str | Path) -> Iterator[None]:
    """Hold an exclusive lock beside a journal (or SQLite) file while a driver runs its
    studies: a second driver would ask trials under the first one's numbers."""
    text = str(spec)
    path = _lock_path(text)
    if path is None or fcntl is None:
        yield
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        lock = open(path, "a+")  # Optuna itself uses .lock
    except OSError as e:
        raise ConfigError(f"--storage {text}: cannot open it ({e.strerror or e})") from None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"another process is running a study in {text}; wait for it "
                              "or give another --storage") from None
        yield
    finally:
        lock.close()


def _lock_path(spec: str) -> str | None:
    """The driver's lock file: beside a journal or a SQLite database; None for a database
    server (one driver per study is then up to the user)."""
    if "://" not in spec:
        return spec + ".driver.lock"
    if not spec.startswith("sqlite:"):
        return None
    try:
        from sqlalchemy.engine import make_url
        db = make_url(spec).database
    except Exception:  # a bad URL: open_storage says so
        return None
    return db + ".driver.lock" if db and db != ":memory:" and not db.startswith("file:") \
        else None
