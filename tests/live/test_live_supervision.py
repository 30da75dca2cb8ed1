"""Checkpoints, alerts and the graceful stop of a live run against the local exchange."""

import json
import logging
import sys
import time

import pytest

from planarpy.trace import EventTrace, trace_tail

from diskkit import read_only
from hookkit import Receiver
from livekit import Quiet, eventually, live

SYM = "XRP/ETH"


class Counting(Quiet):
    """Keeps a counter in its checkpoint; raises an alert from its own code and times it."""

    def reset(self) -> None:
        super().reset()
        self.count = 0
        self.alert_seconds: list[float] = []
        self.raise_alert = lambda kind, message: None  # the run's alert, given by the test

    def checkpoint(self) -> dict:
        return {"count": self.count}

    def restore(self, vars: dict) -> None:
        self.count = vars["count"]

    def on_interval(self, ts: int) -> None:
        began = time.perf_counter()
        self.raise_alert("risk", f"interval alert {self.count}")
        self.alert_seconds.append(time.perf_counter() - began)
        self.count += 1


def alerts_of(trace, path, kind: str) -> list[dict]:
    """The `kind` alerts of the trace committed so far."""
    trace.flush()
    return [e["payload"] for e in trace_tail(path, n=1000, kinds="alert")
            if e["payload"]["kind"] == kind]


def checkpoints(trace, path) -> list[dict]:
    trace.flush()
    return [e["payload"]["vars"] for e in trace_tail(path, n=5, kinds="checkpoint")]


def kinds(path) -> list[str]:
    return [e["kind"] for e in trace_tail(path, n=100_000)]


def test_checkpoints_are_recorded_on_time_and_at_stop_then_restored(lx, tmp_path, caplog):
    path = tmp_path / "t"
    caplog.set_level(logging.INFO, logger="planarpy.modes.runtime.supervision")
    with EventTrace.open(path, strategy="Counting", exchange="binance") as trace:
        with live(lx, Counting, trace=trace, checkpoint_every=0.2) as run:
            with run.session.engine.locked():
                run.strategy.count = 41
            eventually(lambda: {"count": 41} in checkpoints(trace, path))
            with run.session.engine.locked():
                run.strategy.count = 42
    # the stop's own checkpoint is the last word before strategy_stopped
    order = [k for k in kinds(path) if k in ("checkpoint", "strategy_stopped")]
    assert order[-2:] == ["checkpoint", "strategy_stopped"]
    last = trace_tail(path, n=1, kinds="checkpoint")[0]["payload"]
    assert last["vars"] == {"count": 42} and last["why"] == "stop"
    assert "Counting stopped: ran_s" in caplog.text and "checkpoints" in caplog.text
    with EventTrace.open(path, strategy="Counting", exchange="binance") as trace:
        with live(lx, Counting, trace=trace) as run:
            assert run.strategy.count == 42
    assert "checkpoint_restored" in kinds(path)


def test_a_bad_checkpoint_is_reported_not_fatal(lx, tmp_path):
    class Bad(Counting):
        def checkpoint(self) -> dict:
            return {"when": object()}

    with EventTrace.open(tmp_path / "t", strategy="Bad", exchange="binance") as trace:
        with live(lx, Bad, trace=trace, checkpoint_every=0.1) as run:
            eventually(lambda: any("checkpoint() must return JSON-able" in e
                                   for e in run.session.errors))


@pytest.mark.parametrize("how", ["up", "down", "slow"])
def test_webhooks_get_the_alerts_and_never_delay_the_strategy(lx, tmp_path, how):
    """An alert returns to the strategy at once: a receiver that answers in 0.5 s (up),
    refuses (down) or answers after the 1 s timeout (slow) holds up none of 20 alerts
    (waiting for one POST would take 0.5 s or more; the bound leaves room for a busy
    machine's scheduling, which is not what this pins)."""
    receiver = Receiver(delay={"up": 0.5, "slow": 2.0}.get(how, 0.0))
    url = receiver.url
    if how == "down":
        receiver.close()
    alerts = {"webhooks": [url], "timeout": 1.0, "retries": 1}
    with live(lx, Counting, tick_interval=0.05, alerts=alerts) as run:
        with run.session.engine.locked():
            run.strategy.raise_alert = run.session.alert
        eventually(lambda: len(run.strategy.alert_seconds) >= 20, timeout=10)
        with run.session.engine.locked():
            took = list(run.strategy.alert_seconds)
        if how == "up":
            eventually(lambda: len(receiver.bodies) >= 3)
    assert max(took) < 0.25  # the POST is never waited for
    if how == "up":
        body = receiver.bodies[0]
        assert body["kind"] == "risk" and body["strategy"] == "Counting"
        assert body["mode"] == "live" and body["exchange"] == "binance"
        text = json.dumps(receiver.bodies)
        assert lx.secret not in text and lx.api_key not in text
    if how != "down":
        receiver.close()


def test_a_long_disconnect_is_an_alert_once(lx, tmp_path):
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace, alerts={"disconnect_after": 0.3}) as run:
            run.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.2)
            lx.faults.update({"refuse_ws": True})
            lx.faults.drop_websockets("user")
            eventually(lambda: alerts_of(trace, tmp_path / "t", "disconnect"), timeout=10)
            lx.faults.update({"refuse_ws": False})
    down = [e["payload"] for e in trace_tail(tmp_path / "t", n=1000, kinds="alert")
            if e["payload"]["kind"] == "disconnect"]
    assert len({d["details"]["watcher"] for d in down}) == len(down)  # once per stream
    assert "has been down" in down[0]["message"]


@pytest.mark.skipif(sys.platform == "win32", reason="mounts")
def test_a_trace_that_cannot_be_written_is_an_alert_to_the_webhook(lx, tmp_path):
    """The trace's directory turns read-only mid-run: the trace cannot hold that alert,
    so the webhook (and the log) must."""
    receiver = Receiver()
    path = tmp_path / "t"
    try:
        with EventTrace.open(path, strategy="Quiet", exchange="binance") as trace:
            with live(lx, trace=trace, alerts={"webhooks": [receiver.url]}) as run:
                trace.flush()
                with read_only(path):
                    run.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.2)
                    eventually(lambda: [b for b in receiver.bodies if b["kind"] == "trace"],
                               timeout=10)
    finally:
        receiver.close()
    (body,) = [b for b in receiver.bodies if b["kind"] == "trace"]
    assert "could not be written" in body["message"] and body["details"]["failed_flushes"] >= 1
