"""A candle counts as closed by the exchange's clock, whichever way it differs from the local
one: the local exchange's clock runs in real time ahead of or behind the wall clock (and
its server time with it, as a real exchange's does), and live mode, on the wall clock
corrected by the offset ccxt measures, ticks each candle at the exchange's close."""

from __future__ import annotations

import time

import pytest

from planarpy.localexchange.clock import Clock, wall_ms

from fidelitykit import MINUTE, SYM, Cross, exchange, run_live, wait_for, walk
from livekit import raw_client

LEAD = 5_000  # the exchange's next close comes this long after the start


def skew(ahead: bool) -> int:
    """An offset (ms) over two minutes ahead of the wall clock, or under three behind, that
    puts the exchange LEAD before one of its closes now, while the wall clock is at least
    8 s from a close of its own: ticks at the local clock's closes could not pass."""
    while True:
        w = wall_ms()
        d = (MINUTE - LEAD - w % MINUTE) % MINUTE  # w + d is LEAD before a close
        if 8_000 <= d <= MINUTE - 8_000:
            return d + 2 * MINUTE if ahead else d - 3 * MINUTE
        time.sleep(0.5)  # the wall clock is the state: poll it until it is out of the way


class Timed(Cross):
    """Notes the exchange's own time (read from its clock) at each tick."""

    lx = None

    def reset(self) -> None:
        super().reset()
        self.at: list[tuple[int, int, int]] = []

    def tick(self, ts: int) -> None:
        super().tick(ts)
        o = self.assets[0].ohlcv
        self.at.append((ts, self.lx.clock.now(), int(o.timestamp[-1])))


@pytest.mark.parametrize("ahead", [True, False], ids=["exchange-ahead", "exchange-behind"])
def test_a_clock_skew_does_not_shift_which_candle_counts_as_closed(local_exchange_factory, ahead):
    """Each tick is the candle that closed by the exchange's clock, ticked at that close
    (within a few seconds), with no candle still forming among the candles; the candles
    are the exchange's own, whole."""
    clock = Clock.wall(skew(ahead))
    # the replay is shifted by whole hours to put `origin` at or before the clock's start:
    # an origin read from the clock a millisecond after its start would move it an hour back
    start = clock.start
    candles = walk(180, start // MINUTE * MINUTE - 120 * MINUTE)
    lx = exchange(candles, clock, origin=start, factory=local_exchange_factory)
    cls = type("Timed", (Timed,), {"lx": lx})
    with run_live(lx, cls, clock=None, candles=100) as run:  # the wall clock, offset-corrected
        s = run.strategy
        wait_for(lambda: len(s.at) >= 2, timeout=LEAD / 1000 + 10)
    assert [ts for ts, _, _ in s.at] == [s.at[0][0], s.at[0][0] + MINUTE]
    for ts, now, newest_open in s.at:
        assert ts <= now < ts + MINUTE  # the newest candle closed by the exchange's clock
        assert newest_open + MINUTE == ts  # nothing still forming is among the candles
    ts, now, _ = s.at[1]
    assert now - ts < 3_000  # ticked at the exchange's close, not at the wall clock's
    # the candles as the exchange serves them once closed, by its own API, after the run
    served = {int(r[0]): tuple(r[1:6])
              for r in raw_client(lx).fetch_ohlcv(SYM, "1m", s.seen[0][2], len(s.seen))}
    rows = {int(t): (o, h, l, c, v) for t, o, h, l, c, v in candles.to_rows()}
    assert sorted(served) == [x[2] for x in s.seen]
    for x in s.seen:
        assert x[3:8] == served[x[2]] == rows[x[2]]
