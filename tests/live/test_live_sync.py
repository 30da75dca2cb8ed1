"""Live state stays in step with the exchange: reconnects, restarts, retries, replay."""

import threading

import pytest

from planarpy import Trade
from planarpy.trace import EventTrace, replay_from_trace, trace_tail

from livekit import conns, counterparty, eventually, live, never, raw_client

SYM = "XRP/ETH"


def kinds_of(path, trace) -> list[str]:
    trace.flush()
    return [e["kind"] for e in trace_tail(path, n=10_000)]


def best_bid_plus(lx, ticks=2):
    book = raw_client(lx).fetch_order_book(SYM)
    return round(book["bids"][0][0] + ticks * 1e-8, 8)


def test_fill_while_the_websocket_is_down_arrives_once(lx, tmp_path):
    """A fill that happens while the user stream is dropped shows up after the reconnect, once."""
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace, \
            live(lx, trace=trace) as run:
        price = best_bid_plus(lx)
        assert not run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.2)
        lx.faults.update({"refuse_ws": True})
        lx.faults.drop_websockets("user")
        other = counterparty(lx)
        other.load_markets()
        other.create_order(SYM, "market", "sell", 100.0)  # fills our resting bid
        assert never(lambda: run.state()["trades"], 0.5)  # silence while the stream is down
        lx.faults.update({"refuse_ws": False})
        eventually(lambda: run.state()["trades"] == 1, timeout=10)
        assert never(lambda: run.state()["trades"] > 1, 0.5)  # silence: no late duplicate
        state = run.state()
        assert state["trades"] == 1 and state["assets"][SYM]["orders"] == []
        assert eventually(lambda: run.reconcile() == [], timeout=5)
        # the stream counts as restored once it delivers again: our next order's events
        assert isinstance(run.call("market_order", SYM, 100.0, side="sell"), Trade)
        eventually(lambda: "connection_restored" in kinds_of(tmp_path / "t", trace), timeout=5)
    kinds = kinds_of(tmp_path / "t", trace)
    assert kinds.index("connection_lost") < kinds.index("connection_restored")
    assert any(where.startswith("connection_lost:") for where, _ in run.strategy.seen_errors)


def test_restart_adopts_the_open_order(lx):
    """An order left open by one run is adopted by the next, not duplicated."""
    with live(lx) as first:
        first.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.1)
        (oid,) = first.state()["assets"][SYM]["orders"]
    with live(lx) as second:
        state = second.state()
        assert state["assets"][SYM]["orders"] == [oid] and state["committed"] > 0
        assert len(raw_client(lx).fetch_open_orders(SYM)) == 1
        assert second.call("cancel_orders", SYM) is True
        assert raw_client(lx).fetch_open_orders(SYM) == []
        assert second.reconcile() == []


def test_submit_retried_after_a_timeout_creates_one_order(lx):
    """A create_order that times out is found by client id, not sent twice."""
    settings = {"exchanges": {"binance": {"timeout": 300}}}
    with live(lx, settings=settings) as run:
        lx.faults.update({"delay_ms": 600})
        threading.Timer(0.45, lambda: lx.faults.update({"delay_ms": 0})).start()
        result = run.call("market_order", SYM, 100.0, side="buy", waitfor=5)
        assert isinstance(result, Trade)
        mine = [o for o in raw_client(lx).fetch_closed_orders(SYM) if o["side"] == "buy"]
        assert len(mine) == 1
        assert eventually(lambda: run.reconcile() == [], timeout=5)


@pytest.mark.parametrize("lag_ms", [0, 40], ids=["stream-first", "answer-first"])
def test_end_of_run_state_equals_the_exchange_and_the_replay(lx, tmp_path, lag_ms):
    """After a run the local state equals the exchange's, and the trace replays to it;
    whether an order's user data comes before its answer or after it (as on Binance),
    each fill is applied once."""
    lx.faults.update({"user_lag_ms": lag_ms})
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as run:
            run.call("market_order", SYM, 300.0, side="buy")
            run.call("market_order", SYM, 100.0, side="sell")
            run.call("limit_order", SYM, 200.0, 0.0005, side="buy", waitfor=0.1)
            run.call("limit_order", SYM, 100.0, best_bid_plus(lx), side="buy", waitfor=0.1)
            counterparty(lx).create_order(SYM, "market", "sell", 100.0)
            eventually(lambda: len(run.state()["assets"][SYM]["orders"]) == 1)
            assert eventually(lambda: run.reconcile() == [], timeout=5)
            # the exchange has sent the lagged user data; a fill applied twice would show
            eventually(lambda: all(c.lagging == 0 and c.queue.empty() for c in conns(lx)))
            n = len(raw_client(lx).fetch_my_trades(SYM))
            assert never(lambda: run.state()["trades"] != n, 0.1)
        strategy = run.strategy
    assert run.state()["trades"] == n  # and at the end, whatever arrived late
    report = replay_from_trace(strategy, tmp_path / "t")
    assert report.ok, str(report)
    assert len(report.state.trades) == len(strategy.state.trades) >= 3
    assert len(report.state.assets[SYM].orders) == 1


def test_call_from_inside_a_running_event_loop(lx):
    """The blocking facade works inside a running asyncio loop, as in a Jupyter cell."""
    import asyncio

    async def cell():
        run = live(lx)
        try:
            return run.call("market_order", SYM, 100.0, side="buy"), run.state()
        finally:
            run.stop()
    trade, state = asyncio.run(cell())
    assert isinstance(trade, Trade) and state["trades"] == 1


def test_call_from_a_plain_script(lx, tmp_path, repo_root):
    """A script with no event loop starts a live strategy, trades and stops it."""
    import subprocess
    import sys
    script = tmp_path / "s.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(repo_root / 'tests' / 'kit')!r})
from livekit import Quiet
from planarpy.exchanges import ApiKeys
from planarpy.modes.live import start_live
run = start_live(Quiet, exchange_url={lx.url!r}, keys=ApiKeys({lx.api_key!r}, {lx.secret!r}),
                 settings={{}}, tick_interval=0.2)
t = run.call("market_order", "XRP/ETH", 100.0, side="buy")
print("TRADE", t.amount, run.state()["trades"])
run.stop()
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "TRADE 100.0 1" in out.stdout


def test_stall_guard_finds_a_fill_the_stream_withheld(lx, tmp_path):
    """With user-data events withheld, a resting order filled by someone else still reaches
    the local state: the stall guard of the orders or the my-trades watcher, whichever
    stalls first, fetches it by REST. (Which one it is depends on when each last heard
    its stream: the test does not ask for both to have stalled before the fill is found.)"""
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace, \
            live(lx, trace=trace, stall_after=0.3) as run:
        price = best_bid_plus(lx)
        assert not run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.2)
        lx.faults.update({"withhold_user": True})
        counterparty(lx).create_order(SYM, "market", "sell", 100.0)
        eventually(lambda: run.state()["trades"] == 1, timeout=10)
        assert run.state()["assets"][SYM]["orders"] == []
        assert eventually(lambda: run.reconcile() == [], timeout=10)
    events = trace_tail(tmp_path / "t", n=10_000, kinds=["exchange_error", "exchange_message"])
    (fill,) = [i for i, e in enumerate(events) if e["kind"] == "exchange_message"
               and "trade_created" in e["payload"]["events"]]
    assert events[fill]["payload"]["source"] == "rest"
    assert [e for e in events[:fill] if e["payload"].get("error") == "stalled"
            and e["payload"]["watcher"] in ("orders", "trades")]


def test_orders_watchers_stop_when_idle_and_restart_with_the_next_order(lx):
    """The orders and my-trades watchers start with the first order, stop once nothing is
    open and nothing happened for idle_stop seconds, and start again with the next order."""
    with live(lx, idle_stop=0.3, tick_interval=0.05) as run:
        watchers = run.session.watchers
        assert "orders" not in watchers
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
        assert watchers["orders"].running and watchers["trades"].running
        eventually(lambda: not watchers["orders"].running and not watchers["trades"].running)
        assert watchers["balance"].running
        assert isinstance(run.call("market_order", SYM, 100.0, side="sell"), Trade)
        assert watchers["orders"].running and watchers["trades"].running
