"""Stopping `planarpy live`: under an outage, by a second Ctrl-C, during start-up, with
stdout and stderr closed, by SIGTERM. Each run ends with nothing open, or says exactly what
is open (the same orders the exchange lists) with a non-zero exit. The tests wait for
states (a line of output, an order on the exchange), never for a fixed time."""

from __future__ import annotations

import signal

import pytest

from planarpy.trace import trace_tail

from livekit import eventually, raw_client
from prockit import Child

SYM = "XRP/ETH"
RESTING = ("from planarpy import Strategy, call\n"
           "class Resting(Strategy):\n"
           "    exchange = 'binance'\n    quote = 'ETH'\n"
           "    timeframe = '1m'\n    universe = ('XRP/ETH',)\n"
           "    def start(self):\n"
           "        call(self, 'limit_order', 'XRP/ETH', 100.0, 0.0005, side='buy', waitfor=0.1)\n")


@pytest.fixture
def child(lx, tmp_path):
    """`child(*flags, config=TOML, close_output=False)`: `planarpy live` of Resting."""
    started = []

    def start(*flags, config=None, close_output=False):
        strategy = tmp_path / "resting.py"
        strategy.write_text(RESTING)
        args = ["live", str(strategy), "--exchange-url", lx.url, "--tick-interval", "0.2",
                "--status-every", "0.2", "--trace-dir", str(tmp_path / "traces"), *flags]
        if config is not None:
            (tmp_path / "planar.toml").write_text(config)
            args += ["--config", str(tmp_path / "planar.toml")]
        c = Child(args, tmp_path, {"PLANARPY_BINANCE_API_KEY": lx.api_key,
                                   "PLANARPY_BINANCE_SECRET": lx.secret}, close_output)
        started.append(c)
        return c
    yield start
    for c in started:
        c.kill()


def open_ids(lx):
    return sorted(o["clientOrderId"] for o in raw_client(lx).fetch_open_orders(SYM))


def last_stop(tmp_path):
    events = trace_tail(tmp_path / "traces" / "Resting" / "binance", n=10_000)
    return [e for e in events if e["kind"] == "strategy_stopped"][-1]["payload"]


def test_an_outage_during_cancel_on_stop_lists_what_is_open(lx, child, tmp_path):
    """The exchange fails every request while the run cancels on stop: it retries until
    the stop deadline, then lists the order still open (the one the exchange lists) and
    exits 1, never 0."""
    c = child("--on-stop", "cancel", "--stop-timeout", "2")
    c.wait_for("equity")
    (order,) = eventually(lambda: open_ids(lx))
    lx.faults.update({"http_status": 503})
    c.signal(signal.SIGINT)
    assert c.finish() == 1, c.text
    lx.faults.clear()
    assert "on_stop = cancel could not finish; still open:" in c.text
    assert f"XRP/ETH order {order}: buy 100 @ 0.0005" in c.text
    assert open_ids(lx) == [order]
    stopped = last_stop(tmp_path)
    assert stopped["reason"] == "SIGINT" and [order in u for u in stopped["undone"]] == [True]
    assert "Traceback" not in c.text


def test_an_outage_that_ends_during_the_stop_is_retried_through(lx, child, tmp_path):
    """Three failed requests, then the exchange answers: the cancel is retried with backoff
    and goes through; nothing is left open and the exit is 0."""
    c = child("--cancel-on-stop", "--stop-timeout", "30")
    c.wait_for("equity")
    eventually(lambda: open_ids(lx))
    lx.faults.update({"http_status": 503, "http_count": 3, "http_path": "order"})
    c.signal(signal.SIGINT)
    assert c.finish() == 0, c.text
    assert open_ids(lx) == []
    stopped = last_stop(tmp_path)
    assert stopped["undone"] == [] and stopped["still_open"] == [] and stopped["on_stop"] == "cancel"


def test_a_second_ctrl_c_forces_the_exit_and_says_what_may_be_open(lx, child, tmp_path):
    """A stop stuck retrying in an outage: the second Ctrl-C exits at once (130), naming
    the order that may be left open, which is the one the exchange still lists."""
    c = child("--on-stop", "cancel", "--stop-timeout", "600")
    c.wait_for("equity")
    (order,) = eventually(lambda: open_ids(lx))
    lx.faults.update({"http_status": 503})
    c.signal(signal.SIGINT)
    c.wait_for("stopping...")
    c.signal(signal.SIGINT)
    assert c.finish(timeout=30) == 130, c.text
    lx.faults.clear()
    assert "forced to exit before the stop finished" in c.text
    assert f"may be left open:\n  XRP/ETH order {order}: buy 100" in c.text
    assert open_ids(lx) == [order]
    assert "Traceback" not in c.text
    stopped = last_stop(tmp_path)  # the trace has it too
    assert stopped["forced"] is True and [order in i for i in stopped["still_open"]] == [True]


def test_ctrl_c_during_start_up_aborts_it(lx, child, tmp_path):
    """Every answer takes 3 s, so the start-up would take half a minute: Ctrl-C during it
    ends the process long before (130), with nothing placed and no traceback."""
    lx.faults.update({"delay_ms": 3000})
    c = child("--on-stop", "cancel")
    c.wait_for("starting Resting on binance")
    c.signal(signal.SIGINT)
    assert c.finish(timeout=20) == 130, c.text
    lx.faults.clear()
    assert "planarpy: start-up interrupted (SIGINT)" in c.text
    assert "equity" not in c.text and "Traceback" not in c.text
    assert open_ids(lx) == []


def test_ctrl_c_with_stdout_and_stderr_closed_still_stops(lx, child, tmp_path):
    """The reader of the output goes away (as `| tee` does on Ctrl-C), then Ctrl-C: the
    stop sequence runs in full, the order is cancelled, the trace says so, exit 0."""
    c = child("--on-stop", "cancel")
    c.wait_for("equity")
    eventually(lambda: open_ids(lx))
    c.close_output()
    c.signal(signal.SIGINT)
    assert c.finish() == 0
    assert open_ids(lx) == []
    stopped = last_stop(tmp_path)
    assert stopped["reason"] == "SIGINT" and stopped["still_open"] == []


def test_a_run_started_with_stdout_and_stderr_closed_stops_cleanly(lx, child, tmp_path):
    """Started with no stdout and stderr at all (closed descriptors): it runs, stops after
    --duration, cancels its order and records the stop."""
    c = child("--on-stop", "cancel", "--duration", "2", close_output=True)
    assert c.finish() == 0
    assert c.text == "" and open_ids(lx) == []
    stopped = last_stop(tmp_path)
    assert stopped["reason"] == "duration" and stopped["still_open"] == []
    kinds = [e["kind"] for e in trace_tail(tmp_path / "traces" / "Resting" / "binance", n=1000)]
    assert "order_created" in kinds and kinds[-1] == "strategy_stopped"


def test_sigterm_stops_like_ctrl_c_with_on_stop_from_planar_toml(lx, child, tmp_path):
    """SIGTERM is a first Ctrl-C; on_stop comes from [live] in planar.toml."""
    c = child(config='[live]\non_stop = "cancel"\nstop_timeout = 20\n')
    c.wait_for("equity")
    eventually(lambda: open_ids(lx))
    c.signal(signal.SIGTERM)
    assert c.finish() == 0, c.text
    assert "stopping... (SIGTERM; on_stop = cancel)" in c.text
    assert open_ids(lx) == []
    assert last_stop(tmp_path)["on_stop"] == "cancel"


def test_on_stop_keep_says_what_it_left_open(lx, child):
    """The default keeps orders: the stop exits 0 and lists the order it left open."""
    c = child()
    c.wait_for("equity")
    (order,) = eventually(lambda: open_ids(lx))
    c.signal(signal.SIGINT)
    assert c.finish() == 0, c.text
    assert f"left open (on_stop = keep):\n  XRP/ETH order {order}" in c.text
    assert open_ids(lx) == [order]


# ---- from Python: the same stop, with its report -----------------------------------

def test_stop_from_python_reports_what_an_outage_left_open(lx):
    """run.stop() in an outage with on_stop="cancel": the report is not complete and
    names the order the exchange still lists; once the exchange is back, a new run's
    stop cancels it."""
    from livekit import live
    with live(lx, on_stop="cancel", stop_timeout=1.0) as run:
        run.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.1)
        (order,) = open_ids(lx)
        lx.faults.update({"http_status": 503})
        report = run.stop()
    lx.faults.clear()
    assert not report.complete and report.on_stop == "cancel"
    assert [order in item for item in report.undone] == [True]
    assert report.lines()[0] == "on_stop = cancel could not finish; still open:"
    with live(lx, cancel_on_stop=True) as again:  # the older spelling
        assert again.state()["assets"][SYM]["orders"] == [order]  # adopted at start
    assert open_ids(lx) == []
    assert again.stop().complete  # a second stop reports the first one's outcome


def test_keyboard_interrupt_during_start_live_stops_the_start_up(lx):
    """Ctrl-C in a script while start_live() waits (a slow exchange): the start-up is
    stopped before KeyboardInterrupt reaches the script; nothing runs on in the back."""
    import os
    import threading
    from livekit import Quiet
    from planarpy.exchanges import ApiKeys
    from planarpy.modes.live import live_run
    lx.faults.update({"delay_ms": 1000})
    run = live_run(Quiet, exchange_url=lx.url, keys=ApiKeys(lx.api_key, lx.secret),
                   settings={"exchanges": {"binance": {"rate_limit": False}}}, trace=None)

    def interrupt() -> None:  # once the start-up is under way (the strategy is built)
        eventually(lambda: run.session.s is not None, timeout=30)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run.start(timeout=120)
    assert not run.running and not run.session.engine.thread.is_alive()
    assert run.session.stop_report.reason == "interrupted"


def test_close_on_stop_in_an_outage_lists_the_open_position(lx):
    """on_stop="close" on a perpetual during an outage: the report names the position it
    could not close; once the exchange is back, the next run's stop closes it."""
    from livekit import QuietPerp, live
    perp = "XRP/USDT:USDT"
    with live(lx, QuietPerp, on_stop="close", stop_timeout=1.0) as run:
        assert run.call("market_order", perp, 20.0, side="buy") is not None
        lx.faults.update({"http_status": 503})
        report = run.stop()
    lx.faults.clear()
    assert not report.complete  # the position, and the closing order if it was in flight
    assert [i for i in report.undone if " position " in i][0].startswith(f"{perp} long position 20 @ ")
    assert all(" order " in i for i in report.undone if " position " not in i)
    with live(lx, QuietPerp, close_on_stop=True) as again:
        assert again.state()["assets"][perp]["long"] == 20.0
    assert again.stop().complete
    with live(lx, QuietPerp) as check:  # synced from the exchange: no position, no order
        assert check.state()["assets"][perp]["long"] == 0 and check.reconcile() == []
