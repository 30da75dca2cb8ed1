"""The lifecycle every engine-run mode shares: start, tick, emit, request, stop.

A mode subclasses `Session` and supplies `_startup` (build the strategy, sync), the
candles before each tick (`refresh_candles`), what to do on stop (`_shutdown`), and the
prices its status line values holdings at.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Awaitable, Callable, Mapping

import ccxt

from ...actions import Dispatch
from ...core.errors import PlanarError, StartupError, UnknownSymbol
from ...core.market import Market
from ...data.ohlcv import OHLCV, align, timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig, close_client, open_client
from ...strategy import Strategy
from .engine import EngineThread
from .watchers import Watcher

_SIGNATURE = re.compile(r"(signature|apiKey|secret|listenKey)=[^&\s\"']+", re.IGNORECASE)
# ccxt's `has` flags for the streams the modes read (not all are plain camel case)
_HAS = {"watch_balance": "watchBalance", "watch_positions": "watchPositions",
        "watch_orders": "watchOrders", "watch_my_trades": "watchMyTrades",
        "watch_trades": "watchTrades", "watch_order_book": "watchOrderBook",
        "watch_ticker": "watchTicker", "watch_ohlcv": "watchOHLCV"}


class Session:
    """One strategy run on an engine thread against an exchange."""

    label = ""  # what the status line calls the mode

    def __init__(self, cls: type[Strategy], exchange: ExchangeConfig, keys: ApiKeys, *,
                 recorder: Any = None, tick_interval: float | None = None, waitfor: float = 5.0,
                 stall_after: float = 10.0, candles: int = 500, cancel_on_stop: bool = False,
                 close_on_stop: bool = False, handlers: Dispatch | None = None) -> None:
        self.cls = cls
        self.exchange = exchange
        self.keys = keys
        self.recorder = recorder
        self.handlers: Dispatch = handlers or {}  # the mode's `call` table, given at start
        self.tick_interval = tick_interval if tick_interval is not None else \
            timeframe_ms(cls.timeframe) / 1000
        self.waitfor = waitfor
        self.stall_after = stall_after
        self.candles = candles
        self.cancel_on_stop = cancel_on_stop
        self.close_on_stop = close_on_stop
        self.engine = EngineThread(cls.__name__, self.describe)
        self.s: Any = None
        self.client: Any = None
        self.watchers: dict[str, Watcher] = {}
        self.waiters: dict[str, asyncio.Event] = {}  # order id -> set on its first fill or end
        self.first_trades: dict[str, Any] = {}  # order id -> first fill, for waited orders
        self.last_event = time.monotonic()
        self.ticks = 0
        self.errors: list[str] = []
        self._stop: asyncio.Event | None = None

    # ---- what a mode supplies ---------------------------------------------------------
    async def _startup(self) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        """Cancel or close as configured; the base records the stop."""

    async def refresh_candles(self) -> None:
        raise NotImplementedError

    def _background(self) -> list[Callable[[], Awaitable[None]]]:
        """Extra loops to run beside the ticks."""
        return []

    async def _after_tick(self) -> None:
        """Housekeeping after each tick."""

    def prices(self) -> dict[str, float]:
        return {ai.symbol: float(ai.ohlcv.close[-1]) for ai in self.s.assets
                if ai.ohlcv is not None and len(ai.ohlcv)}

    def status_extra(self) -> str:
        return ""

    # ---- start-up helpers -------------------------------------------------------------
    async def load_universe(self) -> dict[str, Market]:
        """The strategy's markets as the exchange lists them (UnknownSymbol if one is not)."""
        markets = await self.request("load_markets")
        universe = {}
        for sym in self.cls.universe:
            if sym not in markets:
                raise UnknownSymbol(f"{sym!r} is not in {self.exchange.id}'s markets")
            universe[sym] = Market.from_ccxt(markets[sym], self.client.precisionMode)
        return universe

    async def begin(self, s: Strategy, **started: Any) -> None:
        """Attach the built strategy to this session, reset it, record that it started."""
        s.engine = self
        s.dispatch = self.handlers
        s.recorder = self.recorder
        self.s = s
        s.reset()
        await self.emit("strategy_started", {"strategy": self.cls.__name__,
                                             "mode": s.mode.value, "exchange": self.exchange.id,
                                             "universe": [ai.symbol for ai in s.assets],
                                             **started})

    # ---- lifecycle --------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Any:
        """Start the engine thread; return the strategy once it is synced and running.
        StartupError (credentials removed from its message) if the start-up failed."""
        try:
            self.engine.start(self._main, timeout)
        except PlanarError:
            raise
        except Exception as e:  # an exchange error may quote a signed URL: not shown
            raise StartupError(f"{self.cls.__name__} could not start: {self.describe(e)}") from None
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
            tasks = [loop.create_task(fn()) for fn in [self._tick_loop, *self._background()]]
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await self.engine.run_strategy(self.s.stop)
            except Exception as e:
                await self.report_error(e, where="stop")
            await self.engine.drain(self.waitfor + 5.0)  # orders fired and not yet answered
            await self._shutdown()
            await self.emit("strategy_stopped", {"cash": self.s.state.cash,
                                                 "committed": self.s.state.committed,
                                                 "ticks": self.ticks})
        finally:
            for w in list(self.watchers.values()):
                await w.stop()
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.close)  # a flush: off the loop
            await close_client(self.client)
            self._ended()

    def _ended(self) -> None:
        """What a mode lets go of when its run ends (or fails to start)."""

    # ---- events -----------------------------------------------------------------------
    async def emit(self, kind: str, payload: Any, symbol: str | None = None) -> Any:
        """Record and apply one event on the engine's loop, then wake who waits for it."""
        async with self.engine.mutating():
            effect = self.s.emit(kind, payload, symbol)
        self.last_event = time.monotonic()
        if effect.order is not None:
            waiter = self.waiters.get(effect.order.id)
            if waiter is not None:
                if effect.trade is not None:
                    self.first_trades.setdefault(effect.order.id, effect.trade)
                if effect.trade is not None or not effect.order.is_open:
                    waiter.set()
        return effect

    async def record(self, kind: str, payload: Mapping[str, Any], symbol: str | None = None) -> None:
        """An event that changes no state (errors, connection news, requests, market data):
        it goes to the trace only, with no lock and nothing to apply."""
        if self.recorder is not None and self.s is not None:
            self.recorder.record(kind, dict(payload), symbol=symbol, ts=self.s.clock.now_ns())

    def describe(self, e: BaseException) -> str:
        """An exception as one line with every credential and signature removed."""
        text = f"{type(e).__name__}: {e}"
        return self.keys.redact(_SIGNATURE.sub(r"\1=***", text))[:500]

    async def report_error(self, e: BaseException, where: str, symbol: str | None = None) -> None:
        message = self.describe(e)
        self.errors.append(message)
        await self.record("exchange_error", {"where": where, "error": message}, symbol)
        self.tell_error(where, message)

    def tell_error(self, where: str, message: str) -> None:
        """The strategy's on_error callback (a failing one is logged, not raised)."""
        if self.s is not None:
            self.s.invoke(self.s.on_error, where, message)

    async def request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the ccxt client, recording the request and its response or error."""
        tracing = self.recorder is not None
        if tracing:
            await self.record("request_sent", {"method": method, "args": _plain(args),
                                               "params": _plain(kwargs.get("params"))})
        try:
            try:
                result = await getattr(self.client, method)(*args, **kwargs)
            except ccxt.InvalidNonce as e:
                # the exchange refused our time stamp (the clocks drifted apart since the
                # start): nothing was done; measure the offset again and retry once
                await self.record("exchange_error", {"method": method, "error": self.describe(e)})
                try:
                    await self.resync_clock()
                except Exception:
                    raise e from None  # the refusal is what the caller must see
                result = await getattr(self.client, method)(*args, **kwargs)
        except Exception as e:
            await self.record("exchange_error", {"method": method, "error": self.describe(e)})
            raise
        if tracing:
            await self.record("response_received", {"method": method, "result": _summary(result)})
        return result

    async def resync_clock(self) -> None:
        """Measure the exchange clock's offset again (ccxt signs with it)."""
        offset = await self.client.load_time_difference()
        await self.record("clock_resynced", {"offset_ms": offset})

    def stream(self, method: str, *args: Any) -> Callable[[], Awaitable[Any]] | None:
        """A callable reading one message of a ccxt.pro stream, or None if there is none."""
        fn = getattr(self.client, method, None)
        if fn is None or not self.client.has.get(_HAS.get(method, method)):
            return None
        return lambda: fn(*args)

    # ---- ticks ------------------------------------------------------------------------
    async def use_candles(self, series: Mapping[str, OHLCV]) -> None:
        """Give each asset its closed candles (aligned) and recompute the indicators."""
        s = self.s
        _, aligned = align(dict(series), s.timeframe)
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
                    await self.engine.run_strategy(self._tick)
                await self._after_tick()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self.report_error(e, where="tick")
            await asyncio.sleep(self.tick_interval)

    def _tick(self) -> None:
        """One tick of the strategy (run by `EngineThread.run_strategy`, so it may `call`)."""
        s = self.s
        ohlcv = s.assets[0].ohlcv
        ts = int(ohlcv.timestamp[-1]) + timeframe_ms(s.timeframe) if ohlcv is not None \
            else s.clock.now()
        s.tick(ts)
        self.ticks += 1

    def status(self) -> str:
        """One line: equity, open orders, ticks, age of the last event."""
        s = self.s
        orders = sum(len(ai.orders) for ai in s.assets)
        age = time.monotonic() - self.last_event
        label = f" {self.label}" if self.label else ""
        extra = self.status_extra()
        return (f"{type(s).__name__}{label} equity {s.state.equity(self.prices()):.8g} {s.quote}  "
                f"orders {orders}  ticks {self.ticks}  {extra + '  ' if extra else ''}"
                f"last event {age:.1f}s ago")


def _plain(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return str(v)


def _summary(result: Any) -> Any:
    """A response as recorded: ccxt structures without `info`, candle lists as a count."""
    if isinstance(result, list):
        if result and isinstance(result[0], list):
            return {"rows": len(result), "first": result[0][0], "last": result[-1][0]}
        return [_summary(x) for x in result[:200]]
    if isinstance(result, Mapping):
        if len(result) > 3 and all(isinstance(v, Mapping) and "symbol" in v
                                   for v in list(result.values())[:3]):
            return {"markets": len(result)}
        return {k: _plain(v) for k, v in result.items() if k != "info"}
    return _plain(result)
