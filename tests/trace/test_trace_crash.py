"""Crash safety: SIGKILLed writers lose only unflushed events; readers never see partial ones."""

import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from planarpy.trace import EventTrace, iter_events, trace_info, trace_tail

DAY_NS = 86_400 * 10**9
STEP_NS = 20 * 10**9  # a new UTC day (and segment) every 4320 events

WRITER = """
import random, sys, time
from planarpy.trace import EventTrace, trace_info

path, seed, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = random.Random(seed)
trace = EventTrace.open(path, strategy="S", exchange="x", flush_interval=0.005,
                        segment_rows=5000)
i = trace_info(path)["events"]
print("ready", i, flush=True)
kinds = ["order_created", "order_updated", "trade_created", "balance_updated"]
while True:
    for _ in range(rng.randint(1, 400)):
        trace.record(kinds[i % 4], {"i": i, "pad": "x" * (i % 53)},
                     symbol=("ETH/BTC", "XRP/ETH", None)[i % 3], ts=BASE + i * STEP)
        i += 1
    trace.flush()
    print(i, flush=True)  # every event below i is committed
    time.sleep(rng.uniform(0, pause))
""".replace("BASE", str(DAY_NS * 19000)).replace("STEP", str(STEP_NS))


def check(events, at_least):
    """Events are 0..n-1 in order, whole, n >= at_least; returns n."""
    n = len(events)
    assert n >= at_least, f"{at_least} events were flushed but only {n} read back"
    for i, e in enumerate(events):
        p = e["payload"]
        assert p["i"] == i and p["pad"] == "x" * (i % 53), (i, e)
        assert e["ts"] == DAY_NS * 19000 + i * STEP_NS
        assert e["symbol"] == ("ETH/BTC", "XRP/ETH", None)[i % 3]
        assert e["kind"] == ["order_created", "order_updated", "trade_created",
                             "balance_updated"][i % 4]
    return n


def spawn(script, path, seed, pause):
    return subprocess.Popen([sys.executable, str(script), str(path), str(seed), str(pause)],
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_at_random_moments_loses_nothing_flushed(tmp_path):
    """20+ kills: every reported flush survives, in order, and the writer carries on."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "trace"
    rng = random.Random(1234)
    committed = 0
    for round_ in range(22):
        child = spawn(script, path, round_, 0.01)
        if round_ % 6 == 5:  # now and then, kill during start-up or the first flushes
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            ready = child.stdout.readline().split()
            assert ready[0] == "ready" and int(ready[1]) >= committed
            time.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        reported = [int(x) for x in child.stdout.read().split() if x.isdigit()]
        child.stdout.close()
        flushed = max([committed, *reported])
        committed = check(list(iter_events(path, errors="raise")), flushed)
    info = trace_info(path, check=True)
    assert info["problems"] == [] and info["readable_events"] == committed > 5000
    assert len(info["segments"]) > 1  # kills also landed around segment rotation


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_reader_in_another_process_never_sees_partial_events(tmp_path):
    """While a child process writes, tails and scans here see only whole, ordered events."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "trace"
    child = spawn(script, path, 7, 0.002)
    try:
        assert child.stdout.readline().startswith("ready")
        # until the reader has seen 1000 events over 20 polls (under load the writer is
        # slower: a fixed window would be a timing assertion), with a deadline
        seen, polls, deadline = 0, 0, time.monotonic() + 60
        while not (polls > 20 and seen > 1000):
            assert time.monotonic() < deadline, f"{seen} events seen in {polls} polls"
            tail = trace_tail(path, 300, errors="raise")
            if tail:
                first = tail[0]["payload"]["i"]
                assert [e["payload"]["i"] for e in tail] == list(range(first, first + len(tail)))
                assert all(e["payload"]["pad"] == "x" * (e["payload"]["i"] % 53) for e in tail)
                assert tail[-1]["payload"]["i"] + 1 >= seen
                seen = tail[-1]["payload"]["i"] + 1
            if polls % 10 == 0:
                check(list(iter_events(path, errors="raise")), seen)
            polls += 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    check(list(iter_events(path, errors="raise")), seen)


RACER = """
import os, sys, time
from planarpy.trace import EventTrace, TraceError

base, races, me = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def wait(name):
    while not os.path.exists(os.path.join(base, name)):
        time.sleep(0.0002)

for k in range(races):
    wait(f"go{k}")
    try:
        trace = EventTrace.open(os.path.join(base, f"trace{k}"), strategy="S", exchange="x",
                                flush_interval=60)
    except TraceError as e:
        print("TraceError", e, flush=True)
        continue
    except BaseException as e:
        print("OTHER", type(e).__name__, str(e).replace(chr(10), " "), flush=True)
        continue
    trace.record("strategy_started", {"writer": me})
    trace.flush()
    print("ok", flush=True)
    wait(f"done{k}")
    trace.close()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_processes_racing_to_create_a_trace_make_one(tmp_path):
    """8 processes open one new trace at once, 20 times over: each time one writes, each
    other gets a clear TraceError, and the trace is whole (finding 1: it was left
    unreadable, events were lost, or a loser got a raw FileNotFoundError)."""
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    races = 20
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(races), str(i)],
                              stdout=subprocess.PIPE, text=True) for i in range(8)]
    try:
        for k in range(races):
            (tmp_path / f"go{k}").touch()
            outcomes = [p.stdout.readline().strip() for p in procs]
            (tmp_path / f"done{k}").touch()
            assert sorted(o.split()[0] if o else "died" for o in outcomes) == \
                ["TraceError"] * 7 + ["ok"], (k, outcomes)
            assert all("is being written by another process" in o for o in outcomes if o != "ok")
            path = tmp_path / f"trace{k}"  # the winner flushed before it said "ok"
            info = trace_info(path, check=True)
            assert info["problems"] == [] and info["readable_events"] == 1
            assert [e["payload"] for e in iter_events(path)] == [{"writer": outcomes.index("ok")}]
    finally:
        for k in range(races):
            (tmp_path / f"go{k}").touch()
            (tmp_path / f"done{k}").touch()
        for p in procs:
            p.kill()
            p.wait()
            p.stdout.close()


ROTATION_KILL = """
import sys, time
from planarpy.trace import EventTrace, store

path, phase = sys.argv[1], sys.argv[2]
real_rename, real_open = store.os.rename, store.Segment.open.__func__
armed = []  # after this process's first flush: every kill lands in a rotation it started

def rename(src, dst):  # phase "before": killed with the new segment built, not yet in place
    if phase == "before" and armed and ".tmp-" in str(src):
        print("rotating", flush=True)
        time.sleep(30)
    real_rename(src, dst)

def open_(cls, p, attributes):  # phase "after": in place, its first rows not committed
    if phase == "after" and armed and attributes["rows"] == 0:
        print("rotating", flush=True)
        time.sleep(30)
    return real_open(cls, p, attributes)

store.os.rename = rename
store.Segment.open = classmethod(open_)
trace = EventTrace.open(path, strategy="S", exchange="x", flush_interval=60, segment_rows=40,
                        daily=False)
i = trace.store.next_seq
print("ready", i, flush=True)
while True:
    for _ in range(15):
        trace.record("order_updated", {"i": i}, ts=BASE + i)
        i += 1
    trace.flush()
    armed.append(True)
    print(i, flush=True)
""".replace("BASE", str(DAY_NS * 19000))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("phase", ["before", "after"])
def test_sigkill_during_rotation_loses_nothing_flushed(tmp_path, phase):
    """A writer killed while it rotates to a new segment (built but not renamed into
    place; renamed but not yet written) keeps every flushed event; the next writer goes on."""
    script = tmp_path / "writer.py"
    script.write_text(ROTATION_KILL)
    path = tmp_path / "trace"
    committed = 0
    for _ in range(4):
        child = subprocess.Popen([sys.executable, str(script), str(path), phase],
                                 stdout=subprocess.PIPE, text=True)
        lines = []
        while not lines or lines[-1] != "rotating":
            lines.append(child.stdout.readline().strip())
            assert lines[-1], "the writer ended before rotating"
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert int(lines[0].split()[1]) == committed
        flushed = max([committed] + [int(x) for x in lines[1:-1]])
        got = [e["payload"]["i"] for e in iter_events(path, errors="raise")]
        assert got == list(range(len(got))) and len(got) >= flushed
        committed = len(got)
    info = trace_info(path, check=True)
    assert info["problems"] == [] and info["readable_events"] == committed >= 4 * 15
    assert [e["seq"] for e in iter_events(path)] == list(range(committed))


KILL_AT_POINT = """
import inspect, os, signal, sys
from zarr.storage import LocalStore
from planarpy import integrity
from planarpy.trace import EventTrace, store

count, at = [0], int(sys.argv[2])

def point():
    count[0] += 1
    if count[0] == at:
        os.kill(os.getpid(), signal.SIGKILL)

def hook(owner, name):  # a kill point before every write, rename and replace
    real = getattr(owner, name)
    if inspect.iscoroutinefunction(real):
        async def call(*args, **kwargs):
            point()
            return await real(*args, **kwargs)
    else:
        def call(*args, **kwargs):
            point()
            return real(*args, **kwargs)
    setattr(owner, name, call)

for owner, name in ((LocalStore, "set"), (store.os, "rename"), (integrity.os, "replace")):
    hook(owner, name)
trace = EventTrace.open(sys.argv[1], flush_interval=60, segment_rows=4, daily=False)
for i in range(3, 7):
    trace.record("order_updated", {"i": i}, ts=BASE + i)
trace.flush()
print("flushed", flush=True)
point()  # and once after the last
trace.close()
print("points", count[0], flush=True)
""".replace("BASE", str(DAY_NS * 19000))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_at_every_write_of_a_flush_that_rotates(tmp_path):
    """Killed before each file write, rename and replace of a flush that fills a
    segment and starts the next: the trace holds the events before the flush, those plus
    the part that filled the old segment, or all of them (always once the flush returned),
    never one twice; the next writer goes on."""
    base = tmp_path / "base"
    with EventTrace.open(base, strategy="S", exchange="x", segment_rows=4, daily=False) as t:
        for i in range(3):
            t.record("order_updated", {"i": i}, ts=DAY_NS * 19000 + i)
    script = tmp_path / "killer.py"
    script.write_text(KILL_AT_POINT)
    at, outcomes = 1, set()
    while True:
        path = tmp_path / f"t{at}"
        shutil.copytree(base, path)
        done = subprocess.run([sys.executable, str(script), str(path), str(at)],
                              capture_output=True, text=True)
        got = [e["payload"]["i"] for e in iter_events(path, errors="raise")]
        assert got == list(range(len(got))) and len(got) in (3, 4, 7), (at, got, done.stderr)
        assert "flushed" not in done.stdout or len(got) == 7, at
        outcomes.add(len(got))
        with EventTrace.open(path, segment_rows=4, daily=False) as writer:
            writer.record("order_updated", {"i": len(got)}, ts=DAY_NS * 19000 + len(got))
        assert [e["seq"] for e in iter_events(path, errors="raise")] == list(range(len(got) + 1))
        assert trace_info(path, check=True)["problems"] == []
        if "points" in done.stdout:
            assert done.returncode == 0 and at > 10, at
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        at += 1
    assert outcomes == {3, 4, 7}
