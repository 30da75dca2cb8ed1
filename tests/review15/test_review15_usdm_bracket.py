"""Review of issue 15: where a USD-M bracket's stop-loss lives in live mode."""

from __future__ import annotations

import numpy as np
import pytest

from planarpy.core.orders import OrderType
from planarpy.data.sample import sample_markets
from planarpy.localexchange import Clock, Feed

from livekit import QuietPerp, eventually, live
from tapekit import STEP, T0

PERP = "XRP/USDT:USDT"


@pytest.fixture
def perp(local_exchange_factory):
    m = sample_markets("binanceusdm")[PERP]
    prices = [1.0] * 360 + [1.0] * 40
    ts = T0 + STEP * (np.arange(len(prices), dtype=np.int64) - 360 + 1)
    feed = Feed(ts, np.array(prices), np.full(len(prices), 5000.0), np.zeros(len(prices), bool))
    return local_exchange_factory(markets=[m], clock=Clock(start=T0), origin=T0,
                                  data={PERP: feed})


def test_a_usdm_bracket_stop_loss_is_held_by_the_exchange(perp):
    """Expected: once a USD-M bracket entry has filled, the exchange itself holds its
    stop-loss (a reduce-only STOP_MARKET algo order), as it holds a plain stop_order's.

    Why: issue 15 asks for native conditional orders where the venue supports them, and
    USD-M does (algo orders hold no margin, so a reduce-only take-profit limit and a
    reduce-only stop can both rest without holding anything twice). planarpy makes the
    stop leg of every OCO pair, so of every bracket, `paired` and therefore emulated
    (live/executor.py `_native`): the leveraged position's only stop lives in the
    process. If the run dies, loses its network or is stopped with on_stop "keep", the
    exchange holds just the take-profit and nothing limits the loss."""
    lx = perp
    with live(lx, QuietPerp) as run:
        run.call("bracket_order", PERP, 100.0, stop_loss=0.97, take_profit=1.05)
        eventually(lambda: len(run.strategy.state.assets[PERP].orders) == 2)
        legs = {o.type: o for o in run.strategy.state.assets[PERP].orders.values()}
        stop = legs[OrderType.STOP_MARKET]
        open_algos = [a for a in list(lx.engine.algos.values()) if a.is_open]
        assert [(a.client_id, a.type, a.reduce_only) for a in open_algos] == [
            (stop.id, "STOP_MARKET", True)], f"the stop's route is {stop.route!r}"
