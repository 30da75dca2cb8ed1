"""The streamed market of one asset as paper mode keeps it: book, recent trades, day volume,
and candles built from trades where the exchange serves none.

The watchers feed it ccxt structures as they arrive (stream messages, or REST answers
when a stream stalls or reconnects); the fills read it. It is touched only on the engine's
loop. What paper orders take from the book stays taken until the next book message.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Iterable, Mapping

import attrs

from ...core.orders import Side
from .fills import Level, Sweep, deplete

DAY_MS = 86_400_000
SEEN_IDS = 5_000  # public trade ids remembered to drop the repeats of a REST re-fetch


@attrs.frozen(slots=True)
class PublicTrade:
    """A trade of the market (not ours): what resting paper orders fill from."""

    id: str
    ts: int
    price: float
    amount: float
    side: str | None


def _levels(raw: Any, depth: int) -> list[Level]:
    out = []
    for row in (raw or [])[:depth]:
        price, qty = float(row[0]), float(row[1])
        if price > 0 and qty > 0:
            out.append((price, qty))
    return out


@attrs.define(slots=True, eq=False)
class AssetMarket:
    """Market data of one symbol, as last streamed."""

    symbol: str
    timeframe_ms: int
    depth: int = 100
    bids: list[Level] = attrs.Factory(list)  # best (highest) first
    asks: list[Level] = attrs.Factory(list)  # best (lowest) first
    book_ts: int | None = None
    book_updates: int = 0
    last_price: float | None = None
    last_trade_ts: int = 0
    trades_seen: int = 0
    recent: collections.deque = attrs.Factory(lambda: collections.deque(maxlen=1000))
    ticker_volume: float | None = None  # the 24h ticker's baseVolume
    ticker_ts: int | None = None
    taken_day: int = -1
    taken: float = 0.0  # what paper orders took from books this day
    candles: dict[int, list[float]] = attrs.Factory(dict)  # from trades: open -> [t, o, h, l, c, v]
    latest_ts: int = 0  # newest exchange time stamp seen in any message
    _seen: collections.deque = attrs.Factory(lambda: collections.deque(maxlen=SEEN_IDS))
    _seen_set: set[str] = attrs.Factory(set)
    _day_trades: collections.deque = attrs.Factory(collections.deque)  # (ts, amount), 24h
    _day_sum: float = 0.0

    # ---- what the streams deliver -----------------------------------------------------
    def on_book(self, book: Mapping[str, Any]) -> None:
        """A whole book (ccxt order book structure): replaces the last one."""
        self.bids = _levels(book.get("bids"), self.depth)
        self.asks = _levels(book.get("asks"), self.depth)
        self.book_ts = book.get("timestamp")
        self.book_updates += 1
        self._saw(self.book_ts)

    def on_trades(self, trades: Iterable[Mapping[str, Any]]) -> list[PublicTrade]:
        """Public trades (ccxt trade structures); returns those not seen before and not older
        than the newest seen, oldest first."""
        fresh = []
        for t in sorted(trades, key=lambda t: t.get("timestamp") or 0):
            tid = str(t.get("id") if t.get("id") is not None else
                      f"{t.get('timestamp')}:{t.get('price')}:{t.get('amount')}")
            if tid in self._seen_set:
                continue
            if len(self._seen) == self._seen.maxlen:
                self._seen_set.discard(self._seen[0])
            self._seen.append(tid)
            self._seen_set.add(tid)
            if (t.get("timestamp") or 0) < self.last_trade_ts:
                continue  # older than what was streamed: history a REST re-fetch brought back
            trade = PublicTrade(tid, int(t.get("timestamp") or 0), float(t["price"]),
                                float(t["amount"]), t.get("side"))
            fresh.append(trade)
            self.recent.append(trade)
            self.trades_seen += 1
            self.last_price = trade.price
            self.last_trade_ts = max(self.last_trade_ts, trade.ts)
            self._count_day(trade)
            self._saw(trade.ts)
        return fresh

    def on_ticker(self, ticker: Mapping[str, Any]) -> None:
        volume = ticker.get("baseVolume")
        if volume is not None:
            self.ticker_volume = float(volume)
            self.ticker_ts = ticker.get("timestamp")
        if self.last_price is None and ticker.get("last") is not None:
            self.last_price = float(ticker["last"])
        self._saw(ticker.get("timestamp"))

    def candles_from_trades(self, trades: Iterable[PublicTrade]) -> None:
        """Build candles from public trades, for exchanges that serve none (the newest
        5000 are kept)."""
        tf = self.timeframe_ms
        for t in trades:
            start = t.ts // tf * tf
            c = self.candles.get(start)
            if c is None:
                self.candles[start] = [start, t.price, t.price, t.price, t.price, t.amount]
            else:
                c[2], c[3], c[4] = max(c[2], t.price), min(c[3], t.price), t.price
                c[5] += t.amount
        if len(self.candles) > 5000:
            for t in sorted(self.candles)[:-4000]:
                del self.candles[t]

    def _saw(self, ts: Any) -> None:
        if ts:
            self.latest_ts = max(self.latest_ts, int(ts))

    def _count_day(self, trade: PublicTrade) -> None:
        self._day_trades.append((trade.ts, trade.amount))
        self._day_sum += trade.amount
        while self._day_trades and self._day_trades[0][0] <= trade.ts - DAY_MS:
            self._day_sum -= self._day_trades.popleft()[1]

    # ---- what the fills read ----------------------------------------------------------
    def side_for(self, side: Side) -> list[Level]:
        """The levels an order of `side` takes from: asks for a buy, bids for a sell."""
        return self.asks if side is Side.BUY else self.bids

    def take(self, side: Side, sweep: Sweep, now: int) -> None:
        """Remove what a sweep took from the book and count it against the day's volume."""
        if side is Side.BUY:
            self.asks = deplete(self.asks, sweep.taken)
        else:
            self.bids = deplete(self.bids, sweep.taken)
        self._roll_day(now)
        self.taken += sweep.amount

    def day_volume(self) -> float:
        """The day's traded volume: the ticker's, else the sum of the trades streamed in 24h."""
        return self.ticker_volume if self.ticker_volume is not None else self._day_sum

    def taken_today(self, now: int) -> float:
        self._roll_day(now)
        return self.taken

    def _roll_day(self, now: int) -> None:
        day = now // DAY_MS
        if day != self.taken_day:
            self.taken_day, self.taken = day, 0.0

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    def price(self) -> float | None:
        """The last trade price, else the middle of the book."""
        if self.last_price is not None:
            return self.last_price
        if self.bids and self.asks:
            return (self.bids[0][0] + self.asks[0][0]) / 2
        return None

    def rows(self, since: int, through: int) -> list[list[float]]:
        """The candles built from trades opening in [since, through], oldest first."""
        return [list(self.candles[t]) for t in sorted(self.candles) if since <= t <= through]

    def summary(self) -> dict[str, Any]:
        """The market_data event's payload."""
        return {"last": self.last_price, "bid": self.best_bid, "ask": self.best_ask,
                "trades_seen": self.trades_seen, "book_updates": self.book_updates,
                "day_volume": _finite(self.day_volume()), "book_ts": self.book_ts,
                "last_trade_ts": self.last_trade_ts or None}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
