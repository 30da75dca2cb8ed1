"""The risk layer's shortcuts against the plain computation they replace (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planarpy import RiskRules
from planarpy.core.instances import State
from planarpy.core.risk import DAY_MS, RATE_CAP, order_denial
from planarpy.modes.sim.guard import day_starts

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)


def day_starts_by_candle(times: range, start: int, stop: int) -> list[int]:
    """Each candle's UTC day computed, and the candles where it changes (the old way)."""
    days = (np.array(times[start:stop], dtype=np.int64) - 1) // DAY_MS
    return (np.flatnonzero(np.diff(days)) + 1 + start).tolist()


@SETTINGS
@given(t0=st.integers(1_500_000_000_000, 1_800_000_000_000)
       | st.integers(17_000, 21_000).map(lambda d: d * DAY_MS + 60_000 * (d % 3 - 1)),
       step=st.sampled_from([60_000, 300_000, 3_600_000, 7_200_000, DAY_MS, 3 * DAY_MS,
                             7 * DAY_MS, 61_000, 5 * DAY_MS // 7]),
       n=st.integers(0, 400), cut=st.tuples(st.integers(0, 400), st.integers(0, 400)))
def test_day_starts_are_those_of_each_candle(t0, step, n, cut):
    """Found day by day: the same candles as computing every candle's day, for closes on
    and off midnight, candles shorter and longer than a day, any slice of the run."""
    times = range(t0, t0 + n * step, step)
    start, stop = min(cut[0], n), min(max(cut), n)
    assert day_starts(times, start, stop) == day_starts_by_candle(times, start, stop)


def test_a_close_at_midnight_ends_the_day_before():
    midnight = 19_700 * DAY_MS
    times = range(midnight - 2 * 60_000, midnight + 3 * 60_000, 60_000)  # ..., 00:00, 00:01
    assert day_starts(times, 0, len(times)) == [3]


@SETTINGS
@given(per_second=st.none() | st.integers(1, 6), per_minute=st.none() | st.integers(1, 8),
       gaps=st.lists(st.integers(0, 30_000), max_size=14), wait=st.integers(0, 70_000))
def test_the_throttle_decides_as_counting_the_orders_in_each_window(per_second, per_minute,
                                                                   gaps, wait):
    """order_denial's throttle (skipped while fewer orders were made than the lowest
    limit) denies exactly when a window already holds its limit of orders, and names the
    per-second rule first."""
    rules = RiskRules(max_orders_per_second=per_second, max_orders_per_minute=per_minute)
    state = State("USD", 1.0)
    state.risk.rules = rules
    t = 1_700_000_000_000
    for gap in gaps:
        t += gap
        state.risk.orders.append(t)
    now = t + wait
    expected = None
    for limit, span, name in ((per_second, 1000, "max_orders_per_second"),
                              (per_minute, 60_000, "max_orders_per_minute")):
        if limit is not None and sum(1 for x in state.risk.orders if x > now - span) >= limit:
            expected = name
            break
    denial = order_denial(state, None, None, True, now, None)  # reducing: the throttle only
    assert (denial.rule if denial is not None else None) == expected
    assert rules.rate_floor == min(x for x in (per_second, per_minute, RATE_CAP + 1)
                                   if x is not None)
