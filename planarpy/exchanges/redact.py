"""Keeping credentials out of everything a user sees: log records and error messages.

`redact(text)` replaces with `***` the API keys, secrets and passwords of every client
made in this process (`remember`), request signatures, listen keys, and the values of
signing and key headers. `install()` (done wherever a client is made) applies it to every
log record of the process at every level:

- A `logging.Filter` only sees the records of the one logger it is attached to, not
  those its children pass up, and a handler filter misses the handlers a user adds
  later (`logging.basicConfig(level=DEBUG)` after the start). The LogRecord factory
  makes every record, from any logger, before any filter or handler sees it, so the
  record is cleaned once, at its source: its message, arguments, traceback and stack.
- As a second guard, should something replace the factory later without chaining to
  it, a filter cleans the records of ccxt's logger (where requests, signed URLs and
  headers are logged at DEBUG).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Iterable

MASK = "***"

# secret-bearing names: query or form fields, JSON or dict keys, HTTP headers
_NAMES = (r"[\w-]*(?:signature|sign|api[-_]?key|access[-_]?key|secret[-_]?key|secret"
          r"|listen[-_]?key|password|passphrase|authorization|token)")
_PATTERNS = (
    # name=value in a URL or a form body (also %-encoded '=')
    (re.compile(rf"\b({_NAMES})(=|%3D)[^&\s\"',;)}}\]]+", re.IGNORECASE), rf"\1\2{MASK}"),
    # 'name': 'value' / "name": "value" in dict reprs and JSON
    (re.compile(rf"""(["']({_NAMES})["']\s*:\s*["'])[^"']*(["'])""", re.IGNORECASE),
     rf"\1{MASK}\3"),
    # a listen key in a WebSocket path: .../ws/<listenKey>
    (re.compile(r"(/ws/)[A-Za-z0-9]{20,}"), rf"\1{MASK}"),
    # an HMAC-SHA256 signature anywhere: 64 hex digits
    (re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])"), MASK),
)

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def remember(*values: str | None) -> None:
    """Add credentials to redact from now on (short values are left: they would mask
    ordinary text)."""
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= 6)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every known credential, signature and listen key replaced by ***."""
    for value in sorted({*_secrets, *extra}, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def clean_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a log record in place (once): its message with its arguments, the text of
    its traceback (the exception itself is dropped: a formatter would print it raw), and
    its stack."""
    if getattr(record, "_planarpy_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a record that cannot format: keep what it holds, readable
        message = f"{record.msg!r} {record.args!r}"
    record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._planarpy_redacted = True
    return record


class RedactFilter(logging.Filter):
    """Cleans the records of the logger it is attached to; drops none."""

    def filter(self, record: logging.LogRecord) -> bool:
        clean_record(record)
        return True


def install() -> None:
    """Clean every log record of this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return clean_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        logging.getLogger("ccxt.base.exchange").addFilter(RedactFilter())
        _installed = True
