"""The kill switch: `run.halt()` from Python and `planarpy halt STRATEGY` from a second
terminal halt trading and cancel the run's open orders; a halted live run stays halted
after a SIGKILL and a restart."""

from __future__ import annotations

import re
import time
import signal
import textwrap

import pytest

from planarpy import InvalidArgument, TradingState, missing
from planarpy.core.orders import OrderStatus
from planarpy.trace import trace_tail

from livekit import (QuietPerp, Watched, eventually, live, never, perp_in_step, raw_client,
                     replayed)
from prockit import Child

SYM = "XRP/ETH"


def open_ids(lx) -> list[str]:
    return sorted(o["clientOrderId"] for o in raw_client(lx).fetch_open_orders(SYM))


def far_bid(lx) -> float:
    return round(raw_client(lx).fetch_order_book(SYM)["bids"][0][0] * 0.5, 8)


def test_run_halt_cancels_open_orders_and_denies_later_ones(lx):
    """run.halt(): HALTED by the kill switch (on_risk hears it), both resting orders
    cancelled on the exchange, the next order denied without a request; a reset lets
    orders go again."""
    with live(lx, Watched) as run:
        price = far_bid(lx)
        for _ in range(2):
            assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0) is missing
        eventually(lambda: len(open_ids(lx)) == 2)
        assert run.halt("enough for today") is True
        assert open_ids(lx) == [] and run.state()["trading"] == "halted"
        (change,) = run.strategy.risk_events
        assert (change.rule, change.reason, change.state) == ("kill_switch", "enough for today",
                                                              TradingState.HALTED)
        assert run.call("limit_order", SYM, 100.0, price, side="buy") is None
        assert run.strategy.risk_events[-1].rule == "trading_state" and open_ids(lx) == []
        assert run.halt() is True  # halting a halted run cancels again, and changes nothing
        assert run.call("reset_trading_state", "checked") is True
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0) is missing
        assert eventually(lambda: run.reconcile() == [])


def test_run_halt_checks_its_arguments(lx):
    with live(lx) as run:
        with pytest.raises(InvalidArgument, match="reason must be a string, got 3"):
            run.halt(3)
        with pytest.raises(InvalidArgument, match="close must be True, False or None, got 'y'"):
            run.halt("x", close="y")
        with pytest.raises(InvalidArgument, match="close must be True, False or None, got 1"):
            run.halt("x", close=1)  # 1 == True: taken as True before
        assert run.state()["trading"] == "active"


RESTING = textwrap.dedent("""\
    from planarpy import Strategy, call
    class Resting(Strategy):
        exchange = 'binance'
        quote = 'ETH'
        timeframe = '1m'
        universe = ('XRP/ETH',)
        def start(self):
            for price in (0.0004, 0.0005):
                call(self, 'limit_order', 'XRP/ETH', 100.0, price, side='buy', waitfor=0.1)
    """)


def cli(lx, tmp_path, *args):
    return Child(list(args), tmp_path, {"PLANARPY_BINANCE_API_KEY": lx.api_key,
                                        "PLANARPY_BINANCE_SECRET": lx.secret})


def test_planarpy_halt_from_a_second_terminal(lx, tmp_path):
    """`planarpy halt Resting` from another process while `planarpy live` runs: within a
    second the run is halted and its two orders are cancelled on the exchange; the run
    goes on (halted) until Ctrl-C, and its trace has the kill switch."""
    (tmp_path / "resting.py").write_text(RESTING)
    traces = str(tmp_path / "traces")
    run = cli(lx, tmp_path, "live", "resting.py", "--exchange-url", lx.url, "--trace-dir", traces,
              "--status-every", "0.2")
    try:
        run.wait_for("equity")
        eventually(lambda: len(open_ids(lx)) == 2, timeout=10)
        halt = cli(lx, tmp_path, "halt", "Resting", "--trace-dir", traces, "--reason", "by hand")
        assert halt.finish() == 0, halt.text
        assert open_ids(lx) == []  # gone when the command returns
        said = re.search(r"halted Resting \(live on binance, pid \d+\) in ([\d.]+) s: "
                         r"trading halted", halt.text)
        assert said and float(said.group(1)) <= 1.0, halt.text
        run.wait_for("trading HALTED")  # the status line says so
        again = cli(lx, tmp_path, "halt", "resting.py", "--trace-dir", traces)  # by path too
        assert again.finish() == 0, again.text
        run.signal(signal.SIGINT)
        assert run.finish() == 0, run.text
    finally:
        run.kill()
    (change,) = [e["payload"] for e in trace_tail(tmp_path / "traces" / "Resting" / "binance",
                                                  n=1000, kinds="trading_state_changed")]
    assert (change["rule"], change["reason"], change["state"]) == ("kill_switch", "by hand",
                                                                   "halted")
    gone = cli(lx, tmp_path, "halt", "Resting", "--trace-dir", traces)
    assert gone.finish() == 2
    assert "no paper or live run of Resting is running" in gone.text
    assert "Traceback" not in gone.text + run.text


# ---- a halt survives SIGKILL and a restart -----------------------------------------------
FALLING = textwrap.dedent("""\
    import sys
    from planarpy import Strategy, call
    from planarpy.exchanges import ApiKeys
    from planarpy.localexchange.clock import Clock
    from planarpy.modes.live import start_live
    from planarpy.trace import EventTrace

    def say(line):  # one write: the engine's thread prints too (print writes in parts)
        sys.stdout.write(line + '\\n')
        sys.stdout.flush()

    class Faller(Strategy):
        exchange = 'binance'
        quote = 'ETH'
        timeframe = '1m'
        universe = ('XRP/ETH',)

        def tick(self, ts):
            out = call(self, 'market_order', 'XRP/ETH', 200.0, side='buy', waitfor=1.0)
            say(f"TICK {ts} {'FILLED' if out else 'REFUSED'} {self.state.risk.trading.value}")

    url, key, secret, start, wall0, trace = sys.argv[1:]
    clock = Clock(start=int(start), speed=60.0, wall0=int(wall0))  # the exchange's clock
    run = start_live(Faller, exchange_url=url, keys=ApiKeys(key, secret), clock=clock,
                     trace=EventTrace.open(trace, strategy='Faller', exchange='binance'),
                     risk={'max_daily_loss_quote': 0.02}, candles=30,
                     settings={'exchanges': {'binance': {'rate_limit': False}}})
    say(f'STARTED {run.strategy.state.risk.trading.value}')
    while run.running:
        run.session.engine.join(1.0)
    """)


def falling_exchange(factory):
    """A local exchange whose XRP/ETH price falls by 1% a minute from its start on, on a
    clock running sixty times the wall clock (a minute a second)."""
    import numpy as np

    from planarpy import OHLCV
    from planarpy.localexchange.clock import Clock

    from fidelitykit import MINUTE, T0, exchange, walk
    base = walk(480, T0 - 120 * MINUTE)
    close = base.close.copy()
    close[120:] = np.round(close[120:] * 0.99 ** np.arange(1, 361), 8)
    open_ = np.r_[close[0], close[:-1]]
    candles = OHLCV(base.timestamp, open_, np.maximum(open_, close), np.minimum(open_, close),
                    close, base.volume)
    return exchange(candles, Clock(start=T0, speed=60.0), T0, cash=10.0, factory=factory)


def after(text: str, mark: str) -> str:
    return text.split(mark, 1)[1] if mark in text else ""


def test_a_run_halted_by_its_daily_loss_stays_halted_after_sigkill_and_restart(
        local_exchange_factory, tmp_path):
    """The price falls and the daily loss limit halts the run; SIGKILL; the restarted
    run (on the same trace) starts halted, denies every order, and sends nothing."""
    lx = falling_exchange(local_exchange_factory)
    script = tmp_path / "faller.py"
    script.write_text(FALLING)
    args = [str(script), lx.url, lx.api_key, lx.secret, str(lx.clock.start),
            str(lx.clock._wall0), str(tmp_path / "trace")]
    first = Child(args, tmp_path, module=None)
    try:
        # a busy machine may let the engine tick (a minute a second) down to the halt
        # before the script prints STARTED: the trace shows the trip from active below
        first.wait_for("STARTED", timeout=60)
        first.wait_for(lambda t: "halted" in after(t, "STARTED"), timeout=60)
        eventually(lambda: trace_tail(tmp_path / "trace", n=1, kinds="trading_state_changed"),
                   timeout=10)  # committed: what a kill cannot take back
        first.proc.send_signal(signal.SIGKILL)
        assert first.finish(timeout=10) == -signal.SIGKILL
    finally:
        first.kill()
    assert "FILLED" in first.text
    sent = len(raw_client(lx).fetch_orders(SYM, limit=1_000_000))

    def both_runs() -> dict[int, list] | None:
        """The risk events of each run in the trace, once the second run's denial is there."""
        found: dict[int, list] = {}
        for e in trace_tail(tmp_path / "trace", n=10_000,
                            kinds=["trading_state_changed", "risk_denied"]):
            found.setdefault(e["run"], []).append((e["kind"], e["payload"].get("rule")))
        return found if len(found) == 2 and ("risk_denied", "trading_state") in \
            found[max(found)] else None

    second = Child(args, tmp_path, module=None)
    try:
        second.wait_for("STARTED halted", timeout=60)
        second.wait_for(lambda t: after(t, "STARTED").count("TICK") >= 2, timeout=60)
        # its events reach the trace when the run commits them: the kill below would lose
        # what is not committed yet, so they are waited for
        runs = eventually(both_runs, timeout=60)
    finally:
        second.kill()
    assert "FILLED" not in after(second.text, "STARTED") and "Traceback" not in second.text
    assert len(raw_client(lx).fetch_orders(SYM, limit=1_000_000)) == sent
    first_run, second_run = sorted(runs)
    assert ("trading_state_changed", "max_daily_loss_quote") in runs[first_run]
    assert runs[second_run][0] == ("trading_state_changed", "max_daily_loss_quote")
    assert ("risk_denied", "trading_state") in runs[second_run]


# ---- the kill switch when an order's outcome is unknown -----------------------------------
def halt_by_socket(run, tmp_path) -> tuple[dict, float]:
    """`planarpy halt`'s request on the run's control socket; (answer, seconds taken)."""
    from planarpy.modes.runtime.control import find_run, request
    info = find_run(tmp_path / "control", "Watched")
    began = time.monotonic()
    answer = request(info, {"command": "halt", "reason": "by hand"})
    return answer, time.monotonic() - began


def test_the_kill_switch_answers_within_a_second_when_an_order_is_unknown(lx, tmp_path):
    """A resting order whose submit got no answer (503, executed all the same; its
    lookups fail too, and the stream is silent) is UNKNOWN. The kill switch halts within
    a second and says that order's outcome is unknown, not that it is cancelled; once the
    exchange answers again the order is found and cancelled, with no new request."""
    with live(lx, Watched, control=tmp_path / "control") as run:
        price = far_bid(lx)
        lx.faults.update({"http_status": 503, "http_path": "/api/v3/order",
                          "http_processed": True, "withhold_user": True})
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.2) is missing
        (order,) = run.strategy.state.assets[SYM].orders.values()
        assert order.status is OrderStatus.UNKNOWN
        answer, took = halt_by_socket(run, tmp_path)
        assert answer["ok"] and answer["state"] == "halted", answer
        assert took <= 1.0, f"the kill switch took {took:.2f} s: {answer}"
        (item,) = answer["open_orders"]
        assert order.id in item and "outcome unknown" in item, item
        assert open_ids(lx) == [order.id]  # it exists, and nothing says otherwise
        lx.faults.clear()
        eventually(lambda: open_ids(lx) == [] and not run.state()["assets"][SYM]["orders"],
                   timeout=10)
        assert run.state()["trading"] == "halted"


def test_halt_with_close_while_an_order_is_unknown_answers_at_once_and_closes_later(
        lx, tmp_path, capsys):
    """The run holds 100 XRP it bought; a resting buy's submit got no answer and every
    lookup fails (UNKNOWN). `planarpy halt --close` answers within a second (it waited
    the run's waitfor, 5.5 s, before), says the order's outcome is unknown and that the
    XRP is still to be sold, and exits 1 (it said nothing of the XRP); once the exchange
    answers again the order is cancelled and the XRP sold (it never was), the run halted
    and in step."""
    from planarpy import Trade
    from planarpy.cli.main import main

    from livekit import in_step, sells
    traces = tmp_path / "traces"
    with live(lx, Watched, control=traces / ".control") as run:
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
        lx.faults.update({"http_status": 503, "http_path": "/api/v3/o",  # order, openOrders
                          "http_processed": True, "withhold_user": True})
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy", waitfor=0.2) \
            is missing
        (order,) = run.strategy.state.assets[SYM].orders.values()
        assert order.status is OrderStatus.UNKNOWN
        capsys.readouterr()
        assert main(["halt", "Watched", "--trace-dir", str(traces), "--close"]) == 1
        said = capsys.readouterr().out
        took = re.search(r"halted Watched \(live on binance, pid \d+\) in ([\d.]+) s: "
                         r"trading halted", said)
        assert took and float(took.group(1)) <= 1.0, said
        assert re.search(rf"still open: {SYM} order {order.id}: .*outcome unknown", said), said
        # what its fills bought and it holds, less the fee in XRP, to the amount step
        assert f"{SYM}: sell 99 still to close" in said, said
        assert sells(run) == []
        lx.faults.clear()
        eventually(lambda: open_ids(lx) == [] and [t.amount for t in sells(run)] == [99.0],
                   timeout=15)
        assert run.state()["trading"] == "halted"
        assert eventually(lambda: in_step(run, lx) == [])


# ---- paper and live of one strategy write one trace ---------------------------------------
def ticked(run, lx) -> None:
    """Step the exchange's clock a candle on and wait for the run's tick of it."""
    seen = run.session.ticks
    lx.step(60_000)
    eventually(lambda: run.session.ticks > seen, timeout=10)


def test_a_paper_run_on_the_same_trace_neither_resets_nor_re_bases_a_live_halt(lx, tmp_path):
    """`planarpy paper` and `planarpy live` of one strategy on one exchange record to one
    trace. A live run halted by the kill switch; a paper run on that trace, reset by its
    strategy, measuring its own simulated account; the live run again: it starts halted
    (nothing reset it), its loss breakers measured from the live account's figures."""
    from planarpy import RiskRules
    from planarpy.modes.paper import start_paper
    from planarpy.trace import EventTrace
    path = tmp_path / "t"
    risk = RiskRules(max_daily_loss=0.5)

    def trace():
        return EventTrace.open(path, strategy="Watched", exchange="binance")

    with live(lx, Watched, trace=trace(), risk=risk) as run:
        ticked(run, lx)
        assert run.halt("by hand") is True
        before = run.strategy.state.risk
        measured = (before.day, before.day_start_equity, before.peak_equity)
    assert measured[0] is not None
    paper = start_paper(Watched, exchange_url=lx.url, clock=lx.clock, stall_after=2.0,
                        settings={}, cash=1000.0, trace=trace(), risk=risk)
    try:
        assert paper.call("reset_trading_state", "a paper test") is True
        ticked(paper, lx)
        assert paper.state()["trading"] == "active"
    finally:
        paper.stop()
    with live(lx, Watched, trace=trace(), risk=risk) as run:
        r = run.strategy.state.risk
        assert run.state()["trading"] == "halted"
        assert (r.day, r.day_start_equity) == measured[:2]
        # the same peak, or one the live account made since (a candle closed meanwhile)
        assert measured[2] <= r.peak_equity < 1.01 * measured[2]


# ---- "halted" is said once the halt is committed -------------------------------------------
CALM = textwrap.dedent("""\
    import sys
    from planarpy import Strategy
    from planarpy.exchanges import ApiKeys
    from planarpy.modes.live import start_live
    from planarpy.trace import EventTrace

    class Calm(Strategy):
        exchange = 'binance'
        quote = 'ETH'
        timeframe = '1m'
        universe = ('XRP/ETH',)

    url, key, secret, trace, control = sys.argv[1:]
    # a trace that commits only when asked (or at 1000 events, or a change of the
    # trading state): what a kill takes back is all that was recorded since
    run = start_live(Calm, exchange_url=url, keys=ApiKeys(key, secret), control=control,
                     trace=EventTrace.open(trace, strategy='Calm', exchange='binance',
                                           flush_interval=600.0),
                     settings={'exchanges': {'binance': {'rate_limit': False}}})
    sys.stdout.write(f'STARTED {run.strategy.state.risk.trading.value}\\n')
    sys.stdout.flush()
    while run.running:
        run.session.engine.join(1.0)
    """)


def test_a_halt_the_kill_switch_answered_survives_a_sigkill_right_after(lx, tmp_path):
    """`planarpy halt` answers "halted" only once the halt is in the trace: a SIGKILL the
    moment the answer comes cannot take it back, and the restarted run starts halted."""
    from planarpy.modes.runtime.control import find_run, request
    script = tmp_path / "calm.py"
    script.write_text(CALM)
    args = [str(script), lx.url, lx.api_key, lx.secret, str(tmp_path / "trace"),
            str(tmp_path / "control")]
    first = Child(args, tmp_path, module=None)
    try:
        first.wait_for("STARTED active")
        answer = request(find_run(tmp_path / "control", "Calm"),
                         {"command": "halt", "reason": "by hand"})
        first.proc.send_signal(signal.SIGKILL)
        assert answer["ok"] and answer["state"] == "halted", answer
        assert first.finish(timeout=10) == -signal.SIGKILL
    finally:
        first.kill()
    second = Child(args, tmp_path, module=None)
    try:
        second.wait_for(lambda t: "STARTED" in t)
        assert "STARTED halted" in second.text, second.text
    finally:
        second.kill()


# ---- the kill switch closes an isolated-margin position, even one still being opened ------
PSYM = "XRP/USDT:USDT"


def test_halt_with_close_while_a_market_order_is_in_flight_on_isolated_margin(lx):
    """A market buy on an isolated-margin market is sent and not answered yet (the exchange
    is 800 ms slow) when run.halt(close=True) comes: the halt answers without waiting for
    it (the kill switch's wait for orders in flight, 0.5 s), then closes the position it
    opened once it is known; the run is flat and halted, here and on the exchange."""
    with live(lx, QuietPerp) as run:
        assert run.call("update_leverage", PSYM, 5) is True
        lx.faults.update({"delay_ms": 800, "delay_count": 1, "delay_path": "POST /fapi/v1/order"})
        assert run.call("market_order", PSYM, 100.0, side="buy", waitfor=0, synced=False) \
            is missing
        run.halt("by hand", close=True)  # False: the order was still in flight
        eventually(lambda: run.state()["assets"][PSYM]["long"] == 0.0
                   and len(run.strategy.fills) == 2)
        assert run.state()["trading"] == "halted"
        assert [(t.side.value, t.amount) for t in run.strategy.fills] == [("buy", 100.0),
                                                                         ("sell", 100.0)]
        assert eventually(lambda: perp_in_step(run, lx) == [])
        assert [p for p in raw_client(lx, "binanceusdm").fetch_positions([PSYM])
                if p["contracts"]] == []


# ---- a restart on a damaged trace ---------------------------------------------------------
def test_a_restart_on_a_trace_whose_risk_history_is_damaged_starts_halted(lx, tmp_path):
    """A halted run; its trace's last segment is damaged (its payload chunk fails its
    checksum), so the halt cannot be read back. The restarted run does not guess ACTIVE:
    it starts halted by "trace_damaged", until a reset; after the reset, a restart reads
    that reset and starts active (the old damage no longer matters)."""
    import warnings

    from planarpy.trace import EventTrace, TraceDamageWarning
    from planarpy.trace.layout import segment_names
    path = tmp_path / "t"

    def trace():
        return EventTrace.open(path, strategy="Watched", exchange="binance")

    with live(lx, Watched, trace=trace()) as run:
        assert run.halt("by hand") is True
    chunk = path / segment_names(path)[-1] / "heap" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"!")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceDamageWarning)  # the readers name the damage
        with live(lx, Watched, trace=trace()) as run:
            assert run.state()["trading"] == "halted"
            (change,) = run.strategy.risk_events
            assert change.rule == "trace_damaged" and "damaged" in change.reason
            assert run.call("reset_trading_state", "checked the trace") is True
        with live(lx, Watched, trace=trace()) as run:
            assert run.state()["trading"] == "active" and run.strategy.risk_events == []


def test_a_restart_on_a_damaged_trace_does_not_close_the_positions(lx, tmp_path):
    """halt_closes_positions is on; the run's halt kept its position (close=False) and the
    trace's last segment is damaged. The restart starts halted ("trace_damaged": the state
    is unknown) and keeps the position: not knowing the state is no breach to act on."""
    import warnings

    from planarpy import RiskRules, Trade
    from planarpy.trace import EventTrace, TraceDamageWarning
    from planarpy.trace.layout import segment_names
    rules, path = RiskRules(halt_closes_positions=True), tmp_path / "t"

    def trace():
        return EventTrace.open(path, strategy="QuietPerp", exchange="binanceusdm")

    with live(lx, QuietPerp, trace=trace(), risk=rules) as run:
        assert isinstance(run.call("market_order", PSYM, 100.0, side="buy"), Trade)
        assert run.halt("keep it", close=False) is True
    chunk = path / segment_names(path)[-1] / "heap" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"!")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceDamageWarning)  # the readers name the damage
        with live(lx, QuietPerp, trace=trace(), risk=rules) as run:
            state = run.state()
            assert (state["trading"], state["assets"][PSYM]["long"]) == ("halted", 100.0)
            assert run.strategy.state.risk.changes[-1]["rule"] == "trace_damaged"
            assert run.strategy.fills == []
            assert eventually(lambda: perp_in_step(run, lx) == [])


@pytest.mark.parametrize("status", [429, 503])
def test_the_kill_switch_cancels_once_the_exchange_takes_the_cancel(lx, tmp_path, status):
    """The exchange answers the kill switch's cancel with a 429 or a 503 (nothing done):
    the answer, within a second, lists the order as still open (not cancelled), and the
    cancel is sent again until the exchange takes it: the order is cancelled there and
    here once it answers again, with no new halt; the trace replays to that state."""
    from planarpy.trace import EventTrace
    trace = EventTrace.open(tmp_path / "t", strategy="Watched", exchange="binance")
    with live(lx, Watched, control=tmp_path / "control", trace=trace) as run:
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy") is missing
        (order,) = run.strategy.state.assets[SYM].orders.values()
        lx.faults.update({"http_status": status, "http_path": "DELETE /api/v3/order"})
        answer, took = halt_by_socket(run, tmp_path)
        assert answer["ok"] and took <= 1.0, (took, answer)
        (item,) = answer["open_orders"]
        assert order.id in item
        assert open_ids(lx) == [order.id]
        lx.faults.clear()
        eventually(lambda: open_ids(lx) == [] and not run.state()["assets"][SYM]["orders"],
                   timeout=10)
        assert order.status is OrderStatus.CANCELED and run.state()["trading"] == "halted"
    replayed(run.strategy, tmp_path / "t")


def test_a_cancel_answered_with_a_rate_limit_is_sent_again_after_the_wait_asked(lx, tmp_path):
    """The exchange answers the kill switch's cancel with a 429 and Retry-After 3 s: the
    cancel is not sent again before those 3 s (every second, as the checks of orders in
    flight run, would hammer an exchange that asked for a pause: Binance bans for that,
    418), and once the exchange answers again it is sent and the order cancelled."""
    from tapekit import Events
    trace = Events()
    with live(lx, Watched, control=tmp_path / "control", trace=trace) as run:
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy") is missing
        lx.faults.update({"http_status": 429, "http_path": "DELETE /api/v3/order",
                          "retry_after": 3})

        def cancels():
            return [p for p in trace.of("request_sent") if p["method"] == "cancel_order"]
        answer, _ = halt_by_socket(run, tmp_path)
        assert answer["ok"] and len(cancels()) == 1
        assert never(lambda: len(cancels()) > 1, 2.5)  # the wait the exchange asked for
        lx.faults.clear()
        eventually(lambda: open_ids(lx) == [] and not run.state()["assets"][SYM]["orders"],
                   timeout=10)
        assert len(cancels()) == 2


def test_the_kill_switch_says_when_its_halt_is_not_in_the_trace_yet(lx, tmp_path):
    """The trace's disk turns read-only: the kill switch still halts and cancels, and its
    answer says the halt is not in the trace yet (a crash now would lose it); once the
    disk is writable again the halt is committed."""
    from diskkit import read_only

    from planarpy.trace import EventTrace
    path = tmp_path / "t"
    trace = EventTrace.open(path, strategy="Watched", exchange="binance")
    with live(lx, Watched, control=tmp_path / "control", trace=trace) as run:
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy") is missing
        trace.flush()
        with read_only(path):
            answer, took = halt_by_socket(run, tmp_path)
            assert answer["ok"] and answer["state"] == "halted" and took <= 1.0, answer
            assert answer["open_orders"] == [] and open_ids(lx) == []
            assert "cannot write trace" in answer["unrecorded"], answer
        eventually(lambda: trace_tail(path, n=1, kinds="trading_state_changed"), timeout=10)


def test_a_restart_of_a_halted_run_keeps_the_position_the_halt_kept(lx, tmp_path):
    """halt_closes_positions is on, but the kill switch was told not to close
    (close=False): the position stays. The run started again on its trace is halted and
    still holds it: a restart restores the halt, it does not carry it out again."""
    from planarpy import RiskRules, Trade
    from planarpy.trace import EventTrace
    rules = RiskRules(halt_closes_positions=True)

    def trace():
        return EventTrace.open(tmp_path / "t", strategy="QuietPerp", exchange="binanceusdm")

    with live(lx, QuietPerp, trace=trace(), risk=rules) as run:
        assert isinstance(run.call("market_order", PSYM, 100.0, side="buy"), Trade)
        assert run.halt("keep it", close=False) is True
        assert run.state()["assets"][PSYM]["long"] == 100.0
    with live(lx, QuietPerp, trace=trace(), risk=rules) as run:
        state = run.state()
        assert (state["trading"], state["assets"][PSYM]["long"]) == ("halted", 100.0)
        assert [f for f in run.strategy.fills] == []
        assert eventually(lambda: perp_in_step(run, lx) == [])


def test_a_halts_close_cut_short_by_the_end_of_the_run_goes_on_after_a_restart(lx, tmp_path):
    """run.halt(close=True) while the exchange refuses orders (418): the position cannot
    be closed, and the run ends (on_stop keep) with the close still due. The halt's event
    says it was to close, so the run started again on its trace closes the position
    once the exchange takes orders again, and its own halt event says so too (a second
    restart would go on), then records that the close is done. A halt that was not to
    close keeps it (the test above)."""
    from planarpy import Trade
    from planarpy.trace import EventTrace, trace_tail

    def trace():
        return EventTrace.open(tmp_path / "t", strategy="QuietPerp", exchange="binanceusdm")

    with live(lx, QuietPerp, trace=trace(), on_stop="keep") as run:
        assert isinstance(run.call("market_order", PSYM, 100.0, side="buy"), Trade)
        lx.faults.update({"http_status": 418, "http_path": "POST /fapi/v1/order",
                          "retry_after": 0})
        assert run.halt("flatten", close=True) is False  # the close is refused
        assert run.state()["assets"][PSYM]["long"] == 100.0
    lx.faults.clear()
    with live(lx, QuietPerp, trace=trace(), on_stop="keep") as run:
        eventually(lambda: run.state()["assets"][PSYM]["long"] == 0.0, timeout=10)
        assert run.state()["trading"] == "halted"
        assert [(t.side.value, t.amount) for t in run.strategy.fills] == [("sell", 100.0)]
        assert eventually(lambda: perp_in_step(run, lx) == [])
    halts = [e["payload"] for e in trace_tail(tmp_path / "t", n=1000,
                                               kinds="trading_state_changed")]
    assert [(h["state"], h.get("close")) for h in halts] == [("halted", True), ("halted", True),
                                                             ("halted", None)]
    assert halts[-1]["reason"].endswith("(its close is done)")  # a next restart closes nothing


def test_a_restart_after_a_halts_close_was_done_closes_nothing_opened_since(lx, tmp_path):
    """run.halt(close=True) closed the position; while the run was down a position was
    opened by hand. The run started again on its trace is halted and keeps it: only a
    close its run ended before it was done goes on after a restart (README), and this
    one was done."""
    from planarpy import Trade
    from planarpy.trace import EventTrace

    def trace():
        return EventTrace.open(tmp_path / "t", strategy="QuietPerp", exchange="binanceusdm")

    with live(lx, QuietPerp, trace=trace(), on_stop="keep") as run:
        assert isinstance(run.call("market_order", PSYM, 100.0, side="buy"), Trade)
        assert run.halt("flatten", close=True) is True
        assert run.state()["assets"][PSYM]["long"] == 0.0
    raw_client(lx, "binanceusdm").create_order(PSYM, "market", "buy", 30.0)
    with live(lx, QuietPerp, trace=trace(), on_stop="keep") as run:
        assert run.state()["trading"] == "halted"
        eventually(lambda: perp_in_step(run, lx) == [])
    (held,) = [p for p in raw_client(lx, "binanceusdm").fetch_positions([PSYM])
               if float(p.get("contracts") or 0)]
    assert float(held["contracts"]) == 30.0
