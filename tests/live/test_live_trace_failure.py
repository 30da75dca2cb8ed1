"""A live run whose trace directory turns read-only: it says so, ends non-zero, loses nothing."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from planarpy.trace import EventTrace, iter_events

from diskkit import read_only

QUIET = ("from planarpy import Strategy\n"
         "class Quiet(Strategy):\n"
         "    exchange = 'binance'\n    quote = 'ETH'\n"
         "    timeframe = '1m'\n    universe = ('XRP/ETH',)\n")


class Lines:
    """The lines a stream gives, collected by a thread, waited for with a deadline."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + "\n".join(self.lines))


@pytest.mark.skipif(sys.platform == "win32", reason="mounts and signals")
@pytest.mark.parametrize("when", ["mid-run", "from the start"])
def test_live_run_on_a_read_only_trace_ends_nonzero_and_loses_nothing(local_exchange, tmp_path,
                                                                      when):
    """The trace directory is (or turns) read-only: the status line says the trace is
    failing (it said nothing), one log line reports it (not 106), the run ends with exit 1
    and a clear message (it exited 0), and once the directory is writable again every event
    the run recorded is in the trace, once, in order."""
    lx = local_exchange
    lx.step(3_600_000)
    strategy = tmp_path / "quiet.py"
    strategy.write_text(QUIET)
    trace = tmp_path / "traces" / "Quiet" / "binance"
    env = dict(os.environ, PLANARPY_BINANCE_API_KEY=lx.api_key, PLANARPY_BINANCE_SECRET=lx.secret,
               PLANARPY_JOURNALS=str(tmp_path / "journals"))
    if when == "from the start":
        EventTrace.open(trace, strategy="Quiet", exchange="binance").close()
    stack = contextlib.ExitStack()
    if when == "from the start":
        stack.enter_context(read_only(trace))
    proc = subprocess.Popen(
        [sys.executable, "-m", "planarpy.cli.main", "live", str(strategy), "--exchange-url",
         lx.url, "--tick-interval", "0.1", "--status-every", "0.1", "--trace-dir",
         str(tmp_path / "traces")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = Lines(proc.stderr)
    try:
        with stack:
            if when == "mid-run":
                err.wait_for("trace ok")
                stack.enter_context(read_only(trace))
            err.wait_for("trace FAILING")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(60) == 1
            err.thread.join(10)
        text = "\n".join(err.lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert "Read-only file system" in text
    outcome = err.wait_for("planarpy: the run could not write its trace")
    assert "events could not be written" in outcome and "the next open of the trace commits" in outcome
    assert sum("cannot write" in line for line in err.lines) == 1
    EventTrace.open(trace).close()  # writable again: the next open commits the journal
    events = list(iter_events(trace, errors="raise"))
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["kind"] == "strategy_started" and events[-1]["kind"] == "strategy_stopped"
    assert not list(trace.parent.glob(".binance.journal-*")) and not list((tmp_path / "journals").glob("*"))
