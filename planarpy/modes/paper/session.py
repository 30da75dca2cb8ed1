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

from ...actions import Mode
from ...core.errors import UnknownSymbol
from ...core.market import Market
from ...data.ohlcv import OHLCV, align, timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig, close_client, open_client
from ...strategy import Strategy
from ..live.engine import EngineThread, LiveClock
from ..live.watchers import Watcher
from . import orders
from .market import AssetMarket

Observer = Callable[[str, str, Any], None]


class PaperClock:
    """Exchange time, never behind the newest market data (a replayed or lagging feed)."""

    __slots__ = ("wall", "markets", "_last")

    def __init__(self, client: Any, markets: Mapping[str, AssetMarket]) -> None:
        self.wall = LiveClock(client)
        self.markets = markets
        self._last = 0

    def now(self) -> int:
        t = max(self.wall.now(), max((m.latest_ts for m in self.markets.values()), default=0))
        if t > self._last:
            self._last = t
        return self._last

    def now_ns(self) -> int:
        return self.now() * 1_000_000


class PaperSession:
    """Runs a strategy on live market data with simulated fills, on its own engine thread.

    `observers` are called on the engine's loop as market data comes in, with
    ("book", symbol, ccxt order book), ("trades", symbol, [PublicTrade, ...] not seen
    before), ("ticker", symbol, ccxt ticker) or ("ohlcv", symbol, rows).
    """

    mode = Mode.PAPER

    def __init__(self, cls: type[Strategy], exchange: ExchangeConfig, *, recorder: Any = None,
                 cash: float | None = None, tick_interval: float | None = None,
                 stall_after: float = 10.0, candles: int = 500, depth: int = 100,
                 market_every: float = 1.0, waitfor: float = 0.0,
                 cancel_on_stop: bool = False, close_on_stop: bool = False,
                 observers: list[Observer] | None = None) -> None:
        self.cls = cls
        self.exchange = exchange
        self.keys = ApiKeys()  # public endpoints only
        self.recorder = recorder
        self.cash = cash
        self.tick_interval = tick_interval if tick_interval is not None else \
            timeframe_ms(cls.timeframe) / 1000
        self.stall_after = stall_after
        self.candles = candles
        self.depth = depth
        self.market_every = market_every
        self.waitfor = waitfor
        self.cancel_on_stop = cancel_on_stop
        self.close_on_stop = close_on_stop
        self.engine = EngineThread(cls.__name__)
        self.s: Any = None
        self.client: Any = None
        self.markets: dict[str, AssetMarket] = {}
        self.watchers: dict[str, Watcher] = {}
        self.observers: list[Observer] = list(observers or [])
        self.waiters: dict[str, asyncio.Event] = {}
        self.marks: dict[str, int] = {}  # order id -> last public trade time at its creation
        self.trade_candles: set[str] = set()  # symbols whose candles are built from trades
        self.last_event = time.monotonic()
        self.ticks = 0
        self.errors: list[str] = []
        self._stop: asyncio.Event | None = None
        self._ids = 0

    # ---- lifecycle --------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Any:
        self.engine.start(self._main, timeout)
        return self.s

    def stop(self, timeout: float = 60.0) -> None:
        loop, stop = self.engine.loop, self._stop
        if loop is not None and stop is not None and self.engine.running:
            loop.call_soon_threadsafe(stop.set)
        self.engine.join(timeout)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.client = open_client(self.exchange, self.keys)
        try:
            await self._startup()
            self.engine.ready()
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(self._tick_loop()), loop.create_task(self._summary_loop())]
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._shutdown()
        finally:
            for w in list(self.watchers.values()):
                await w.stop()
            if self.recorder is not None:
                self.recorder.close()
            await close_client(self.client)

    async def _startup(self) -> None:
        markets = await self.request("load_markets")
        universe = {}
        for sym in self.cls.universe:
            if sym not in markets:
                raise UnknownSymbol(f"{sym!r} is not in {self.exchange.id}'s markets")
            universe[sym] = Market.from_ccxt(markets[sym], self.client.precisionMode)
        tf = timeframe_ms(self.cls.timeframe)
        self.markets = {sym: AssetMarket(sym, tf, self.depth) for sym in universe}
        s = self.cls(universe, mode=Mode.PAPER, cash=self.cash,
                     clock=PaperClock(self.client, self.markets))
        s.engine = self
        s.recorder = self.recorder
        self.s = s
        s.reset()
        await self.emit("strategy_started", {"strategy": self.cls.__name__, "mode": "paper",
                                             "exchange": self.exchange.id,
                                             "universe": list(universe), "cash": s.state.cash})
        for sym in universe:
            await self._snapshot(sym)
        await self.refresh_candles()
        await asyncio.to_thread(self._in_strategy_thread, s.start)
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
        specs = [("book", self._stream("watch_order_book", sym),
                  lambda: self.request("fetch_order_book", sym), lambda d: self._on_book(sym, d)),
                 ("trades", self._stream("watch_trades", sym),
                  lambda: self.request("fetch_trades", sym), lambda d: self._on_trades(sym, d))]
        if self.client.has.get("watchTicker") or self.client.has.get("fetchTicker"):
            specs.append(("ticker", self._stream("watch_ticker", sym),
                          lambda: self.request("fetch_ticker", sym),
                          lambda d: self._on_ticker(sym, d)))
        if sym not in self.trade_candles:
            specs.append(("ohlcv", self._stream("watch_ohlcv", sym, tf),
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

    def _stream(self, method: str, *args: Any) -> Any:
        """A callable reading one message of a ccxt.pro stream, or None if there is none."""
        head, *rest = method.split("_")
        camel = head + "".join("OHLCV" if w == "ohlcv" else w.title() for w in rest)
        fn = getattr(self.client, method, None)
        if fn is None or not self.client.has.get(camel):
            return None
        return lambda: fn(*args)

    async def _shutdown(self) -> None:
        try:
            await asyncio.to_thread(self._in_strategy_thread, self.s.stop)
        except Exception as e:
            await self.report_error(e, where="stop")
        for ai in self.s.assets:
            if self.close_on_stop:
                await orders.close_position(self, ai, None)
            elif self.cancel_on_stop and ai.orders:
                await orders.cancel(self, ai, None, None)
        await self.emit("strategy_stopped", {"cash": self.s.state.cash,
                                             "committed": self.s.state.committed,
                                             "ticks": self.ticks})

    # ---- market data ------------------------------------------------------------------
    def _notify(self, kind: str, sym: str, data: Any) -> None:
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

    # ---- events -----------------------------------------------------------------------
    async def emit(self, kind: str, payload: Mapping[str, Any], symbol: str | None = None) -> Any:
        """Record and apply one event on the engine's loop, then wake who waits for it."""
        async with self.engine.mutating():
            effect = self.s.emit(kind, payload, symbol)
        self.last_event = time.monotonic()
        if effect.order is not None and effect.trade is not None:
            waiter = self.waiters.get(effect.order.id)
            if waiter is not None:
                waiter.set()
        return effect

    async def record(self, kind: str, payload: Mapping[str, Any], symbol: str | None = None) -> None:
        """An event that changes no state (market data, connection news, errors): it goes
        to the trace only, with no lock and nothing to apply."""
        if self.recorder is not None and self.s is not None:
            self.recorder.record(kind, dict(payload), symbol=symbol, ts=self.s.clock.now_ns())
        self.last_event = time.monotonic()

    def describe(self, e: BaseException) -> str:
        return f"{type(e).__name__}: {e}"[:500]

    async def report_error(self, e: BaseException, where: str, symbol: str | None = None) -> None:
        message = self.describe(e)
        self.errors.append(message)
        await self.record("exchange_error", {"where": where, "error": message}, symbol)
        if self.s is not None:
            self.s.on_error(where, message)

    async def request(self, method: str, *args: Any) -> Any:
        """Call a public ccxt method, recording the request and a short summary of the answer."""
        if self.recorder is not None:
            await self.record("request_sent", {"method": method, "args": [str(a) for a in args]})
        try:
            result = await getattr(self.client, method)(*args)
        except Exception as e:
            await self.record("exchange_error", {"method": method, "error": self.describe(e)})
            raise
        if self.recorder is not None:
            size = len(result) if isinstance(result, (list, dict)) else None
            await self.record("response_received", {"method": method, "size": size})
        return result

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
        _, aligned = align(series, s.timeframe)
        async with self.engine.mutating():
            for ai in s.assets:
                ai.ohlcv = aligned[ai.symbol]
            s.prepare_indicators()
            s.i = len(s.assets[0].ohlcv) - 1

    async def _tick_loop(self) -> None:
        while True:
            try:
                await self.refresh_candles()
                if self.s.i >= self.s.warmup_period():
                    await asyncio.to_thread(self._tick_in_thread)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self.report_error(e, where="tick")
            await asyncio.sleep(self.tick_interval)

    def _in_strategy_thread(self, callback: Callable[[], Any]) -> None:
        """Run a strategy callback as strategy code runs: on a worker thread, under the
        lock, so that it may `call` (which waits on the engine's loop)."""
        with self.engine.locked():
            callback()

    def _tick_in_thread(self) -> None:
        s = self.s
        tf = timeframe_ms(s.timeframe)
        with self.engine.locked():
            ohlcv = s.assets[0].ohlcv
            ts = int(ohlcv.timestamp[-1]) + tf if ohlcv is not None else s.clock.now()
            s.tick(ts)
            self.ticks += 1

    def new_id(self) -> str:
        self._ids += 1
        return f"paper-{self._ids}"

    def prices(self) -> dict[str, float]:
        return {sym: p for sym, m in self.markets.items() if (p := m.price()) is not None}

    def status(self) -> str:
        """One line: equity, open orders, ticks, public trades seen, age of the last event."""
        s = self.s
        orders_open = sum(len(ai.orders) for ai in s.assets)
        seen = sum(m.trades_seen for m in self.markets.values())
        age = time.monotonic() - self.last_event
        return (f"{type(s).__name__} paper equity {s.state.equity(self.prices()):.8g} {s.quote}  "
                f"orders {orders_open}  ticks {self.ticks}  trades seen {seen}  "
                f"last event {age:.1f}s ago")
