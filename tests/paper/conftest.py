"""Paper-mode test setup: a local exchange an hour into its replay, a clock stepper, and
paper runs against it (public endpoints only, no keys)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

import pytest

from planarpy import Strategy
from planarpy.modes.paper import start_paper

from livekit import eventually  # one poller for all tests

SYM = "XRP/ETH"


class Idle(Strategy):
    """A spot strategy whose tick does nothing: tests drive it with run.call()."""

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SYM,)
    initial_cash = 1.0

    def reset(self) -> None:
        self.errors: list[str] = []
        self.seen_trades: list[Any] = []

    def on_trade(self, ai: Any, trade: Any) -> None:
        self.seen_trades.append(trade)

    def on_order_error(self, ai: Any, reason: str, request: Any) -> None:
        self.errors.append(reason)


@pytest.fixture
def lx(local_exchange: Any) -> Any:
    local_exchange.step(3_600_000)  # an hour of replayed trades: a book, candles, a day volume
    return local_exchange


@pytest.fixture
def paper(lx: Any) -> Callable[..., Any]:
    """Start a strategy (default Idle) in paper mode against `lx`; stopped after the test."""
    runs: list[Any] = []

    def start(cls: type[Strategy] = Idle, **options: Any) -> Any:
        options.setdefault("clock", lx.clock)
        options.setdefault("stall_after", 2.0)
        options.setdefault("trace", None)  # a test that wants one passes it
        options.setdefault("settings", {})
        run = start_paper(cls, exchange_url=lx.url, **options)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.running:
            run.stop()


@pytest.fixture
def stepping(lx: Any) -> Callable[..., Any]:
    """`with stepping(ms, every):` advances the exchange's clock by `ms` every `every` s."""
    @contextlib.contextmanager
    def run(ms: int = 2_000, every: float = 0.01) -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                lx.step(ms)
                stop.wait(every)
        thread = threading.Thread(target=loop, name="lx-stepper", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
    return run




@pytest.fixture
def wait_until() -> Callable[..., Any]:
    return eventually


class MarketLog:
    """Everything the paper engine saw and did, in the order it happened on its loop."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []

    def observe(self, kind: str, symbol: str, data: Any) -> None:
        if kind == "book":
            self.entries.append(("book", ([tuple(map(float, l[:2])) for l in data["bids"]],
                                          [tuple(map(float, l[:2])) for l in data["asks"]])))
        elif kind == "trades":
            self.entries.append(("trades", list(data)))

    def fill(self, trade: Any) -> None:
        self.entries.append(("fill", trade))


@pytest.fixture
def market_log() -> MarketLog:
    return MarketLog()
