"""The shipped example strategies run live, unchanged from sim, against the local exchange."""

import threading

import pytest

from planarpy import find_strategy

from livekit import eventually, live


def stepping(lx, ms, every=0.08):
    """Replay `ms` of market data every `every` seconds until the returned event is set.

    Slower than the ticks, so the strategy sees every candle close, as it would live.
    """
    stop = threading.Event()

    def run():
        while not stop.wait(every):
            lx.step(ms)
    threading.Thread(target=run, daemon=True).start()
    return stop


@pytest.mark.parametrize("name, candle", [("sma_cross", 300_000), ("margin_trend", 300_000)])
def test_example_runs_live_and_trades(name, candle, local_exchange, repo_root, monkeypatch):
    """The example ticks on live candles, trades, and ends in step with the exchange."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy(name)
    local_exchange.step(3 * 3_600_000)
    stop = stepping(local_exchange, candle)
    try:
        with live(local_exchange, cls, tick_interval=0.02) as run:
            eventually(lambda: run.state()["trades"] >= 2, timeout=60, every=0.1)
            stop.set()
            assert run.session.ticks > 3 and run.session.errors == []
            assert eventually(lambda: run.reconcile() == [], timeout=10)
    finally:
        stop.set()
