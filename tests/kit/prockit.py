"""Running `planarpy` as a child process in tests, and waiting for states, never for time.

`Child` starts the command with its stdout and stderr on pipes the test owns; a reader
thread collects what it writes, so a test can wait for a line with a deadline, and can
close its ends of the pipes at any moment (as a `tee` killed by Ctrl-C does).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable


class Child:
    """`python -m planarpy.cli.main ARGS...` in `cwd`, with `env` added (with `module`
    None: `python ARGS...`, a script)."""

    def __init__(self, args: list[str], cwd: Any, env: dict[str, str] | None = None,
                 close_output: bool = False, module: str | None = "planarpy.cli.main") -> None:
        self.text = ""
        self._changed = threading.Condition()
        self._reading = True
        argv = [sys.executable, *(["-m", module] if module else []), *args]
        environ = dict(os.environ, **(env or {}))
        if close_output:  # started with stdout and stderr closed
            argv = ["sh", "-c", 'exec "$@" >&- 2>&-', "sh", *argv]
        read_out, write_out = os.pipe()
        read_err, write_err = os.pipe()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=environ, stdin=subprocess.DEVNULL,
                                     stdout=write_out, stderr=write_err)
        os.close(write_out)
        os.close(write_err)
        self._fds = [read_out, read_err]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        fds = list(self._fds)
        while self._reading and fds:
            ready, _, _ = select.select(fds, [], [], 0.05)
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    fds.remove(fd)
                    continue
                with self._changed:
                    self.text += data.decode("utf-8", "replace")
                    self._changed.notify_all()

    def wait_for(self, check: str | Callable[[str], bool], timeout: float = 30.0) -> str:
        """Wait until the output contains `check` (or `check(output)` is true)."""
        test = (lambda t: check in t) if isinstance(check, str) else check
        end = time.monotonic() + timeout
        with self._changed:
            while not test(self.text):
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"not seen within {timeout} s: {check!r}; "
                                         f"output so far:\n{self.text}")
                self._changed.wait(min(left, 0.1))
        return self.text

    def close_output(self) -> None:
        """Close the test's ends of the pipes: the child's next write fails (EPIPE)."""
        self._reading = False
        self._reader.join(5)
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def signal(self, sig: int = signal.SIGINT) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the exit (with a deadline) and the last of its output; the exit code."""
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._fds:
            self.close_output()

