"""The control socket of a paper or live run (the kill switch's way in), on its own: one
JSON request, one JSON answer; stale files of a killed run; a second run refused."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import sys
import threading
import time

import pytest

from planarpy import ConfigError
from planarpy.modes.runtime.control import (ControlServer, RunNotFound, find_run, request,
                                            run_file, socket_path)


class Loop:
    """An asyncio loop on a thread, as a run's engine has."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def loop():
    lp = Loop()
    yield lp
    lp.close()


async def echo(req):
    return {"ok": True, "got": dict(req)}


def test_a_request_is_answered_and_the_files_go_with_the_run(loop, tmp_path):
    server = ControlServer(tmp_path, "Sma", "binance", "live", echo)
    loop.run(server.start())
    info = find_run(tmp_path, "Sma")
    assert (info["strategy"], info["mode"], info["pid"]) == ("Sma", "live", os.getpid())
    assert request(info, {"command": "halt", "reason": "x"}) == \
        {"ok": True, "got": {"command": "halt", "reason": "x"}}
    assert oct(os.stat(info["socket"]).st_mode & 0o777) == "0o600"
    loop.run(server.close())
    assert not run_file(tmp_path, "Sma", "binance").exists()
    assert not os.path.exists(info["socket"])
    with pytest.raises(RunNotFound, match="no paper or live run of Sma is running"):
        find_run(tmp_path, "Sma")


def test_an_exchange_name_is_literal_not_a_pattern(loop, tmp_path):
    """`planarpy halt Sma --exchange '*'` names no exchange: it halted whichever run there
    was (the name went into a glob pattern)."""
    server = ControlServer(tmp_path, "Sma", "binance", "live", echo)
    loop.run(server.start())
    try:
        assert find_run(tmp_path, "Sma", "binance")["mode"] == "live"
        for name in ("*", "b?nance", "[b]inance"):
            with pytest.raises(RunNotFound, match=f"no paper or live run of Sma on "
                                                  f"{re.escape(name)} is running"):
                find_run(tmp_path, "Sma", name)
    finally:
        loop.run(server.close())


def test_a_second_run_of_the_same_strategy_is_refused_while_the_first_answers(loop, tmp_path):
    first = ControlServer(tmp_path, "Sma", "binance", "live", echo)
    loop.run(first.start())
    second = ControlServer(tmp_path, "Sma", "binance", "paper", echo)
    with pytest.raises(ConfigError, match="Sma on binance is running already"):
        loop.run(second.start())
    assert find_run(tmp_path, "Sma")["mode"] == "live"  # the first one's files are intact
    loop.run(first.close())


def test_what_a_killed_run_left_is_told_and_then_cleaned_up(loop, tmp_path):
    """A run file and a socket nobody listens on (the run got SIGKILL): halt says the run
    is gone; the next start removes them and listens."""
    file = run_file(tmp_path, "Sma", "binance")
    file.write_text(json.dumps({"strategy": "Sma", "mode": "live", "pid": 1,
                                "socket": socket_path(file)}))
    import socket as so
    with so.socket(so.AF_UNIX) as s:  # a bound socket nobody accepts on: a dead run's
        s.bind(socket_path(file))
    with pytest.raises(RunNotFound, match="is not running any more: nothing answers"):
        request(find_run(tmp_path, "Sma"), {"command": "halt"})
    server = ControlServer(tmp_path, "Sma", "binance", "live", echo)
    loop.run(server.start())
    assert request(find_run(tmp_path, "Sma"), {"command": "x"})["ok"] is True
    loop.run(server.close())


def test_a_long_directory_gets_a_short_socket_path(loop, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = ControlServer(deep, "Sma", "binance", "live", echo)
    loop.run(server.start())
    info = find_run(deep, "Sma")
    assert len(info["socket"]) <= 100 and not info["socket"].startswith(str(deep))
    assert request(info, {"command": "halt"})["ok"] is True
    loop.run(server.close())


def test_several_exchanges_need_a_choice(loop, tmp_path):
    a = ControlServer(tmp_path, "Sma", "binance", "live", echo)
    b = ControlServer(tmp_path, "Sma", "bybit", "live", echo)
    loop.run(a.start())
    loop.run(b.start())
    with pytest.raises(RunNotFound, match=r"Sma runs on several exchanges \(binance, bybit\)"):
        find_run(tmp_path, "Sma")
    assert find_run(tmp_path, "Sma", "bybit")["exchange"] == "bybit"
    loop.run(a.close())
    loop.run(b.close())


def test_a_bad_request_gets_an_answer_not_a_hang(loop, tmp_path):
    import socket as so
    server = ControlServer(tmp_path, "Sma", "binance", "live", echo)
    loop.run(server.start())
    with so.socket(so.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(server.path)
        s.sendall(b"[1, 2]\n")
        assert json.loads(s.recv(4096)) == {"ok": False, "error": "bad request: not a JSON object"}
    loop.run(server.close())


def test_closing_ends_a_connection_that_sends_nothing(loop, tmp_path):
    """A client that connects and says nothing (as a second run checking whether this one
    answers) does not outlive the run: close() ends its handler, none is left pending."""
    import socket as so
    server = ControlServer(tmp_path, "Sma", "binance", "live", echo)
    loop.run(server.start())
    with so.socket(so.AF_UNIX) as s:
        s.connect(server.path)

        async def handlers():
            return [t for t in asyncio.all_tasks() if "_serve" in repr(t.get_coro())]
        deadline = time.monotonic() + 10
        while not loop.run(handlers()):  # wait for the server to take the connection
            assert time.monotonic() < deadline
        loop.run(server.close())
        assert loop.run(handlers()) == [] and server.serving == {}


def test_connections_made_just_before_close_are_all_ended_with_the_loop(tmp_path):
    """Clients that connect while the run closes (their connection accepted, its task not
    started yet) are ended by close(): nothing is left running or unawaited after it."""
    seen: list[str] = []
    hook = sys.unraisablehook

    def keep(unraisable):
        seen.append(f"{unraisable.exc_type.__name__}: {unraisable.exc_value}")

    async def main() -> set[asyncio.Task]:
        server = ControlServer(tmp_path, "Sma", "binance", "live", echo)
        await server.start()
        clients = [await asyncio.open_unix_connection(server.path) for _ in range(20)]
        await server.close()
        left = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        for _, writer in clients:
            writer.close()
        return left

    sys.unraisablehook = keep
    try:
        left = asyncio.run(main())
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not left
    assert seen == []
