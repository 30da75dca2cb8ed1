"""The kill switch from a second terminal: a control socket for each running paper or
live run.

A run started with a control directory (`planarpy live` and `planarpy paper` use
`<trace dir>/.control`) listens there on a unix socket and writes a run file beside it,
`<Strategy>@<exchange>.json` (its pid, mode and socket). `planarpy halt STRATEGY` finds
the run file, connects, and sends one JSON line, `{"command": "halt", "reason": ...,
"close": ...}`; the run halts trading through the order pipeline (`pipeline.halt`: the
same path a breaker takes), cancels its open orders, and answers one JSON line with the
trading state and what is still open. The socket needs no polling, says at once whether
a run is there, and carries the answer back. A run that stops removes its files, and the
directories it made for them when they are empty (a run with no trace leaves nothing).

A unix socket's path is short (about 100 bytes): a longer one is replaced by a path in
the temporary directory named by a hash of it, which the run file records. A run killed
with SIGKILL leaves its files behind: the next start of the same strategy removes them
(after checking that nothing answers), and `halt` says the run is gone.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from ...core.errors import ConfigError, PlanarError

SOCKET_PATH_MAX = 100  # bytes: below AF_UNIX's limit on Linux (108) and macOS (104)
DIR = ".control"


class RunNotFound(PlanarError, LookupError):
    """No running paper or live run of that strategy answers on its control socket."""


def run_file(root: str | Path, strategy: str, exchange: str) -> Path:
    """The run file of `strategy` on `exchange` under the control directory `root`."""
    return Path(root) / f"{strategy}@{exchange}.json"


def socket_path(file: Path) -> str:
    """Where the run of `file` listens: beside it, or in the temporary directory when that
    path is too long for a unix socket."""
    path = str(file.with_suffix(".sock").absolute())
    if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:24]
    return os.path.join(tempfile.gettempdir(), f"planarpy-{os.getuid()}-{digest}.sock")


def _answers(path: str) -> bool:
    """Whether something listens on the unix socket `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


Handler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class ControlServer:
    """A run's control socket and run file (see the module docstring)."""

    def __init__(self, root: str | Path, strategy: str, exchange: str, mode: str,
                 handle: Handler) -> None:
        self.file = run_file(root, strategy, exchange)
        self.path = socket_path(self.file)
        self.info = {"strategy": strategy, "exchange": exchange, "mode": mode,
                     "pid": os.getpid(), "socket": self.path}
        self.handle = handle
        self.server: asyncio.AbstractServer | None = None
        self.made: list[Path] = []  # the directories claim() created, deepest first
        # the connections being answered: each task and the writer it must close
        self.serving: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.closing = False

    def claim(self) -> None:
        """Refuse to start beside a run of the same strategy that still answers; remove
        what a killed one left behind."""
        if os.path.exists(self.path) and _answers(self.path):
            raise ConfigError(f"{self.info['strategy']} on {self.info['exchange']} is running "
                              f"already (its control socket {self.path} answers): stop it "
                              "first, or give this run another trace directory")
        self.made = [d for d in (self.file.parent, *self.file.parent.parents) if not d.exists()]
        self.file.parent.mkdir(parents=True, exist_ok=True)
        for stale in (self.path, self.file):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass

    async def start(self) -> None:
        self.claim()
        self.server = await asyncio.start_unix_server(self._accept, path=self.path)
        os.chmod(self.path, 0o600)  # only the user who runs it may halt it
        tmp = self.file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({**self.info, "started": time.time()}))
        os.replace(tmp, self.file)

    async def close(self) -> None:
        self.closing = True  # from now on a connection is refused
        if self.server is not None:
            self.server.close()
            serving = dict(self.serving)
            for task in serving:  # a client that sends nothing waits no longer
                task.cancel()
            await asyncio.gather(*serving, return_exceptions=True)
            # A task cancelled before its first step never ran its `finally`, and its
            # connection would stay open; since 3.12.1 wait_closed() waits for every one.
            for writer in serving.values():
                writer.close()
            await self.server.wait_closed()
            self.server = None
        for path in (self.file, self.path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for d in self.made:  # leave no directory of ours behind (a run with no trace)
            try:
                d.rmdir()
            except OSError:
                break  # not empty (a trace, another run): it stays, and so do its parents

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve a connection in a task that `serving` holds from its creation, so that
        close() cancels and awaits every one (a task asyncio made and had not started yet
        escaped it, and was collected after its loop closed); refused once closing."""
        if self.closing:
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self.serving[task] = writer
        task.add_done_callback(self._served)

    def _served(self, task: asyncio.Task[Any]) -> None:
        self.serving.pop(task, None)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                answer: dict[str, Any] = {"ok": False, "error": f"bad request: {e}"}
            else:
                answer = await self.handle(request)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()


def find_run(root: str | Path, strategy: str, exchange: str | None = None) -> dict[str, Any]:
    """The run file of the running `strategy` (on `exchange`, if given) under `root`;
    RunNotFound (naming what was looked for) if there is none, or it is ambiguous."""
    root = Path(root)
    # the names are literal: an exchange given as "*" or "b?nance" must not match any run
    pattern = f"{glob.escape(strategy)}@{glob.escape(exchange) if exchange else '*'}.json"
    files = sorted(root.glob(pattern)) if root.is_dir() else []
    if not files:
        raise RunNotFound(f"no paper or live run of {strategy}"
                          f"{f' on {exchange}' if exchange else ''} is running with its "
                          f"control files in {root}/ (give --trace-dir as the run did)")
    if len(files) > 1:
        names = ", ".join(f.stem.split("@", 1)[1] for f in files)
        raise RunNotFound(f"{strategy} runs on several exchanges ({names}): name one with "
                          "--exchange")
    try:
        info = json.loads(files[0].read_text())
        info["socket"] = str(info["socket"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunNotFound(f"{files[0]} is not a run file of planarpy") from None
    return info


def request(info: Mapping[str, Any], message: Mapping[str, Any],
            timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the run of `info` and return its answer; RunNotFound if
    nothing answers on its socket (the run ended, or was killed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(info["socket"])
        except OSError:
            raise RunNotFound(f"{info.get('strategy')} ({info.get('mode')}, pid "
                              f"{info.get('pid')}) is not running any more: nothing answers "
                              f"on {info['socket']}") from None
        sock.sendall(json.dumps(dict(message)).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        answer = json.loads(data)
    except ValueError:
        raise RunNotFound(f"{info.get('strategy')} closed its control socket without an "
                          "answer (it is stopping)") from None
    return answer if isinstance(answer, dict) else {"ok": False, "error": "bad answer"}
