"""A paper run of one strategy: public market streams, the tick loop, simulated fills.

Paper mode uses only public endpoints (no keys): markets, order books, trades, tickers
and candles, streamed through ccxt.pro by the same `Watcher` as live mode (stall guard,
reconnect, REST re-fetch). Orders never leave the process: `orders.py` fills them from
the streamed book and trades, and every change goes through `emit` on the engine's loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

import ccxt

from ... import validate as V
from ...actions import Mode
from ...data.ohlcv import OHLCV, timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig
from ...strategy import Strategy
from ..runtime import ExchangeClock, Session, Watcher
from . import orders
from .market import AssetMarket

Observer = Callable[[str, str, Any], None]


class PaperClock:
    """Exchange time, never behind the newest market data (a replayed or lagging feed)."""

    __slots__ = ("wall", "markets", "_last")

    def __init__(self, client: Any, markets: Mapping[str, AssetMarket]) -> None:
        self.wall = ExchangeClock(client)
        self.markets = markets
        self._last = 0

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
    before), ("ticker", symbol, ccxt ticker) or ("ohlcv", symbol, rows).
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
        self.trade_candles: set[str] = set()  # symbols whose candles are built from trades
        self._ids = 0

    def _background(self) -> list[Callable[[], Any]]:
        return [self._summary_loop]

    async def _startup(self) -> None:
        universe = await self.load_universe()
        tf = timeframe_ms(self.cls.timeframe)
        self.markets = {sym: AssetMarket(sym, tf, self.depth) for sym in universe}
        s = self.cls(universe, mode=Mode.PAPER, cash=self.cash,
                     clock=PaperClock(self.client, self.markets), params=self.params)
        await self.begin(s, cash=s.state.cash)
        for sym in universe:
            await self._snapshot(sym)
        await self.refresh_candles()
        await self.start_strategy()
        for sym in universe:
            self._start_watchers(sym)

    async def _snapshot(self, sym: str) -> None:
        """Book, day volume and candle history by REST before the streams start."""
        m = self.markets[sym]
        await self._on_book(sym, await self.request("fetch_order_book", sym))
        if self.client.has.get("fetchTicker"):
            await self._on_ticker(sym, await self.request("fetch_ticker", sym))
        if m.ticker_volume is None and self.client.has.get("fetchTrades"):
            await self._on_trades(sym, await self.request("fetch_trades", sym))
        await self.fetch_candles(sym)

    async def fetch_candles(self, sym: str) -> None:
        """Candle history by REST, or candles from trades where the exchange has none."""
        if not self.client.has.get("fetchOHLCV"):
            self.trade_candles.add(sym)
            return
        try:
            rows = await self.request("fetch_ohlcv", sym, self.s.timeframe, None, self.candles)
        except ccxt.NotSupported:
            self.trade_candles.add(sym)
            return
        self._on_ohlcv(sym, rows)

    def _start_watchers(self, sym: str) -> None:
        tf = self.s.timeframe
        specs = [("book", self.stream("watch_order_book", sym),
                  lambda: self.request("fetch_order_book", sym), lambda d: self._on_book(sym, d)),
                 ("trades", self.stream("watch_trades", sym),
                  lambda: self.request("fetch_trades", sym), lambda d: self._on_trades(sym, d))]
        if self.client.has.get("watchTicker") or self.client.has.get("fetchTicker"):
            specs.append(("ticker", self.stream("watch_ticker", sym),
                          lambda: self.request("fetch_ticker", sym),
                          lambda d: self._on_ticker(sym, d)))
        if sym not in self.trade_candles:
            specs.append(("ohlcv", self.stream("watch_ohlcv", sym, tf),
                          lambda: self.fetch_candles(sym), self._process_ohlcv(sym)))
        for kind, stream, fetch, process in specs:
            name = f"{kind}:{sym}"
            w = self.watchers.get(name)
            if w is None:
                w = self.watchers[name] = Watcher(self, name, stream, fetch, process, symbol=sym,
                                                  stall_after=self.stall_after)
            w.start()

    def watch_ohlcv(self, sym: str) -> None:
        """(Re)start the market watchers of `sym` (the candles among them)."""
        self._start_watchers(sym)

    async def cancel_asset(self, ai: Any) -> None:
        await orders.cancel(self, ai, None, None)

    async def close_asset(self, ai: Any) -> bool:
        return await orders.close_position(self, ai, None)

    # ---- market data ------------------------------------------------------------------
    def _notify(self, kind: str, sym: str, data: Any) -> None:
        self.last_event = time.monotonic()  # the status line's "last event": market data
        for fn in self.observers:
            fn(kind, sym, data)

    async def _on_book(self, sym: str, book: Any) -> None:
        self.markets[sym].on_book(book)
        self._notify("book", sym, book)

    async def _on_trades(self, sym: str, trades: Any) -> None:
        m = self.markets[sym]
        fresh = m.on_trades(trades or [])
        if not fresh:
            return
        if sym in self.trade_candles:
            m.candles_from_trades(fresh)
        self._notify("trades", sym, fresh)
        await orders.on_public_trades(self, self.s.state.assets[sym], fresh)

    async def _on_ticker(self, sym: str, ticker: Any) -> None:
        self.markets[sym].on_ticker(ticker)
        self._notify("ticker", sym, ticker)

    def _on_ohlcv(self, sym: str, rows: Any) -> None:
        self.markets[sym].on_ohlcv(rows or [])
        self._notify("ohlcv", sym, rows)

    def _process_ohlcv(self, sym: str) -> Callable[[Any], Any]:
        async def process(rows: Any) -> None:
            if rows is not None:  # fetch_candles stores its own rows and returns None
                self._on_ohlcv(sym, rows)
        return process

    async def _summary_loop(self) -> None:
        """The periodic market_data event of each asset."""
        while True:
            await asyncio.sleep(self.market_every)
            for sym, m in self.markets.items():
                await self.record("market_data", m.summary(), sym)

    # ---- candles and ticks ------------------------------------------------------------
    async def refresh_candles(self) -> None:
        """Put the closed candles of every asset in `ai.ohlcv` and recompute the indicators."""
        s = self.s
        now = s.clock.now()
        series = {}
        for ai in s.assets:
            rows = self.markets[ai.symbol].closed_candles(now, self.candles)
            if not rows:
                return
            series[ai.symbol] = OHLCV.from_rows(rows)
        await self.use_candles(series)

    def new_id(self) -> str:
        self._ids += 1
        return f"paper-{self._ids}"

    def prices(self) -> dict[str, float]:
        return {sym: p for sym, m in self.markets.items() if (p := m.price()) is not None}

    def status_extra(self) -> str:
        return f"trades seen {sum(m.trades_seen for m in self.markets.values())}"
