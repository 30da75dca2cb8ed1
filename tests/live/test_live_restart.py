"""Crash-restart: a live strategy killed with SIGKILL at seeded random moments, with its
order open and fills happening while it is down, resumes each time from its trace and
its last checkpoint. Real ccxt against the local exchange; the strategy runs in a child
process (tests/live/keeper.py)."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from planarpy.trace import EventTrace, replay_from_trace, trace_tail

from livekit import ALL, counterparty, eventually, live, raw_client

SYM = "XRP/ETH"
KEEPER = Path(__file__).with_name("keeper.py")
KILLS = int(os.environ.get("PLANARPY_RESTART_KILLS", "10"))


def start_child(lx, path, price, marker) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, str(KEEPER), lx.url, str(path), repr(price), marker],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)


def ready(child: subprocess.Popen) -> dict | None:
    """Wait for the child's READY line; the variables it restored."""
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            raise AssertionError("the child ended before READY:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("READY "):
            return json.loads(line[6:])
    raise AssertionError("no READY within 60 s:\n" + "".join(lines))


def ours(lx) -> list[dict]:
    return [o for o in raw_client(lx).fetch_orders(SYM, limit=ALL)
            if o["clientOrderId"].startswith("pp")]


def test_sigkill_at_random_moments_resumes_without_duplicates_or_lost_fills(lx, tmp_path):
    path = tmp_path / "keeper"
    book = raw_client(lx).fetch_order_book(SYM)
    price = round(book["bids"][0][0] + 2e-8, 8)  # the best bid: a market sell fills it first
    other = counterparty(lx)
    rng = random.Random(16)
    last_vars = None
    marker = None  # that of the first run that left a checkpoint, carried ever after
    resumed = 0  # restarts that found a checkpoint
    for k in range(KILLS):
        child = start_child(lx, path, price, marker=f"first-{k}")
        try:
            restored = ready(child)
            # the variables of the newest checkpoint committed before the kill are back
            assert restored == last_vars, f"restart {k}"
            resumed += restored is not None
            eventually(lambda: len([o for o in ours(lx) if o["status"] == "open"]) == 1,
                       timeout=10)
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            child.kill()  # SIGKILL
            child.wait(10)
            child.stdout.close()
        open_now = [o for o in ours(lx) if o["status"] == "open"]
        assert len(open_now) <= 1, f"duplicate orders after restart {k}: {open_now}"
        if open_now:  # a fill while it is down: part or all of the open bid
            other.create_order(SYM, "market", "sell", rng.choice([30.0, 100.0]))
        checkpoints = trace_tail(path, n=1, kinds="checkpoint")
        before, last_vars = last_vars, checkpoints[-1]["payload"]["vars"] if checkpoints \
            else None
        if before is None and last_vars is not None:  # the first run that checkpointed (a
            marker = f"first-{k}"  # busy machine may kill a run before its first checkpoint)
        assert last_vars is None or last_vars["marker"] == marker  # set once, then carried

    assert resumed >= KILLS // 2 and last_vars["marker"] == marker
    trace = EventTrace.open(path, strategy="Keeper", exchange="binance")
    sys.path.insert(0, str(KEEPER.parent))
    from keeper import Keeper
    with trace, live(lx, Keeper, trace=trace, clock=None) as run:
        strategy = run.strategy
        assert strategy.restored == last_vars
        eventually(lambda: run.reconcile() == [], timeout=10)
        with run.session.engine.locked():
            local = [t.id for t in strategy.state.trades]
            open_local = sorted(strategy.state.assets[SYM].orders)
    theirs = [t["id"] for t in raw_client(lx).fetch_my_trades(SYM, limit=ALL)]
    assert len(local) == len(set(local)), "a fill counted twice"
    assert sorted(local) == sorted(theirs), "a fill missing or extra"
    assert len(theirs) >= 3  # fills did happen while the strategy was down
    exchange_open = [o["clientOrderId"] for o in ours(lx) if o["status"] == "open"]
    assert open_local == sorted(exchange_open) and len(exchange_open) <= 1
    # the replay of the whole trace, across every crash, equals the final live state
    report = replay_from_trace(strategy, path, run=None)
    assert not report.problems and not report.differences, str(report)
    # and the last run alone does too
    assert replay_from_trace(strategy, path).ok
