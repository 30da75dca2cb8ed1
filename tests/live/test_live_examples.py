"""The shipped example strategies run live, unchanged from sim, against the local exchange."""

import pytest

from planarpy import find_strategy

from livekit import eventually, live


@pytest.mark.parametrize("name", ["sma_cross", "margin_trend", "rsi_bands"])
def test_example_runs_live_and_trades(name, local_exchange, repo_root, monkeypatch):
    """The example ticks on live candles, trades, and ends in step with the exchange."""
    monkeypatch.chdir(repo_root)
    cls = find_strategy(name)
    local_exchange.step(3 * 3_600_000)
    with live(local_exchange, cls) as run:
        session = run.session
        for _ in range(600):  # one 5-minute candle at a time, each ticked once
            if run.state()["trades"] >= 2:
                break
            ticks = session.ticks
            local_exchange.step(300_000)
            eventually(lambda: session.ticks >= ticks + 1, timeout=10, every=0.005)
        assert run.state()["trades"] >= 2 and session.errors == []
        assert eventually(lambda: run.reconcile() == [], timeout=10)
