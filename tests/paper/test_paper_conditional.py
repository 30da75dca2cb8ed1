"""Conditional orders in paper mode: held by the engine, fired by the streamed public trades
of a local exchange replaying a scripted tape, filled from its book."""

from __future__ import annotations

import pytest

from planarpy import Side, Strategy, missing
from planarpy.core.orders import OrderType

from livekit import eventually
from tapekit import STEP, SYM, Events, scripted_exchange


@pytest.fixture
def scripted(local_exchange_factory):
    return lambda path: scripted_exchange(local_exchange_factory, path)


class Idle(Strategy):
    """A spot strategy whose tick does nothing: the tests act with run.call()."""

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SYM,)
    initial_cash = 5.0

    def reset(self):
        self.errors = []

    def on_order_error(self, ai, reason, request):
        self.errors.append(reason)


def start(paper_run, lx, trace=None):
    from planarpy.modes.paper import start_paper
    run = start_paper(Idle, exchange_url=lx.url, clock=lx.clock, settings={}, stall_after=2.0,
                      cash=5.0, trace=trace)
    paper_run.append(run)
    return run


@pytest.fixture
def paper_run():
    runs = []
    yield runs
    for run in runs:
        if run.running:
            run.stop()


def step_until(lx, run, done, steps=40):
    for _ in range(steps):
        if done():
            return
        lx.step(STEP)
        try:
            eventually(lambda: run.session.markets[SYM].last_trade_ts >= lx.clock.now() - STEP,
                       timeout=5)
        except AssertionError:
            pass
    eventually(done, timeout=10)


def test_paper_stop_fires_from_public_trades_and_sells_into_the_book(scripted, paper_run):
    lx = scripted([0.00151, 0.00152, 0.00149, 0.00146, 0.00147] + [0.00147] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    bought = run.call("market_order", SYM, 1000.0, side="buy")
    held = run.strategy.assets[0].floor_amount(run.strategy.assets[0].balance)
    assert bought and held > 0
    assert run.call("stop_order", SYM, held, 0.00148) is missing
    (stop,) = [o for o in run.strategy.assets[0].orders.values()]
    assert stop.type is OrderType.STOP_MARKET and stop.route == ""
    step_until(lx, run, lambda: len(run.strategy.trades) >= 2)
    sell = run.strategy.trades[-1]
    assert sell.order_id == stop.id and sell.side is Side.SELL and sell.taker
    assert sell.amount == held
    # the trade at 0.00149 did not reach the stop; the one at 0.00146 fired it, and the
    # sell took the streamed book's bids (whatever they were at that moment)
    (fired,) = trace.of("order_triggered")
    assert fired["id"] == stop.id and fired["price"] == 0.00146
    fill = trace.of("trade_created")[-1]
    assert fill["basis"]["source"] == "book" and fill["basis"]["trigger_trade"][2] == 0.00146
    assert run.state()["assets"][SYM]["orders"] == [] and run.strategy.errors == []


def test_paper_oco_target_fills_from_trades_and_cancels_the_stop(scripted, paper_run):
    lx = scripted([0.00151, 0.00153, 0.00156, 0.00157, 0.00140] + [0.0014] * 30)
    run = start(paper_run, lx)
    run.call("market_order", SYM, 500.0, side="buy")  # two trades of 400 cover the target
    held = run.strategy.assets[0].floor_amount(run.strategy.assets[0].balance)
    assert run.call("oco_order", SYM, held, price=0.00155, stop=0.00145) is missing, run.strategy.errors
    step_until(lx, run, lambda: not run.strategy.assets[0].orders)
    sells = [t for t in run.strategy.trades if t.side is Side.SELL]
    assert sells and all(t.price == 0.00155 and not t.taker for t in sells)
    assert sum(t.amount for t in sells) == pytest.approx(held)
    assert run.strategy.assets[0].committed == 0  # the crash to 0.0014 found no stop


def test_paper_trailing_stop_follows_trades_then_fires(scripted, paper_run):
    lx = scripted([0.00151, 0.00155, 0.00160, 0.00158, 0.00155, 0.00150] + [0.0015] * 30)
    trace = Events()
    run = start(paper_run, lx, trace)
    run.call("market_order", SYM, 1000.0, side="buy")
    held = run.strategy.assets[0].floor_amount(run.strategy.assets[0].balance)
    assert run.call("trailing_stop_order", SYM, held, percent=0.02) is missing
    step_until(lx, run, lambda: len(run.strategy.trades) >= 2)
    (sell,) = [t for t in run.strategy.trades if t.side is Side.SELL]
    # armed at the close 0.0015 (stop 0.00147), it follows each trade: 0.00151, 0.00155,
    # then the best, 0.0016 (stop 0.001568); 0.00158 does not reach it, 0.00155 does
    moved = [p["trigger"] for p in trace.of("trigger_moved")]
    assert moved == pytest.approx([0.0014798, 0.001519, 0.001568], abs=1e-12)
    (fired,) = trace.of("order_triggered")
    assert fired["price"] == 0.00155 and fired["trigger"] == pytest.approx(0.001568, abs=1e-12)
    (fill,) = [p for p in trace.of("trade_created") if p["side"] == "sell"]
    assert fill["basis"]["trigger_trade"][2] == 0.00155 and fill["basis"]["source"] == "book"
    assert sell.taker and run.strategy.errors == []
