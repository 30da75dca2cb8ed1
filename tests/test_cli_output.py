"""Any `planarpy` command whose output's reader went away (`planarpy ... | head`) ends
quietly: no BrokenPipeError traceback or "Exception ignored" message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from planarpy.trace import EventTrace


@pytest.fixture
def big_trace(tmp_path):
    with EventTrace.open(tmp_path / "t", strategy="S", exchange="binance") as trace:
        trace.record("strategy_started", {"i": 0})
        for i in range(3000):
            trace.record("order_created", {"i": i}, symbol="ETH/BTC")
    return tmp_path / "t"


@pytest.mark.parametrize("size", ["large", "small"])
def test_a_closed_stdout_ends_a_command_quietly(big_trace, tmp_path, size):
    """`trace tail` into a pipe nobody reads: a large output fails while it prints, a
    small one only at the final flush; both end with 141 and nothing on stderr."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes
    try:
        out = subprocess.run([sys.executable, "-m", "planarpy.cli.main", "trace", "tail",
                              str(big_trace), "-n", "3000" if size == "large" else "1"],
                             stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
                             cwd=tmp_path)
    finally:
        os.close(write)
    assert out.returncode == 141
    assert out.stderr == ""
