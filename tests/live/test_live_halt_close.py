"""A halt's close is done only once what it was to close is closed (issue 14).

`pipeline.close_again` records a close that is done as a `trading_state_changed` event
"(its close is done)", and a restarted run goes on with a close only while the newest
such event still carries `close`. These tests hold the closing market order where the
run cannot see its fill: answered before it matched (the fault `reply_before_fill`, as
Binance's USD-M answers by default), or not answered at all (UNKNOWN, executed or not),
with the user data withheld and the lookups failing. The close stays due until the fill
is seen, no second closing order is sent meanwhile, and a run killed (SIGKILL) before
the fill was seen closes on restart, once: the order that filled is found, one that
never reached the exchange is sent again.
"""

from __future__ import annotations

import signal
import textwrap

import pytest

from planarpy import Trade
from planarpy.trace import EventTrace, trace_tail

from livekit import Quiet, QuietPerp, eventually, live, never, raw_client
from prockit import Child

PSYM = "XRP/USDT:USDT"
DONE = "(its close is done)"


# what keeps the closing order's fill from the run: its answer says nothing filled (or
# there is none), the user data is withheld, and the order lookups fail
def blind(kind: str, perp: bool) -> dict:
    if kind == "accepted":
        return {"reply_before_fill": True, "withhold_user": True, "http_status": 503,
                "http_path": "GET /fapi/v1/order" if perp else "GET /api/v3/o"}
    return {"withhold_user": True, "http_status": 503,  # spot: order, openOrders
            "http_path": "/fapi/v1/order" if perp else "/api/v3/o",
            "http_processed": kind == "unknown, executed"}


def events(path, kinds) -> list[dict]:
    return trace_tail(path, n=10_000, kinds=kinds)


def dones(path) -> list[dict]:
    return [e for e in events(path, "trading_state_changed")
            if e["payload"]["reason"].endswith(DONE)]


def closing_orders(client) -> list[dict]:
    """The sell orders the exchange has of the test account (the closes)."""
    sym = PSYM if client.id == "binanceusdm" else "XRP/ETH"
    return [o for o in client.fetch_orders(sym, limit=1_000_000) if o["side"] == "sell"]


@pytest.mark.parametrize("perp", [True, False], ids=["isolated", "spot"])
@pytest.mark.parametrize("kind", ["accepted", "unknown, executed", "unknown, not executed"])
def test_a_halts_close_is_done_only_once_its_closing_order_is_seen_filled(lx, tmp_path,
                                                                         kind, perp):
    """run.halt(close=True) while the run cannot see its closing order's fill: the halt
    answers False, the position is still held here, the close is due and no "close is
    done" is recorded; no second closing order goes while the first may fill. Once the
    exchange answers again the close finishes with one sell order, and its "done" is
    recorded after the trade that closed it."""
    cls, sym, exchange = (QuietPerp, PSYM, "binanceusdm") if perp else (Quiet, "XRP/ETH",
                                                                         "binance")
    path, client = tmp_path / "t", raw_client(lx, exchange)
    trace = EventTrace.open(path, strategy=cls.__name__, exchange=exchange)
    with live(lx, cls, trace=trace, on_stop="keep", waitfor=1.0) as run:
        assert isinstance(run.call("market_order", sym, 100.0, side="buy"), Trade)
        held = run.strategy.state.assets[sym]
        amount = held.long.amount if perp else 99.0  # spot: less the fee, to the step
        lx.faults.update(blind(kind, perp))
        assert run.halt("flatten", close=True) is False
        with run.session.engine.locked():
            assert run.session.e.close_due
            assert (held.long.amount if perp else len(held.trades)) == (100.0 if perp else 1)
            (order,) = held.orders.values()
            assert order.status.value == ("open" if kind == "accepted" else "unknown")
        assert dones(path) == [] and run.state()["trading"] == "halted"
        # the close loop tries again 1 s and 3 s after the halt: neither sends an order
        assert never(lambda: len(closing_orders(client)) > (kind != "unknown, not executed"),
                     3.5)
        lx.faults.clear()
        eventually(lambda: not run.session.e.close_due and dones(path), timeout=30)
        assert run.state()["assets"][sym]["orders"] == []
        if perp:
            assert run.state()["assets"][sym]["long"] == 0.0
    (sold,) = closing_orders(client)
    assert (sold["status"], sold["filled"]) == ("closed", amount)
    if perp:
        assert [p for p in raw_client(lx, "binanceusdm").fetch_positions([PSYM])
                if p["contracts"]] == []
    (done,) = dones(path)
    (closed,) = [e for e in events(path, "trade_created")
                 if e["payload"]["order_id"] == sold["clientOrderId"]]
    assert done["seq"] > closed["seq"]


# ---- SIGKILL before the closing order's fill is seen, and a restart ------------------------
FLATTEN = textwrap.dedent("""\
    import os, sys, time
    from planarpy import Strategy, Trade
    from planarpy.exchanges import ApiKeys
    from planarpy.localexchange.clock import Clock
    from planarpy.modes.live import start_live
    from planarpy.trace import EventTrace

    def say(line):  # one write: the engine's thread prints too
        sys.stdout.write(line + '\\n')
        sys.stdout.flush()

    class Flat(Strategy):
        exchange = 'binanceusdm'
        quote = 'USDT'
        timeframe = '1m'
        margin = 'isolated'
        universe = ('XRP/USDT:USDT',)

    url, key, secret, start, trace, go, first = sys.argv[1:]
    run = start_live(Flat, exchange_url=url, keys=ApiKeys(key, secret), waitfor=1.0,
                     clock=Clock(start=int(start)), on_stop='keep',
                     trace=EventTrace.open(trace, strategy='Flat', exchange='binanceusdm'),
                     settings={'exchanges': {'binanceusdm': {'rate_limit': False}}})
    say(f'STARTED {run.strategy.state.risk.trading.value}')
    if first == '1':
        say(f"BOUGHT {isinstance(run.call('market_order', 'XRP/USDT:USDT', 100.0, side='buy'), Trade)}")
        while not os.path.exists(go):  # the test blinds the run to the close's fill first
            time.sleep(0.01)
        say(f"HALTED {run.halt('flatten', close=True)}")
    while run.running:
        run.session.engine.join(1.0)
    """)


@pytest.mark.parametrize("kind", ["accepted", "unknown, not executed"])
def test_a_run_killed_before_its_closes_fill_was_seen_closes_once_after_a_restart(
        lx, tmp_path, kind):
    """A run on isolated margin halts with close while it cannot see its closing order's
    fill (accepted, or lost before it reached the exchange), and is killed (SIGKILL)
    once the halt is committed. The trace says the close is not done; the restarted run
    goes on with it: it finds the order that filled and sends nothing (accepted), or
    sends the close that never reached the exchange; either way one sell order closed
    the position, and the restart records the close done."""
    script, path, go = tmp_path / "flatten.py", tmp_path / "trace", tmp_path / "go"
    script.write_text(FLATTEN)
    args = [str(script), lx.url, lx.api_key, lx.secret, str(lx.clock.now()), str(path),
            str(go)]
    first = Child([*args, "1"], tmp_path, module=None)
    try:
        first.wait_for("BOUGHT True", timeout=60)
        lx.faults.update(blind(kind, True))
        go.touch()
        first.wait_for("HALTED False", timeout=60)  # it returns once the halt is committed
        first.proc.send_signal(signal.SIGKILL)
        assert first.finish(timeout=10) == -signal.SIGKILL
    finally:
        first.kill()
    assert "Traceback" not in first.text, first.text
    (halt,) = [e["payload"] for e in events(path, "trading_state_changed")]
    assert halt.get("close") is True  # what the restart reads: the close is still to do
    assert len(closing_orders(raw_client(lx, "binanceusdm"))) == (kind == "accepted")
    lx.faults.clear()
    second = Child([*args, "0"], tmp_path, module=None)
    try:
        second.wait_for("STARTED halted", timeout=60)
        eventually(lambda: dones(path), timeout=30)
    finally:
        second.kill()
    assert "Traceback" not in second.text, second.text
    (sold,) = closing_orders(raw_client(lx, "binanceusdm"))
    assert (sold["status"], sold["filled"]) == ("closed", 100.0)
    assert [p for p in raw_client(lx, "binanceusdm").fetch_positions([PSYM])
            if p["contracts"]] == []
    (done,) = dones(path)
    assert done["run"] == max(e["run"] for e in events(path, "trading_state_changed"))
