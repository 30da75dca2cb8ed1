"""The chart of a paper run's trace: the run's own candles (here from the local exchange)
give its chart; candles that do not cover the run (the bundled samples are from other
years) are refused, where they used to give a chart of other dates without a word."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from planarpy import find_strategy
from planarpy.charts import chart_trace, result_from_trace
from planarpy.core.errors import DataError
from planarpy.data.ohlcv import OHLCV
from planarpy.modes.paper import start_paper
from planarpy.trace import EventTrace, iter_events

from livekit import eventually

pytest.importorskip("bokeh", reason="charts need Bokeh: pip install 'planarpy[charts]'")


def xrp_cross(repo_root):
    base = find_strategy(str(repo_root / "strategies" / "sma_cross.py"))
    return type("XrpCross", (base,), {"quote": "ETH", "timeframe": "1m", "universe": ("XRP/ETH",),
                                      "fast": 2, "slow": 5, "warmup": 5, "__module__": __name__})


def paper_run(lx, cls, path):
    trace = EventTrace.open(path, strategy="XrpCross", exchange="binance")
    run = start_paper(cls, exchange_url=lx.url, trace=trace, settings={}, tick_interval=0.05,
                      stall_after=2.0, market_every=0.2)
    stop = threading.Event()

    def step():  # a market minute about every 0.1 s
        while not stop.is_set():
            lx.step(6_000)
            stop.wait(0.01)
    stepper = threading.Thread(target=step, daemon=True)
    stepper.start()
    try:
        eventually(lambda: len(run.strategy.trades) >= 4, timeout=30)
    finally:
        stop.set()
        stepper.join(5)
        run.stop()
        trace.close()
    return run.strategy


def exchange_candles(lx, start):
    rows = lx.engine.market("XRPETH", False).feed.klines(60_000, lx.clock.now(), start=start,
                                                          limit=1000)
    return OHLCV.from_rows([[int(r[0]), *map(float, r[1:6])] for r in rows])


def test_a_paper_run_charts_with_its_candles_and_not_with_others(local_exchange, repo_root,
                                                                 tmp_path):
    lx = local_exchange
    lx.step(3_600_000)  # an hour of replayed trades: a book and candles
    cls = xrp_cross(repo_root)
    strategy = paper_run(lx, cls, tmp_path / "t")
    t0 = next(iter_events(tmp_path / "t"))["ts"] // 1_000_000

    with pytest.raises(DataError) as e:
        result_from_trace(tmp_path / "t", cls, settings={})
    text = str(e.value)
    assert text.startswith("the XRP/ETH candles at hand (20") and "do not cover the run" in text
    assert "--data XRP/ETH=CSV" in text

    data = {"XRP/ETH": exchange_candles(lx, t0 - 30 * 60_000)}
    r = result_from_trace(tmp_path / "t", cls, data=data, settings={})
    assert r.trades == strategy.trades and len(r.trades) >= 4
    assert r.times[0] <= t0 < r.times[-1] + 60_000
    assert all(r.times[0] <= t.date <= r.times[-1] + 60_000 for t in r.trades)
    assert np.isclose(r.equity[-1], strategy.state.cash + sum(
        ai.free_balance * float(data["XRP/ETH"].close[-1]) for ai in strategy.assets), rtol=1e-3)
    page = chart_trace(tmp_path / "t", cls, data=data, settings={}).html()
    assert page.count('"name":"entries"') == 1 and '"name":"exits"' in page
