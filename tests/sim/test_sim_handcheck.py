"""One scenario where every fill price, fee and balance is worked out by hand."""

import pytest

from planarpy import call, missing
from planarpy.modes.sim import SimConfig

from simkit import SPOT, run

# open, high, low, close, volume; one-minute candles of TST/USD (tick 0.01, maker 0.1%,
# taker 0.2%)
ROWS = [
    (100.0, 101.0, 99.0, 100.0, 1e6),   # 0
    (100.0, 102.0, 99.0, 101.0, 1e6),   # 1
    (102.0, 103.0, 101.0, 102.0, 1e6),  # 2
    (102.0, 104.0, 100.0, 103.0, 1e6),  # 3
    (103.0, 105.0, 102.0, 104.0, 1e6),  # 4
    (104.5, 106.0, 103.0, 105.0, 1e6),  # 5
]


def test_hand_checked_scenario():
    """Market buy, resting limit sell, slipped market buy: every number by hand."""
    script = {
        # tick 0: buy 1 at the next open, 100; no gap, no slippage; fee 0.2% of 100
        0: lambda s: call(s, "market_order", "TST/USD", 1.0, side="buy"),
        # tick 1: sell 1 at 103.5; next open 102 does not reach it: rests (maker)
        1: lambda s: call(s, "limit_order", "TST/USD", 1.0, 103.5, side="sell"),
        # tick 4: buy 2; next open 104.5 gapped 0.5 from close 104: slippage
        # 0.5 * (1 + 2/1e6) = 0.500001 -> 105.000001 -> 105.01 on the tick grid
        4: lambda s: call(s, "market_order", "TST/USD", 2.0, side="buy"),
    }
    r = run(script, ROWS, config=SimConfig(slippage=1.0, volume_cap=False))
    s = r.strategy
    t1, t2, t3 = s.trades
    assert (t1.price, t1.amount, t1.fee, t1.taker) == (100.0, 1.0, pytest.approx(0.2), True)
    assert s.results[1] is missing
    # candle 2's high 103 < 103.5; candle 3's high 104 reaches it: fill at 103.5, maker fee
    assert (t2.price, t2.fee, t2.taker) == (103.5, pytest.approx(0.1035), False)
    assert t2.date == s.seen[2][1]  # matched at candle 3, whose open is candle 2's close
    assert (t3.price, t3.cost, t3.fee) == (105.01, pytest.approx(210.02), pytest.approx(0.42004))
    cash = 1000 - 100 - 0.2 + 103.5 - 0.1035 - 210.02 - 0.42004
    assert s.cash == pytest.approx(cash, abs=1e-9)
    assert s.asset("TST/USD").balance == 2.0 and s.committed == 0
    assert s.state.fees == pytest.approx(0.2 + 0.1035 + 0.42004)
    # equity at the close of the last candle, 105
    assert r.final_equity == pytest.approx(cash + 2 * 105.0, abs=1e-9)
    # before the first fill, then 1 TST valued at candle 1's close 101
    assert r.equity.tolist()[:2] == [1000.0, pytest.approx(1000 - 100.2 + 101.0)]
