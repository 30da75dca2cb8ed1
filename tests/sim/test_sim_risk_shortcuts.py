"""The risk layer's shortcuts against the plain computation they replace (hypothesis)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planarpy import RiskRules, call
from planarpy.core.instances import State
from planarpy.core.risk import DAY_MS, RATE_CAP, order_denial
from planarpy.modes.sim import guard as guard_module
from planarpy.modes.sim.guard import day_starts

from simkit import MINUTE, PERP, SPOT, T0, decides_as_measuring_every_close, flat, run, walk

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
    assert day_starts(list(times), 0, len(times)) == [3]  # close times with gaps skipped
    skipped = [midnight - 60_000, midnight + 5 * 60_000, midnight + 6 * 60_000, midnight + 2 * DAY_MS]
    assert day_starts(skipped, 0, 4) == [1, 3] and day_starts(skipped, 1, 4) == [3]


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


# ---- the guarded loop's stretches -------------------------------------------------------
order_op = st.tuples(st.integers(0, 199), st.sampled_from(["buy", "sell", "limit buy",
                                                            "limit sell"]),
                     st.floats(0.5, 3.0).map(lambda x: round(x, 1)))


@pytest.mark.parametrize("block", [3, 16])
@pytest.mark.parametrize("market", [SPOT, PERP], ids=["spot", "perp"])
@settings(max_examples=40, deadline=None, derandomize=True)
@given(steps=st.lists(st.floats(-0.02, 0.02), min_size=120, max_size=200),
       dd=st.floats(0.003, 0.05), day=st.none() | st.floats(0.002, 0.03),
       ops=st.lists(order_op, max_size=14))
def test_the_stretches_decide_as_measuring_every_close(block, market, steps, dd, day, ops):
    """With blocks of a few candles, runs that cross midnight (the candles start at 22:13
    UTC) and fills that narrow the band inside a stretch, at the tick (market orders) or
    as a candle is matched (limit orders resting from an earlier tick), the guarded loop
    trips the same breakers at the same closes with the same trades as measuring every
    close."""
    rows = walk(steps)
    sym = market.symbol
    script: dict = {}
    for i, kind, amount in ops:
        if i < len(rows) - 1:
            side = kind.split()[-1]
            if kind.startswith("limit"):
                script[i] = (lambda s, side=side, amount=amount: call(
                    s, "limit_order", sym, amount,
                    round(s.asset(sym).ohlcv.close.item(s.i) * (0.99 if side == "buy" else 1.01), 2),
                    side=side))
            else:
                script[i] = (lambda s, side=side, amount=amount:
                             call(s, "market_order", sym, amount, side=side))
    rules = RiskRules(max_drawdown=dd, max_daily_loss=day, on_drawdown="reduce")

    def go():
        r = run(script, rows, market=market, risk=rules)
        return r.strategy.state.risk.changes, list(r.trades)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(guard_module, "BLOCK", block)
        decides_as_measuring_every_close(go)


def test_a_fill_as_a_candle_is_matched_is_measured_at_that_close():
    """A limit buy resting since candle 5 fills as candle 100 is matched, inside a stretch
    of flat closes; that candle closes far lower: the drawdown halts trading at its close,
    not the next one."""
    rows = [(100.0, 100.5, 99.5, 100.0, 1e6)] * 100 + [(100.0, 100.0, 89.0, 90.0, 1e6)] \
        + [(90.0, 90.0, 90.0, 90.0, 1e6)] * 30
    script = {5: lambda s: call(s, "limit_order", SPOT.symbol, 5.0, 99.0, side="buy")}
    r = run(script, rows, risk=RiskRules(max_drawdown=0.02))
    (change,) = r.strategy.state.risk.changes
    assert change["rule"] == "max_drawdown" and change["state"] == "halted"
    assert change["ts"] == T0 + 101 * MINUTE  # the close of candle 100
    assert [t.price for t in r.trades] == [99.0]


def test_an_equity_exactly_on_the_daily_floor_trips_as_measuring_every_close():
    """(Review 14.) The daily floor start - limit rounds apart from the breaker's test
    start - equity > limit, and the band's room in price is less than an ulp of the equity
    when the position is dust against the cash: a close giving an equity exactly on that
    floor, which has lost more than the limit, must be measured, not passed over (the
    floor is raised and the band's ends moved in by a few ulps of the equity)."""
    buy = {1: lambda s: call(s, "market_order", SPOT.symbol, 0.01, side="buy")}
    start = 1000.0  # the first day starts with the run's cash
    cash = run(buy, flat(5)).strategy.state.cash  # after buying 0.01 at 100 (fee 0.002)
    assert cash == 998.998
    # a limit whose floor start - limit lies 1e-5 above the cash and rounds so that an
    # equity exactly on it has lost more than the limit
    limit = start - (cash + 1e-5)
    while not start - (start - limit) > limit:
        limit = math.nextafter(limit, 1.0)
    floor = start - limit
    price = (floor - cash) / 0.01 * (1 + 1e-9)  # the lowest close the band held before
    assert cash + 0.01 * price == floor and start - floor > limit
    rows = flat(3) + [(100.0, 100.0, price, price, 1e6)] + [(price,) * 4 + (1e6,)] * 5

    def go():
        r = run(buy, rows, risk=RiskRules(max_daily_loss_quote=limit))
        return r.strategy.state.risk.changes, [(t.price, t.amount) for t in r.trades]
    decides_as_measuring_every_close(go)
    (change,) = go()[0]
    assert change["rule"] == "max_daily_loss_quote"


def measuring(go):
    """`go()`'s result, and the closes the guard measured during it."""
    measured = []
    check = guard_module.EquityGuard.check

    def counted(self, i):
        measured.append(i)
        check(self, i)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(guard_module.EquityGuard, "check", counted)
        return go(), measured


@pytest.mark.parametrize("market", [SPOT, PERP], ids=["spot", "perp"])
def test_a_run_flat_at_its_peak_is_not_measured_at_every_close(market):
    """Nothing held, the equity is the cash at every close and no breaker can trip: the
    guard measures the first close, each day's first close and after the round trip, not
    every close of three days (the band's room for rounding once had it measure every
    close of a run flat at its peak: a strategy that waits cost four times its run).
    The decisions are those of measuring every close."""
    sym = market.symbol
    n = 3 * 1440
    script = {2000: lambda s: call(s, "market_order", sym, 1.0, side="buy"),
              2001: lambda s: call(s, "market_order", sym, 1.0, side="sell")}
    rows = flat(n)
    rules = RiskRules(max_drawdown=0.1, max_daily_loss=0.05)
    def go():
        r = run(script, rows, market=market, risk=rules)
        return r.strategy.state.risk.changes, list(r.trades)
    (changes, trades), measured = measuring(go)
    assert changes == [] and [t.side.value for t in trades] == ["buy", "sell"]
    assert 3 <= len(measured) <= 10, measured
    decides_as_measuring_every_close(go)


HOUR = 3_600_000
_act = st.sampled_from(["buy", "buy", "sell", "close", "reset", "reset"] + ["none"] * 14)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(market=st.sampled_from(["spot", "spot-fee-in-base", "perp"]),
       steps=st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.01, -0.01, 0.03, -0.05]),
                      min_size=40, max_size=120),
       acts=st.lists(_act, min_size=120, max_size=120),
       size=st.sampled_from([0.5, 1.0, 3.0]),
       dd=st.none() | st.sampled_from([0.002, 0.01, 0.03]),
       daily=st.none() | st.sampled_from([0.005, 0.02]),
       reduce=st.booleans())
def test_flat_stretches_decide_as_measuring_every_close(market, steps, acts, size, dd, daily,
                                                         reduce):
    """Round trips (a fee in the base leaves dust on spot), resets, runs flat at and below
    their peak across UTC days (hourly candles): the band (with nothing held, flat_band)
    decides as measuring every close."""
    import attrs
    from planarpy import backtest
    from planarpy.modes.sim import SimConfig
    from simkit import candles, scripted
    if dd is None and daily is None:
        dd = 0.05
    m = {"spot": SPOT, "perp": PERP, "spot-fee-in-base": attrs.evolve(SPOT, fee_side="get")}[market]
    sym = m.symbol

    def act(kind):
        def go(s):
            if kind == "buy":
                return call(s, "market_order", sym, size, side="buy")
            if kind == "sell":
                return call(s, "close_position", sym)
            if kind == "close":
                return call(s, "close_position")
            if kind == "reset":
                return call(s, "reset_trading_state", "test")
        return go
    script = {i: act(k) for i, k in enumerate(acts) if k != "none"}
    rules = RiskRules(max_drawdown=dd, max_daily_loss=daily,
                      on_drawdown="reduce" if reduce else "halt")
    rows = walk(steps)

    def go():
        s = scripted(script, m, 1000.0, "isolated" if m.is_derivative else "none")({sym: m})
        r = backtest(s, data={sym: candles(rows, t0=T0 - T0 % (24 * HOUR) + 20 * HOUR, step=HOUR)},
                     config=SimConfig(slippage=0.0, volume_cap=False), settings={}, risk=rules)
        return r.strategy.state.risk.changes, [(t.side, t.amount, t.price) for t in r.trades]
    decides_as_measuring_every_close(go)


@pytest.mark.parametrize("close", [False, True], ids=["keeps", "closes"])
def test_a_halted_run_is_not_measured_at_every_close(close):
    """Halted by its drawdown and below the floor for good (holding, or flat after the
    close-out): a breach then moves nothing, so the band does not end at the floor and the
    closes after the halt are not measured one by one (each was: a run halted early cost
    seven times its run). The decisions are those of measuring every close."""
    rows = flat(20) + flat(3 * 1440, 90.0)
    script = {5: lambda s: call(s, "market_order", SPOT.symbol, 5.0, side="buy")}
    rules = RiskRules(max_drawdown=0.003, halt_closes_positions=close)
    def go():
        r = run(script, rows, risk=rules)
        return r.strategy.state.risk.changes, list(r.trades)
    (changes, trades), measured = measuring(go)
    # a halt that closes records its close done, as in paper and live
    assert [(c["rule"], c["reason"].endswith("(its close is done)")) for c in changes] == \
        [("max_drawdown", False)] + [("max_drawdown", True)] * close and len(trades) == 1 + close
    assert len(measured) <= 10, measured
    decides_as_measuring_every_close(go)
