"""Buy-and-hold return, exposure time and the share of partly filled orders, in `Stats`
and in the summary, checked by hand on small candles."""

import math

import pytest

from planarpy import call
from planarpy.modes.sim import SimConfig

from simkit import MINUTE, run

SYM = "TST/USD"


def ramp(n=10):
    return [(100.0 + k, 100.5 + k, 99.5 + k, 100.0 + k, 1e6) for k in range(n)]


def test_buy_and_hold_is_first_close_to_last():
    """Holding from the close of the first candle (100) to the last (109): +9%."""
    r = run({}, ramp())
    st = r.stats()
    assert st.buy_and_hold == pytest.approx(0.09)
    assert r.buy_and_hold()[0] == r.initial_cash and r.buy_and_hold()[-1] == pytest.approx(1090)
    assert r.summary()["buy_and_hold"] == pytest.approx(0.09)
    assert "buy and hold    +9.00%" in r.format_summary()


def test_exposure_time_counts_the_candles_held():
    """Bought at the open of candle 2, sold at the open of 5: held at closes 2, 3, 4."""
    r = run({1: lambda s: call(s, "market_order", SYM, 1.0, side="buy"),
             4: lambda s: call(s, "market_order", SYM, 1.0, side="sell")}, ramp())
    st = r.stats()
    assert st.exposure == pytest.approx(3 / 10) and st.exposure_time == 3 * MINUTE
    assert "(3m)" in r.format_summary()


def test_partial_fills_share_of_orders():
    """One limit order fills whole, one fills a part before it is cancelled, one never fills,
    one stays open partly filled: 2 of 4 orders are partly filled."""
    rows = [(100.0, 100.0, 100.0, 100.0, 1e6)] * 3 + [(100.0, 100.0, 98.0, 99.0, 100.0)] * 4 \
        + [(100.0, 100.0, 100.0, 100.0, 1e6)] * 3

    def place(s):
        call(s, "limit_order", SYM, 0.5, 99.0, side="buy")        # volume 200x its amount: whole
        call(s, "limit_order", SYM, 50.0, 99.0, side="buy")       # capped: part fills, then cancel
        call(s, "limit_order", SYM, 1.0, 50.0, side="buy")        # never reached

    def cancel_big(s):
        ai = s.asset(SYM)
        big = [o.id for o in ai.orders.values() if o.amount == 50.0]
        call(s, "cancel_orders", SYM, ids=big)

    def place_last(s):
        call(s, "limit_order", SYM, 40.0, 99.0, side="buy")

    r = run({1: place, 3: cancel_big, 4: place_last}, rows,
            config=SimConfig(slippage=0.0, volume_cap=True), cash=100_000.0)
    st = r.stats()
    assert st.orders == 4
    partial = [o for o in r.strategy.state.open_orders() if 0 < o.filled < o.amount]
    assert len(partial) == 1
    assert st.partial_fills == pytest.approx(2 / 4)
    assert r.summary()["partial_fills"] == pytest.approx(0.5)


def test_no_orders_means_undefined_share():
    r = run({}, ramp())
    assert math.isnan(r.stats().partial_fills) and r.summary()["partial_fills"] is None
    assert "partial fills   - of 0 orders" in r.format_summary()
