"""Findings of the adversarial review of trace format 2 (r12): each test failed before its fix."""

import asyncio
import errno
import os
import threading
import warnings

import pytest
from tracekit import numbers, open_trace, record
from zarr.storage import LocalStore

from planarpy.trace import TraceError, trace_info


def test_a_failed_flush_leaves_no_write_in_flight(tmp_path, monkeypatch):
    """One chunk write of a flush fails (a full disk) while the other is still running: the
    flush must wait for it before it reports the failure. Otherwise that late write lands
    after the retry has committed more rows to the same chunk, and takes them back (the
    committed events 5..9 read back as damaged)."""
    trace = open_trace(tmp_path / "t")
    record(trace, 0, 3)
    trace.flush()
    landed = threading.Event()
    real = LocalStore.set
    failing = [True]

    async def set_(self, key, value):
        if failing[0] and self.root.name == "heap":
            raise OSError(errno.ENOSPC, "No space left on device")
        if failing[0] and self.root.name == "index":
            await asyncio.sleep(0.3)  # this write of the failing flush is slow
            await real(self, key, value)
            landed.set()
            return
        await real(self, key, value)
    monkeypatch.setattr(LocalStore, "set", set_)
    record(trace, 3, 5)
    with pytest.raises(TraceError, match="No space left"):
        trace.flush()
    failing[0] = False
    record(trace, 5, 10)
    trace.flush()  # the retry commits events 3..9
    assert landed.wait(10)
    trace.close()
    assert numbers(trace.path) == list(range(10))
    assert trace_info(trace.path, check=True)["problems"] == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_keep_the_writer_lock(tmp_path):
    """A child forked by a running strategy (multiprocessing's default on Linux) inherited
    the trace's lock: once the parent was gone (killed, or closed), no writer could open
    the trace until that child ended ("is being written by another process")."""
    trace = open_trace(tmp_path / "t")
    read, write = os.pipe()
    ready_read, ready_write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        pid = os.fork()
    if pid == 0:  # the child says it runs, waits holding whatever it inherited, and leaves
        os.close(write)
        os.write(ready_write, b"r")
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    # the lock is dropped as the child starts (an at-fork hook), before its own code: wait
    # until it runs, or a busy machine lets the parent close first
    assert os.read(ready_read, 1) == b"r"
    os.close(ready_read)
    os.close(ready_write)
    try:
        with pytest.raises(TraceError, match="being written by another process"):
            open_trace(trace.path)  # the child dropped its copy; the parent still holds it
        trace.close()  # as if the parent had died
        with open_trace(trace.path) as again:
            record(again, 0, 1)
    finally:
        os.write(write, b"x")
        os.close(write)
        os.waitpid(pid, 0)
    assert numbers(trace.path) == [0]
