"""Paper orders through `call`: the same vocabulary and return values as sim and live,
filled from the streamed book and public trades of the local exchange."""

from __future__ import annotations

import math

import pytest

from planarpy import Side, Strategy, Trade, missing

from livekit import eventually

SYM = "XRP/ETH"


def vwap(levels, amount):
    cost, left = 0.0, amount
    for price, qty in levels:
        take = min(qty, left)
        cost += price * take
        left -= take
        if left <= 0:
            break
    return cost / (amount - max(left, 0.0))


def test_market_order_sweeps_the_book(paper):
    """A market buy fills at the VWAP of the asks it takes, as a taker; cash moves by its
    cost, and the fee is taken from the XRP received, as Binance spot takes it."""
    run = paper(cash=5.0, stall_after=30)  # no REST book refresh meanwhile
    session = run.session
    with session.engine.locked():
        asks = list(session.markets[SYM].asks)
    amount = math.floor(asks[0][1] + asks[1][1] / 2)  # the first level and half the second
    t = run.call("market_order", SYM, float(amount), side="buy")
    assert isinstance(t, Trade) and t.taker and t.amount == amount
    assert t.price == pytest.approx(vwap(asks, amount), rel=1e-12) and t.price > asks[0][0]
    assert t.fee == pytest.approx(amount * 0.001) and t.fee_currency == "XRP"
    state = run.state()
    assert state["cash"] == pytest.approx(5.0 - t.cost)
    assert state["assets"][SYM]["balance"] == amount - t.fee and state["committed"] == 0
    with session.engine.locked():  # what was taken stays taken until the next book
        assert session.markets[SYM].asks[0][0] == asks[1][0]


def test_market_order_larger_than_the_book_takes_it_all(paper):
    """A market buy bigger than the asks fills what they hold; the rest is cancelled."""
    run = paper(cash=100.0, stall_after=30)
    session = run.session
    with session.engine.locked():
        asks = list(session.markets[SYM].asks)
    held = math.floor(sum(q for _, q in asks))
    t = run.call("market_order", SYM, float(held + 1000), side="buy")
    assert isinstance(t, Trade) and t.amount == held
    assert t.price == pytest.approx(vwap(asks, held), rel=1e-12)
    state = run.state()
    assert state["assets"][SYM]["orders"] == [] and state["committed"] == 0
    assert state["cash"] == pytest.approx(100.0 - t.cost)
    # nothing is left until the next book arrives
    assert run.call("market_order", SYM, 100.0, side="buy") is None
    assert "no liquidity" in run.strategy.errors[-1]


def test_resting_limit_fills_only_from_crossing_trades(paper, stepping, market_log, wait_until):
    """A GTC buy below the asks returns missing, then fills at its price, as a maker, from
    public trades at or below it, never more than they traded."""
    run = paper(cash=5.0, observers=[market_log.observe])
    session = run.session
    with session.engine.locked():
        bid = session.markets[SYM].best_bid
    amount = 3000.0
    assert run.call("limit_order", SYM, amount, bid, side="buy") is missing
    assert run.state()["committed"] == pytest.approx(amount * bid)  # its fee comes in XRP
    with stepping(2_000, 0.005):
        wait_until(lambda: run.state()["trades"] >= 2, timeout=15)
    run.stop()
    fills = run.strategy.trades
    assert all(not t.taker and t.price == bid and t.side is Side.BUY for t in fills)
    assert math.fsum(t.amount for t in fills) <= amount
    seen = {}
    for kind, data in market_log.entries:
        if kind == "trades":
            seen.update((t.id, t) for t in data)
    events = [e for e in _events(run) if e[0] == "trade_created"]
    used: dict[str, float] = {}
    for _, payload in events:
        basis = payload["basis"]
        assert basis["source"] == "trades"
        (tid, ts, price, qty), = basis["trades"]
        public = seen[tid]  # a trade the engine was streamed
        assert public.price == price <= bid and public.amount == qty
        used[tid] = used.get(tid, 0.0) + payload["amount"]
        assert used[tid] <= public.amount


def _events(run):
    return [(k, p) for k, p in run.session.recorder.events]


@pytest.fixture
def paper(paper):
    """Paper runs that keep their events in memory (kind, payload)."""
    class Memory:
        def __init__(self):
            self.events = []

        def record(self, kind, payload, symbol=None, ts=None):
            self.events.append((kind, payload))

        def close(self):
            pass

    def start(cls=None, **options):
        options.setdefault("trace", Memory())
        return paper(cls, **options) if cls is not None else paper(**options)
    return start


def test_limit_waitfor_returns_the_first_fill(paper, stepping):
    """A GTC order given `waitfor` waits for a fill from the trades and returns it."""
    run = paper(cash=5.0)
    with run.session.engine.locked():
        ask = run.session.markets[SYM].best_ask
    with stepping(2_000, 0.005):
        t = run.call("limit_order", SYM, 50.0, round(ask + 5e-7, 8), side="buy", tif="PO",
                     waitfor=0.1)
        assert t is None  # post-only at a price that takes is refused
        bid = run.session.markets[SYM].best_bid
        t = run.call("limit_order", SYM, 50.0, bid, side="buy", waitfor=10)
    assert isinstance(t, Trade) and t.price == bid and not t.taker


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_ioc_fok_away_from_the_book_return_none(paper, tif):
    """IOC and FOK that the book cannot fill at once return None and hold nothing."""
    run = paper()
    assert run.call("limit_order", SYM, 100.0, 0.0005, side="buy", tif=tif) is None
    state = run.state()
    assert state["committed"] == 0 and state["assets"][SYM]["orders"] == []
    assert run.strategy.errors


def test_ioc_keeps_the_immediate_part_fok_is_all_or_nothing(paper):
    """An IOC larger than the book within its limit fills what is there; a FOK is killed."""
    run = paper(cash=50.0)
    with run.session.engine.locked():
        asks = list(run.session.markets[SYM].asks)
    limit = asks[2][0]
    within = math.floor(sum(q for p, q in asks if p <= limit))
    assert run.call("limit_order", SYM, within + 100.0, limit, side="buy", tif="FOK") is None
    t = run.call("limit_order", SYM, within + 100.0, limit, side="buy", tif="IOC")
    assert isinstance(t, Trade) and t.amount == within and t.price <= limit
    assert run.state()["assets"][SYM]["orders"] == [] and run.state()["committed"] == 0


def test_post_only_rests_when_it_would_not_take(paper):
    """A post-only bid below the asks rests (missing); one at the ask is refused (None)."""
    run = paper()
    with run.session.engine.locked():
        m = run.session.markets[SYM]
        bid, ask = m.best_bid, m.best_ask
    assert run.call("limit_order", SYM, 10.0, bid, side="buy", tif="PO") is missing
    assert run.call("limit_order", SYM, 10.0, ask, side="buy", tif="PO") is None
    assert "post-only" in run.strategy.errors[-1]


def test_cancel_leverage_close_and_watch(paper):
    """cancel_orders, update_leverage, close_position and watch_ohlcv return bools."""
    run = paper(cash=5.0)
    with run.session.engine.locked():
        bid = run.session.markets[SYM].best_bid
    assert run.call("limit_order", SYM, 100.0, round(bid * 0.9, 8), side="buy") is missing
    assert run.call("cancel_orders", SYM, ids=["nope"]) is False
    assert run.call("cancel_orders", SYM, "buy") is True
    assert run.state()["committed"] == 0 and run.state()["assets"][SYM]["orders"] == []
    assert run.call("update_leverage", SYM, 2.0) is False  # spot: no leverage
    assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
    assert run.call("close_position", SYM) is True
    assert run.state()["assets"][SYM]["balance"] < 1  # the dust of the XRP fee: below a step
    assert run.call("watch_ohlcv", SYM, "1m") is True
    assert len(run.strategy.assets[0].ohlcv) > 0


def test_local_checks_refuse(paper):
    """Off-step amounts and too little cash return None with a reason."""
    run = paper(cash=0.01)
    assert run.call("market_order", SYM, 10.5, side="buy") is None
    assert "more decimals" in run.strategy.errors[-1]
    assert run.call("market_order", SYM, 1000.0, side="buy") is None
    assert "not enough cash" in run.strategy.errors[-1]
    with pytest.raises(ValueError):
        run.call("market_order", SYM, 10.0, side="sideways")


class Perp(Strategy):
    exchange = "binanceusdm"
    quote = "USDT"
    margin = "isolated"
    timeframe = "5m"
    universe = ("XRP/USDT:USDT",)


def test_isolated_margin_open_close_and_liquidation(paper):
    """On a perpetual: leverage, a short opened and closed by sweeps, and a long liquidated
    by a public trade through its liquidation price."""
    perp = "XRP/USDT:USDT"
    run = paper(Perp, cash=1000.0)
    assert run.call("update_leverage", perp, 20.0) is True
    t = run.call("market_order", perp, 100.0, side="sell", pos="short")
    assert isinstance(t, Trade) and run.state()["assets"][perp]["short"] == 100.0
    assert run.call("close_position", perp) is True and run.state()["assets"][perp]["short"] == 0
    assert isinstance(run.call("market_order", perp, 100.0, side="buy"), Trade)
    liq = run.strategy.assets[0].long.liquidation_price
    below = {"id": "x1", "timestamp": run.strategy.clock.now() + 1, "price": liq * 0.999,
             "amount": 1.0}
    session = run.session
    session.engine.blocking(session._on_trades(perp, [below]), 5)  # as if streamed
    state = run.state()
    assert state["assets"][perp]["long"] == 0 and state["trades"] == 4
    assert run.strategy.trades[-1].price == pytest.approx(liq)


class PerpSeen(Perp):
    def reset(self):
        self.errors = []

    def on_order_error(self, ai, reason, request):
        self.errors.append(reason)


def test_a_perpetual_position_worth_less_than_the_minimum_cost_closes(paper):
    """What a reduce-only sell leaves of a long (3 XRP, under 5 USDT) is below the
    market's minimum cost; a reduce-only order is exempt from it, as on Binance USD-M, so
    close_position closes it (the gate refused it: the position could not be closed)."""
    perp = "XRP/USDT:USDT"
    run = paper(PerpSeen, cash=1000.0)
    ai = run.strategy.assets[0]
    assert isinstance(run.call("market_order", perp, 100.0, side="buy"), Trade)
    assert isinstance(run.call("market_order", perp, 97.0, side="sell", reduce_only=True), Trade)
    assert ai.long.amount == pytest.approx(3.0)
    assert 3.0 * run.market(perp)["last"] < ai.market.min_cost  # worth less than 5 USDT
    assert run.call("close_position", perp) is True, run.strategy.errors
    assert ai.open_position() is None and run.strategy.errors == []


def test_a_reduce_only_stop_never_blocks_a_close_by_hand_on_a_perpetual(paper, stepping):
    """A reduce-only stop of the whole long holds nothing against a reduce-only close by
    hand (the gate refused it: 'not already being reduced'); a trade through the stop then
    fires it, it finds nothing to reduce and is cancelled, saying so: no fill, no short."""
    perp = "XRP/USDT:USDT"
    run = paper(PerpSeen, cash=1000.0)
    assert run.call("update_leverage", perp, 10.0) is True
    assert isinstance(run.call("market_order", perp, 100.0, side="buy"), Trade)
    entry = round(run.strategy.assets[0].long.entry_price, 2)
    assert run.call("stop_order", perp, 100.0, entry * 0.9, reduce_only=True) is missing
    closed = run.call("market_order", perp, 100.0, side="sell", reduce_only=True)
    assert isinstance(closed, Trade) and closed.amount == 100.0, run.strategy.errors
    below = {"id": "x1", "timestamp": run.strategy.clock.now() + 1, "price": entry * 0.85,
             "amount": 1.0}
    session = run.session
    session.engine.blocking(session._on_trades(perp, [below]), 5)  # as if streamed
    with stepping():  # the fired stop executes against the next book
        eventually(lambda: run.state()["assets"][perp]["orders"] == [], timeout=10)
    state = run.state()
    assert state["assets"][perp]["long"] == 0 and state["assets"][perp]["short"] == 0
    assert state["trades"] == 2
    assert "holds only 0 of its 100; the rest is cancelled" in run.strategy.errors[-1]
