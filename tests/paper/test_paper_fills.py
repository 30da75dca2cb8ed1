"""The pure fill rules of paper mode: book sweeps, trade sharing, the day's volume."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planarpy import Side
from planarpy.core.precision import is_on_step
from planarpy.core.triggers import marketable
from planarpy.modes.paper.fills import (Resting, Sweep, deplete, share_trade, sweep,
                                        volume_left, would_take)
from planarpy.modes.paper.market import AssetMarket

ASKS = [(10.0, 1.0), (11.0, 2.0), (12.0, 3.0)]
BIDS = [(9.0, 1.0), (8.0, 2.0), (7.0, 3.0)]


def test_sweep_takes_levels_best_first_at_their_vwap():
    """A buy of 2 takes all of 10 and 1 of 11: VWAP 10.5."""
    s = sweep(ASKS, 2.0, Side.BUY)
    assert s.taken == ((10.0, 1.0), (11.0, 1.0)) and s.amount == 2.0 and s.vwap == 10.5


def test_sweep_stops_at_the_limit():
    """A sell limited at 8 takes the bids at 9 and 8 only."""
    s = sweep(BIDS, 10.0, Side.SELL, limit=8.0)
    assert s.taken == ((9.0, 1.0), (8.0, 2.0)) and s.amount == 3.0


def test_sweep_rounds_down_to_the_amount_step():
    """With a step of 1, 2.7 available becomes 2."""
    s = sweep([(10.0, 0.9), (11.0, 1.8)], 5.0, Side.BUY, step=1.0)
    assert s.amount == 2.0 and s.taken == ((10.0, 0.9), (11.0, 1.1))


def test_empty_sweeps_are_falsy():
    assert not sweep(ASKS, 0.0, Side.BUY) and not sweep([], 1.0, Side.BUY)
    assert not sweep(ASKS, 1.0, Side.BUY, limit=9.0) and Sweep().vwap == 0.0


def test_deplete_removes_what_was_taken():
    assert deplete(ASKS, ((10.0, 1.0), (11.0, 0.5))) == [(11.0, 1.5), (12.0, 3.0)]


def test_crossing_and_post_only():
    """A buy trades at or below its limit, a sell at or above; post-only sees the best level."""
    assert marketable(Side.BUY, 10.0, 10.0) and marketable(Side.BUY, 10.0, 9.0)
    assert not marketable(Side.BUY, 10.0, 10.5) and marketable(Side.SELL, 10.0, 10.5)
    assert would_take(Side.BUY, 10.0, ASKS) and not would_take(Side.BUY, 9.99, ASKS)
    assert not would_take(Side.SELL, 1.0, [])


def test_share_trade_best_limit_first_never_more_than_traded():
    """A trade at 10 of 5 fills the 11 bid before the older 10 bid; the 9 bid gets nothing."""
    orders = [Resting("old", Side.BUY, 10.0, 4.0), Resting("best", Side.BUY, 11.0, 3.0),
              Resting("low", Side.BUY, 9.0, 4.0), Resting("sell", Side.SELL, 12.0, 4.0)]
    assert share_trade(orders, 10.0, 5.0) == [("best", 3.0), ("old", 2.0)]
    assert share_trade(orders, 12.0, 1.5, step=1.0) == [("sell", 1.0)]


def test_volume_left():
    assert volume_left(100.0, 30.0) == 70.0 and volume_left(10.0, 30.0) == 0.0


def test_day_volume_from_trades_without_a_ticker():
    """With no ticker, the day's volume is the sum of the trades streamed in the last 24 h."""
    m = AssetMarket("X/Y", 60_000)
    fresh = m.on_trades([{"id": 1, "timestamp": 0, "price": 1.0, "amount": 2.0},
                         {"id": 2, "timestamp": 1000, "price": 1.0, "amount": 3.0}])
    assert len(fresh) == 2 and m.day_volume() == 5.0
    assert m.on_trades([{"id": 2, "timestamp": 1000, "price": 1.0, "amount": 3.0}]) == []
    m.on_trades([{"id": 3, "timestamp": 86_400_500, "price": 1.0, "amount": 1.0}])
    assert m.day_volume() == 4.0
    m.on_ticker({"baseVolume": 50.0, "timestamp": 86_400_600})
    assert m.day_volume() == 50.0


sizes = st.one_of(st.just(0.0), st.floats(1e-9, 1e4))
levels = st.lists(st.tuples(st.floats(0.01, 1e6), sizes), max_size=20)


@settings(max_examples=300, deadline=None)
@given(levels, st.one_of(st.just(0.0), st.floats(1e-9, 1e5)),
       st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from([0.0, 0.01, 1.0]))
def test_sweep_never_takes_more_than_the_book_and_vwap_is_within_the_levels(raw, amount, side,
                                                                            step):
    """A sweep never fills more than asked or than the book holds, takes no level beyond
    its size, and its VWAP lies between the best and the worst level it took."""
    book = sorted(raw, reverse=side is Side.SELL)
    s = sweep(book, amount, side, step=step)
    held = math.fsum(q for _, q in book)
    tol = 1e-9 * max(1.0, held)
    assert s.amount <= amount + tol and s.amount <= held + tol
    size = {}
    for p, q in book:
        size[p] = size.get(p, 0.0) + q
    for p, q in s.taken:
        assert q <= size[p] + tol
    if s:
        prices = [p for p, _ in s.taken]
        lo, hi = min(prices), max(prices)
        assert lo * (1 - 1e-12) <= s.vwap <= hi * (1 + 1e-12)
        best = book[0][0] if book else None
        assert prices[0] == next(p for p, q in book if q > 0) or best is None
    if step:  # on the step within the float noise the market rules allow (1e-9 of it)
        assert is_on_step(s.amount, step)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 20.0), st.floats(0.0, 50.0)), max_size=8),
       st.floats(1.0, 20.0), st.floats(0.0, 100.0))
def test_share_trade_never_exceeds_the_trade_or_an_order(orders, price, amount):
    """The amounts a trade fills sum to at most its amount, each at most the order's rest,
    and only crossing orders get any."""
    resting = [Resting(i, Side.BUY, p, r) for i, (p, r) in enumerate(orders)]
    out = share_trade(resting, price, amount)
    assert math.fsum(a for _, a in out) <= amount * (1 + 1e-12)
    for key, a in out:
        assert 0 < a <= resting[key].remaining and resting[key].limit >= price


@pytest.mark.parametrize("side,limit,expect", [(Side.BUY, 11.0, 3.0), (Side.SELL, 8.0, 3.0)])
def test_limit_sweep_amounts(side, limit, expect):
    book = ASKS if side is Side.BUY else BIDS
    assert sweep(book, 100.0, side, limit=limit).amount == expect


def test_takes_count_against_the_day_and_restart_each_day():
    """What sweeps take is removed from the book and counted until the UTC day changes."""
    m = AssetMarket("X/Y", 60_000)
    m.on_book({"bids": [[9.0, 1.0]], "asks": [[10.0, 1.0], [11.0, 2.0]], "timestamp": 5})
    m.take(Side.BUY, sweep(m.asks, 2.0, Side.BUY), now=1000)
    assert m.asks == [(11.0, 1.0)] and m.taken_today(2000) == 2.0
    assert m.taken_today(86_400_000) == 0.0


def test_candles_from_trades():
    """Exchanges without a candle stream get candles built from the public trades."""
    m = AssetMarket("X/Y", 60_000)
    m.candles_from_trades(m.on_trades([
        {"id": i, "timestamp": ts, "price": p, "amount": 1.0}
        for i, (ts, p) in enumerate([(0, 5.0), (10_000, 7.0), (20_000, 4.0), (70_000, 6.0)])]))
    assert m.candles[0] == [0, 5.0, 7.0, 4.0, 4.0, 3.0] and m.candles[60_000][4] == 6.0
    assert m.rows(60_000, 120_000) == [[60_000, 6.0, 6.0, 6.0, 6.0, 1.0]]


@pytest.mark.parametrize("amount", [0.1 + 0.2, 0.29999999999999993])  # 0.3 within an ulp
def test_all_of_an_amount_an_ulp_off_the_step_is_taken_to_the_bit(amount):
    """An order's amount passed the market rules as on the step within float noise: taken
    whole (the book or a trade has enough), it is that amount, not rounded to the step an
    ulp above it (more than ordered) or below (a dust rest left open)."""
    s = sweep([(10.0, 5.0)], amount, Side.BUY, step=0.01)
    assert s.amount == amount and s.taken == ((10.0, amount),)
    assert share_trade([Resting("o", Side.BUY, 10.0, amount)], 10.0, 5.0, step=0.01) == \
        [("o", amount)]
