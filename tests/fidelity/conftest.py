"""Fidelity tests: one strategy in sim, paper and live over the same local-exchange replay."""

from __future__ import annotations

from typing import Any

import pytest

from planarpy.localexchange.clock import Clock

from fidelitykit import CANDLES, T0, Cross, exchange, run_live, run_paper


@pytest.fixture
def lx(local_exchange_factory: Any) -> Any:
    """The replay of CANDLES on a stepped clock at T0."""
    return exchange(CANDLES, Clock(start=T0), T0, factory=local_exchange_factory)


@pytest.fixture(params=["live", "paper"])
def start(request: Any) -> Any:
    """Start a strategy in live or in paper mode on `lx` (its own clock, 100 candles of
    history); the run is stopped after the test."""
    runs = []

    def go(lx: Any, cls: type = Cross, **options: Any) -> Any:
        options.setdefault("candles", 100)
        if request.param == "live":
            run = run_live(lx, cls, **options)
        else:
            run = run_paper(lx, cls, cash=1.0, **options)
        runs.append(run)
        return run
    go.mode = request.param
    yield go
    for run in runs:
        if run.running:
            run.stop()
