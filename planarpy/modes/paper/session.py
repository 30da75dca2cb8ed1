"""A paper run of one strategy: public market streams, the tick loop, simulated fills.

Paper mode uses only public endpoints (no keys): markets, order books, trades and
tickers, streamed through ccxt.pro by the same `Watcher` as live mode (stall guard,
reconnect, REST re-fetch), and closed candles fetched at each close as live mode does.
Orders never leave the process: `orders.py` fills them from the streamed book and
trades, and every change goes through `emit` on the engine's loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

import ccxt

from ... import validate as V
from ...actions import Mode
from ...data.ohlcv import timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig
from ...strategy import Strategy
from ...trace import trace_tail
from ..runtime import Session, Watcher
from . import orders
from .executor import PaperExecutor
from .market import AssetMarket

Observer = Callable[[str, str, Any], None]


class PaperClock:
    """Exchange time, never behind the newest market data (a replayed or lagging feed)."""

    __slots__ = ("wall", "markets", "_last")

    def __init__(self, wall: Any, markets: Mapping[str, AssetMarket]) -> None:
        self.wall = wall  # the exchange's clock
        self.markets = markets
        self._last = 0

    @property
    def speed(self) -> float | None:
        """Exchange ms per wall ms (None: a clock that moves only when stepped)."""
        return getattr(self.wall, "speed", 1.0)

    def now(self) -> int:
        t = max(self.wall.now(), max((m.latest_ts for m in self.markets.values()), default=0))
        if t > self._last:
            self._last = t
        return self._last

    def now_ns(self) -> int:
        return self.now() * 1_000_000


class PaperSession(Session):
    """Runs a strategy on live market data with simulated fills, on its own engine thread.

    `observers` are called on the engine's loop as market data comes in, with
    ("book", symbol, ccxt order book), ("trades", symbol, [PublicTrade, ...] not seen
    before) or ("ticker", symbol, ccxt ticker).
    """

    mode = Mode.PAPER

    label = "paper"

    def __init__(self, cls: type[Strategy], exchange: ExchangeConfig, *,
                 cash: float | None = None, depth: int = 100, market_every: float = 1.0,
                 observers: list[Observer] | None = None, **options: Any) -> None:
        options.setdefault("waitfor", 0.0)
        super().__init__(cls, exchange, ApiKeys(), **options)  # public endpoints only
        self.cash = None if cash is None else V.positive().value(cash, "cash")
        self.depth = V.count("book levels").value(depth, "depth")
        self.market_every = V.positive("seconds").value(market_every, "market_every")
        self.markets: dict[str, AssetMarket] = {}
        self.observers: list[Observer] = list(observers or [])
        self.marks: dict[str, int] = {}  # order id -> last public trade time at its creation
        self.fired: dict[str, Any] = {}  # order id -> the trade that fired it, awaiting a book
        self.trade_candles: set[str] = set()  # symbols whose candles are built from trades
        self._ids = 0

    def _background(self) -> list[Callable[[], Any]]:
        return [self._summary_loop]

    async def _startup(self) -> None:
        universe = await self.load_universe()
        tf = timeframe_ms(self.cls.timeframe)
        self.markets = {sym: AssetMarket(sym, tf, self.depth) for sym in universe}
        s = self.cls(universe, mode=Mode.PAPER, cash=self.cash,
                     clock=PaperClock(self.exchange_clock(), self.markets), params=self.params)
        await self.begin(s, cash=s.engine.state.cash)
        for sym in universe:
            await self._snapshot(sym)
        await self.refresh_candles()
        # the trading state and the rate windows: the simulated account starts anew, so
        # the loss breakers' measurements do not carry over
        await self.carry_over(trace_tail, measurements=False, windows=True)
        await self.start_strategy()
        for sym in universe:
            self._start_watchers(sym)

    async def _snapshot(self, sym: str) -> None:
        """Book and day volume by REST before the streams start."""
        m = self.markets[sym]
        if not self.client.has.get("fetchOHLCV"):
            self.trade_candles.add(sym)
        await self._on_book(sym, await self._fetch_book(sym))
        if self.client.has.get("fetchTicker"):
            await self._on_ticker(sym, await self.request("fetch_ticker", sym))
        if m.ticker_volume is None and self.client.has.get("fetchTrades"):
            await self._on_trades(sym, await self.request("fetch_trades", sym))

    async def candle_rows(self, symbol: str, since: int, through: int) -> list[Any]:
        """Candles by REST as live mode gets them, or built from the public trades where
        the exchange serves none."""
        if symbol not in self.trade_candles:
            try:
                return await super().candle_rows(symbol, since, through)
            except ccxt.NotSupported:
                self.trade_candles.add(symbol)
        return self.markets[symbol].rows(since, through)

    def _start_watchers(self, sym: str) -> None:
        specs = [("book", self.stream("watch_order_book", sym),
                  lambda: self._fetch_book(sym), lambda d: self._on_book(sym, d)),
                 ("trades", self.stream("watch_trades", sym),
                  lambda: self.request("fetch_trades", sym), lambda d: self._on_trades(sym, d))]
        if self.client.has.get("watchTicker") or self.client.has.get("fetchTicker"):
            specs.append(("ticker", self.stream("watch_ticker", sym),
                          lambda: self.request("fetch_ticker", sym),
                          lambda d: self._on_ticker(sym, d)))
        for kind, stream, fetch, process in specs:
            name = f"{kind}:{sym}"
            w = self.watchers.get(name)
            if w is None:
                w = self.watchers[name] = Watcher(self, name, stream, fetch, process, symbol=sym,
                                                  stall_after=self.stall_after)
            w.start()

    async def _fetch_book(self, sym: str) -> Any:
        """The book by REST; one without a time stamp (Binance spot's) is stamped with the
        exchange time the request went out, so that it is never taken for a book newer
        than a trade streamed after it (see `orders.on_book`)."""
        sent = self.e.clock.wall.now()
        book = await self.request("fetch_order_book", sym)
        if isinstance(book, dict) and book.get("timestamp") is None:
            book["timestamp"] = sent
        return book

    def watch_ohlcv(self, sym: str) -> None:
        """(Re)start the market watchers of `sym` (its trades build its candles where the
        exchange serves none)."""
        self._start_watchers(sym)

    def make_executor(self) -> PaperExecutor:
        return PaperExecutor(self)

    # ---- market data ------------------------------------------------------------------
    def _notify(self, kind: str, sym: str, data: Any) -> None:
        self.last_event = time.monotonic()  # the status line's "last event": market data
        for fn in self.observers:
            fn(kind, sym, data)

    # the market data changes under the state lock: an order checked and filled in a
    # `call` from another thread (which holds the lock) sees one book throughout
    async def _on_book(self, sym: str, book: Any) -> None:
        async with self.engine.mutating():
            self.markets[sym].on_book(book)
            if self.fired:
                orders.on_book(self, self.e.state.assets[sym])
        self._notify("book", sym, book)

    async def _on_trades(self, sym: str, trades: Any) -> None:
        m = self.markets[sym]
        async with self.engine.mutating():
            fresh = m.on_trades(trades or [])
            if fresh and sym in self.trade_candles:
                m.candles_from_trades(fresh)
        if not fresh:
            return
        self._notify("trades", sym, fresh)
        await orders.on_public_trades(self, self.e.state.assets[sym], fresh)

    async def _on_ticker(self, sym: str, ticker: Any) -> None:
        async with self.engine.mutating():
            self.markets[sym].on_ticker(ticker)
        self._notify("ticker", sym, ticker)

    async def _summary_loop(self) -> None:
        """The periodic market_data event of each asset."""
        while True:
            await asyncio.sleep(self.market_every)
            for sym, m in self.markets.items():
                await self.record("market_data", m.summary(), sym)

    # ---- ids and status ----------------------------------------------------------------
    def new_id(self) -> str:
        """An order id unique in the run's trace: each paper run counts its orders from 1,
        after its run number (a replay of several runs would take one run's order for
        another's)."""
        self._ids += 1
        run = getattr(self.recorder, "run", None)
        return f"paper-{run}-{self._ids}" if run else f"paper-{self._ids}"

    def prices(self) -> dict[str, float]:
        return {sym: p for sym, m in self.markets.items() if (p := m.price()) is not None}

    def status_extra(self) -> str:
        return f"trades seen {sum(m.trades_seen for m in self.markets.values())}"
