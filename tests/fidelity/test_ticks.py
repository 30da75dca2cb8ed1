"""Paper and live tick once for every closed candle, in order, with `s.i` on it, as the sim
does: empty minutes included, catch-up after a stall, a bounded backlog, overruns told."""

from __future__ import annotations

from fidelitykit import EMPTY, MINUTE, T0, Cross, Memory, sim_ticks, step_minutes, wait_for


def closes(s):
    return [x[0] for x in s.seen]


def test_an_empty_minute_is_ticked_as_the_sims_flat_candle(lx, start):
    """Minutes with no trade (no kline) are ticked like any other, each with the flat
    candle the sim puts there (previous close, no volume) and the sim's indicator values."""
    run = start(lx)
    s = run.strategy
    wait_for(lambda: run.session.ticks)
    step_minutes(lx, run, 13)
    run.stop()
    assert closes(s) == list(range(T0, T0 + 14 * MINUTE, MINUTE))
    indexes = [x[1] for x in s.seen]
    assert indexes == list(range(indexes[0], indexes[0] + 14))
    flat = {x[2]: x for x in s.seen if x[7] == 0.0}
    assert sorted(flat) == EMPTY
    for t, x in flat.items():
        before = next(y for y in s.seen if y[2] == t - MINUTE)
        assert x[3] == x[4] == x[5] == x[6] == before[6]
    sim = sim_ticks()
    assert [x[:1] + x[2:] for x in s.seen] == [sim[t] for t in closes(s)]


def test_three_candles_closed_while_the_loop_slept_are_ticked_in_order(lx, start):
    """The clock passes three closes at once: three ticks follow, oldest first, each with
    `s.i` on its own candle; none is merged into another."""
    run = start(lx)
    s = run.strategy
    wait_for(lambda: run.session.ticks)
    step_minutes(lx, run, 2)
    lx.step(3 * MINUTE)
    wait_for(lambda: run.session.ticks >= 6)
    step_minutes(lx, run, 1)
    assert closes(s) == list(range(T0, T0 + 7 * MINUTE, MINUTE))
    last = s.seen[2:6]
    assert [x[1] for x in last] == [last[0][1] + k for k in range(4)]
    assert all(x[0] == x[2] + MINUTE for x in s.seen)  # s.i is on the candle closed at ts


def test_a_backlog_beyond_the_limit_is_not_ticked_and_is_told(lx, start):
    """Five candles close at once with a backlog of two: the two newest are ticked, the
    three older ones are not (too old to act on), and a ticks_skipped event says which."""
    trace = Memory()
    run = start(lx, backlog=2, trace=trace)
    s = run.strategy
    wait_for(lambda: run.session.ticks)
    lx.step(5 * MINUTE)
    wait_for(lambda: run.session.ticks >= 3)
    step_minutes(lx, run, 1)
    assert closes(s) == [T0, T0 + 4 * MINUTE, T0 + 5 * MINUTE, T0 + 6 * MINUTE]
    assert trace.kinds("ticks_skipped") == [{"count": 3, "first": T0 + MINUTE,
                                             "last": T0 + 3 * MINUTE, "backlog": 2}]


class Slow(Cross):
    """Its tick of the candle closing at T0 + 2 minutes lasts past two more closes."""

    lx = None

    def tick(self, ts: int) -> None:
        super().tick(ts)
        if ts == T0 + 2 * MINUTE:
            self.lx.step(2 * MINUTE)


def test_a_tick_that_overruns_the_next_close_is_told_and_not_merged(lx, start):
    """A tick still running when the next candles close: a tick_overrun event says so, and
    each candle that closed meanwhile gets its own tick after it, in order."""
    trace = Memory()
    cls = type("Slow", (Slow,), {"lx": lx})
    run = start(lx, cls, trace=trace)
    s = run.strategy
    wait_for(lambda: run.session.ticks)
    step_minutes(lx, run, 2)
    wait_for(lambda: run.session.ticks >= 5)
    assert closes(s) == [T0 + k * MINUTE for k in range(5)]
    (overrun,) = trace.kinds("tick_overrun")
    assert overrun["candle"] == T0 + 2 * MINUTE and overrun["closes_passed"] == 2


class Intra(Cross):
    def reset(self) -> None:
        super().reset()
        self.intervals: list[tuple[int, int]] = []

    def on_interval(self, ts: int) -> None:
        self.intervals.append((self.i, ts))


def test_tick_interval_calls_on_interval_and_tick_sees_each_candle_once(lx, start):
    """With tick_interval set, on_interval runs between closes (s.i on the last candle
    ticked); tick still runs once per closed candle, never twice for one candle."""
    run = start(lx, Intra, tick_interval=0.02)
    s = run.strategy
    wait_for(lambda: len(s.intervals) >= 5)
    assert len(s.seen) == 1 and {i for i, _ in s.intervals} == {s.seen[0][1]}
    step_minutes(lx, run, 1)
    wait_for(lambda: s.intervals[-1][0] == s.seen[1][1])
    assert closes(s) == [T0, T0 + MINUTE]


def test_on_a_60x_clock_each_candle_is_ticked_once(local_exchange_factory, start):
    """Market time running sixty times the wall clock (a minute a second): the loop wakes
    at each close by that clock and ticks every candle once, in order, as the sim sees it."""
    from planarpy.localexchange.clock import Clock

    from fidelitykit import CANDLES, exchange
    lx = exchange(CANDLES, Clock(start=T0, speed=60.0), T0, factory=local_exchange_factory)
    run = start(lx)
    s = run.strategy
    wait_for(lambda: len(s.seen) >= 6, timeout=30)
    run.stop()
    first = closes(s)[0]
    assert closes(s) == list(range(first, first + len(s.seen) * MINUTE, MINUTE))
    sim = sim_ticks()
    assert [x[:1] + x[2:] for x in s.seen] == [sim[t] for t in closes(s)]
