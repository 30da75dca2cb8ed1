"""Output that cannot fail: a broken or closed stdout/stderr never stops the command.

A pipe whose reader went away (`planarpy ... | head`, or a `tee` killed by the same
Ctrl-C) or a closed file descriptor makes writes fail. Output is a courtesy; what the
command does, such as stopping a strategy and cancelling its orders, must go on without
it. A stream that failed once is pointed at /dev/null, so later writes and the
interpreter's last flush at exit fail silently too (no BrokenPipeError message).
"""

from __future__ import annotations

import os
import sys

_FAILURES = (OSError, ValueError, RuntimeError)  # broken pipe, closed fd or file, reentrant


def say(text: str, *, end: str = "\n", out: str = "stderr") -> bool:
    """Write `text` to sys.stderr (or sys.stdout) and flush; whether it was written."""
    stream = getattr(sys, out)
    if stream is None:  # the process started with that descriptor closed
        return False
    try:
        stream.write(text + end)
        stream.flush()
        return True
    except _FAILURES:
        silence(out)
        return False


def say_now(text: str) -> None:
    """Write `text` straight to file descriptor 2, bypassing Python's buffers: for a
    signal handler, which may run while the main thread is inside a buffered write."""
    try:
        os.write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def silence(out: str = "stdout") -> None:
    """Point a failed sys.stdout or sys.stderr at /dev/null (its descriptor too)."""
    stream = getattr(sys, out)
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
    except (*_FAILURES, AttributeError):  # no descriptor (a test's StringIO): drop the stream
        setattr(sys, out, None)
