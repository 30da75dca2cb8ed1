"""The spot example strategy runs in paper mode unchanged, on replayed real XRP/ETH trades,
and every fill matches the book and trades the engine saw at that moment."""

from __future__ import annotations

import math

from planarpy import Side, Trade
from planarpy.trace import EventTrace, iter_events, replay_from_trace

from planarpy import find_strategy

SmaCross = find_strategy("sma_cross", {})

SYM = "XRP/ETH"


def make_strategy(log):
    class XrpCross(SmaCross):
        """SmaCross as shipped, on XRP/ETH one-minute candles with short averages."""

        quote = "ETH"
        timeframe = "1m"
        universe = (SYM,)
        fast = 2
        slow = 5
        warmup = 5

        def on_trade(self, ai, trade):
            log.fill(trade)
    return XrpCross


def swept(levels, amount):
    """What a taker of `amount` gets from `levels` (best first): [(price, qty)], by hand."""
    out, left = [], amount
    for price, qty in levels:
        if left <= 1e-12:
            break
        take = min(qty, left)
        out.append((price, take))
        left -= take
    return out


def less(levels, taken):
    used = dict()
    for p, q in taken:
        used[p] = used.get(p, 0.0) + q
    return [(p, q - used.get(p, 0.0)) for p, q in levels if q - used.get(p, 0.0) > 1e-12]


def check_book_fill(trade, book, ordered):
    """A taker fill took the best levels of the book it saw, at their volume-weighted price."""
    bids, asks = book
    levels = asks if trade.side is Side.BUY else bids
    available = sum(q for _, q in levels)
    assert trade.amount <= ordered + 1e-9 and trade.amount <= available + 1e-9
    if trade.amount < ordered:  # partial only when the book ran out (amount step: 1 XRP)
        assert trade.amount == math.floor(available)
    taken = swept(levels, trade.amount)
    vwap = sum(p * q for p, q in taken) / sum(q for _, q in taken)
    assert math.isclose(trade.price, vwap, rel_tol=1e-12), (trade, taken)
    return taken


def test_sma_cross_paper_fills_match_the_streamed_book(lx, paper, stepping, market_log,
                                                       wait_until, tmp_path):
    """SmaCross trades in paper mode; each fill is the VWAP of the book levels it took, the
    trace records the basis of each fill and replays to the same final state."""
    cls = make_strategy(market_log)
    trace = EventTrace.open(tmp_path / "t", strategy="XrpCross", exchange="binance")
    run = paper(cls, trace=trace, observers=[market_log.observe], market_every=0.2)
    with stepping(6_000, 0.01):  # a market minute every ~0.1 s
        wait_until(lambda: len(run.strategy.trades) >= 4, timeout=20)
    run.stop()
    strategy = run.strategy
    events = list(iter_events(tmp_path / "t"))
    ordered = {e["payload"]["id"]: e["payload"]["amount"] for e in events
               if e["kind"] == "order_created"}
    basis = {e["payload"]["id"]: e["payload"]["basis"] for e in events
             if e["kind"] == "trade_created"}
    book, fills = None, 0
    for kind, data in market_log.entries:
        if kind == "book":
            book = data
        elif kind == "fill":
            assert isinstance(data, Trade) and data.taker and book is not None
            taken = check_book_fill(data, book, ordered[data.order_id])
            recorded = basis[data.id]
            assert recorded["source"] == "book"
            assert [p for p, _ in recorded["levels"]] == [p for p, _ in taken]
            assert all(math.isclose(a[1], b[1], rel_tol=1e-9)
                       for a, b in zip(recorded["levels"], taken))
            bids, asks = book
            book = (less(bids, taken), asks) if data.side is Side.SELL else \
                (bids, less(asks, taken))
            fills += 1
    assert fills == len(strategy.trades) >= 4
    sides = [t.side for t in strategy.trades]
    assert Side.BUY in sides and Side.SELL in sides
    kinds = {e["kind"] for e in events}
    assert {"strategy_started", "market_data", "order_created", "trade_created",
            "strategy_stopped"} <= kinds
    md = [e["payload"] for e in events if e["kind"] == "market_data"]
    assert md[-1]["trades_seen"] > 0 and md[-1]["bid"] < md[-1]["ask"]
    report = replay_from_trace(strategy, tmp_path / "t")
    assert report.ok, str(report)
    assert len(report.state.trades) == len(strategy.trades)
