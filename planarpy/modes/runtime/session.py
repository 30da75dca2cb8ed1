"""The lifecycle every engine-run mode shares: start, tick, emit, request, stop.

A mode subclasses `Session` and supplies `_startup` (build the strategy, sync), the
candles before each tick (`refresh_candles`), what to do on stop (`_shutdown`), and the
prices its status line values holdings at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Mapping

import attrs
import ccxt

from ... import validate as V
from ...actions import Dispatch
from ...core.errors import PlanarError, StartupError, StartupInterrupted, UnknownSymbol
from ...core.market import Market
from ...data.ohlcv import OHLCV, align, timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig, close_client, open_client
from ...exchanges.redact import redact
from ...params import resolve as resolve_params
from ...strategy import Strategy
from . import stopping
from .engine import EngineThread
from .stopping import StopReport
from .watchers import Watcher

log = logging.getLogger(__name__)
STOP_GRACE = 15.0  # seconds beyond the stop deadline that `stop` waits for the engine

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
                 stall_after: float = 10.0, candles: int = 500, on_stop: str = "keep",
                 stop_timeout: float = stopping.DEFAULT_STOP_TIMEOUT,
                 params: Mapping[str, Any] | None = None,
                 handlers: Dispatch | None = None) -> None:
        self.cls = cls
        self.params = resolve_params(cls, params)  # checked before anything starts
        self.exchange = exchange
        self.keys = keys
        self.recorder = recorder
        self.handlers: Dispatch = handlers or {}  # the mode's `call` table, given at start
        self.tick_interval = timeframe_ms(cls.timeframe) / 1000 if tick_interval is None \
            else V.positive("seconds").value(tick_interval, "tick_interval")
        self.waitfor = V.non_negative("seconds").value(waitfor, "waitfor")
        self.stall_after = V.positive("seconds").value(stall_after, "stall_after")
        self.candles = V.count().value(candles, "candles")
        self.on_stop = stopping.ON_STOP_RULE.value(on_stop, "on_stop")
        self.stop_timeout = stopping.STOP_TIMEOUT_RULE.value(stop_timeout, "stop_timeout")
        self.stop_reason = "stop requested"
        self.stop_report: StopReport | None = None
        self.strategy_started = False  # whether the strategy's start() ran
        # a plain flag, not a threading.Event: a signal handler sets it, and an Event's
        # lock taken by the code the handler interrupted would deadlock it
        self._stop_asked = False
        self._warned = False  # an incomplete stop is logged once, however often stop() is called
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

    async def cancel_asset(self, ai: Any) -> None:
        """Cancel the asset's open orders (on_stop = "cancel")."""
        raise NotImplementedError

    async def close_asset(self, ai: Any) -> bool:
        """Cancel the asset's orders and close its position (on_stop = "close"); whether
        it is closed."""
        raise NotImplementedError

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

    async def start_strategy(self) -> None:
        """The strategy's start(), before its first tick."""
        self.strategy_started = True
        await self.engine.run_strategy(self.s.start)

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
                                             "params": dict(s.params), **started})

    # ---- lifecycle --------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> Any:
        """Start the engine thread; return the strategy once it is synced and running.

        StartupError (credentials removed from its message) if the start-up failed,
        StartupInterrupted if a stop was asked meanwhile. Whatever ends the wait (a
        failure, the timeout, a KeyboardInterrupt) stops the start-up before it returns.
        """
        self.engine.launch(self._main)
        try:
            self.engine.wait_ready(timeout)
        except BaseException as e:
            self._abandon(e)
            if isinstance(e, PlanarError) or not isinstance(e, Exception):
                raise  # planarpy's own errors, and KeyboardInterrupt
            # an exchange error may quote a signed URL: not shown
            raise StartupError(f"{self.cls.__name__} could not start: {self.describe(e)}") from None
        return self.s

    def _abandon(self, why: BaseException) -> None:
        """Stop a start-up that the caller gave up on, and wait for its stop sequence."""
        reason = "interrupted" if isinstance(why, KeyboardInterrupt) else "start-up abandoned"
        self.request_stop(reason)
        try:
            self.engine.join(self.stop_timeout + STOP_GRACE)
        except Exception:
            pass  # the start-up's own error is the one to report

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the run to stop (from any thread, a signal handler included: it takes no
        lock); it stops its start-up too. The first reason given is the one recorded."""
        if not self._stop_asked:
            self.stop_reason = reason
            self._stop_asked = True
        loop, event = self.engine.loop, self._stop
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop has closed: the run is over already
                pass

    def stop(self, timeout: float | None = None, reason: str = "stop requested") -> StopReport:
        """Stop the run and wait (up to `timeout`, default the stop deadline and a grace)
        for its stop sequence; the report of what it left open."""
        self.request_stop(reason)
        limit = self.stop_timeout + STOP_GRACE if timeout is None else timeout
        error = None
        try:
            self.engine.join(limit)
        except StartupInterrupted:
            pass
        except Exception as e:
            error = self.describe(e)
        if self.engine.thread is not None and self.engine.thread.is_alive():
            error = f"the engine did not stop within {limit:g} s"
        report = self.stop_report or StopReport(self.on_stop, self.stop_reason,
                                                tuple(self.open_now()))
        report = attrs.evolve(report, error=error) if error else report
        if not report.complete and not self._warned:
            self._warned = True
            log.warning("%s: %s", self.cls.__name__, report.summary())
        return report

    def open_now(self) -> list[str]:
        """What is open as the local state knows it, even while the engine is busy (the
        state lock is waited for briefly, then read without it)."""
        if self.s is None:
            return []
        held = self.engine.lock.acquire(timeout=0.5)
        try:
            return stopping.open_items(self.s)
        except RuntimeError:  # changed while read without the lock: once more
            return stopping.open_items(self.s)
        finally:
            if held:
                self.engine.lock.release()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        if self._stop_asked:
            self._stop.set()
        self.client = open_client(self.exchange, self.keys)
        try:
            try:
                started = await self._unless_stopped(self._startup())
            except Exception:
                await self._finish("start-up failed")
                raise
            if not started:
                await self._finish(self.stop_reason)
                raise StartupInterrupted(f"{self.cls.__name__}: start-up stopped "
                                         f"({self.stop_reason})")
            self.engine.ready()
            await self._run()
            await self._finish(self.stop_reason)
        finally:
            await self._stop_watchers()
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.close)  # a flush: off the loop
            await close_client(self.client)
            self._ended()

    async def stop_attempt(self) -> list[Any]:
        """One pass of on_stop's cancel or close (the stop retries while some is left);
        the spot assets whose sale failed."""
        unsold = []
        for ai in self.s.assets:
            if self.on_stop == "close":
                if not await self.close_asset(ai) and not ai.market.is_derivative:
                    unsold.append(ai)
            elif self.on_stop == "cancel" and ai.orders:
                await self.cancel_asset(ai)
        return unsold

    async def _stop_watchers(self) -> None:
        for w in list(self.watchers.values()):
            await w.stop()

    async def _unless_stopped(self, coro: Awaitable[Any]) -> bool:
        """Run `coro` unless a stop is asked first, which cancels it; whether it finished
        (its error, if it failed)."""
        task = asyncio.ensure_future(coro)
        asked = asyncio.ensure_future(self._stop.wait())  # type: ignore[union-attr]
        try:
            await asyncio.wait({task, asked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            asked.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled():
            return False
        task.result()
        return True

    async def _run(self) -> None:
        """Tick, with the mode's background loops beside, until a stop is asked."""
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(fn()) for fn in [self._tick_loop, *self._background()]]
        await self._stop.wait()  # type: ignore[union-attr]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _finish(self, reason: str) -> None:
        """The stop sequence. Each step is bounded by the stop deadline and none can skip
        the next: the strategy's stop(), the orders fired and not answered yet, on_stop's
        cancel or close (retried), then strategy_stopped with what is left open."""
        if self.s is None:  # nothing was built: nothing to stop
            self.stop_report = StopReport(self.on_stop, reason)
            return
        deadline = asyncio.get_running_loop().time() + self.stop_timeout
        if self.strategy_started:
            await self._bounded(self.engine.run_strategy(self.s.stop), deadline, "stop")
        await self._bounded(self.engine.drain(self.waitfor + 5.0), deadline, "stop")
        undone = await stopping.carry_out(self, deadline)
        await self._stop_watchers()  # nothing changes after strategy_stopped
        report = StopReport(self.on_stop, reason, tuple(stopping.open_items(self.s)),
                            tuple(undone))
        self.stop_report = report
        try:
            await self.emit("strategy_stopped", {
                "cash": self.s.state.cash, "committed": self.s.state.committed,
                "ticks": self.ticks, "reason": reason, "on_stop": self.on_stop,
                "still_open": list(report.still_open), "undone": list(report.undone)})
        except Exception as e:  # the report above stands; the trace's failure is its own
            self.errors.append(self.describe(e))

    async def _bounded(self, coro: Awaitable[Any], deadline: float, where: str) -> None:
        """Await one step of the stop sequence until `deadline`; its failure is reported."""
        try:
            await asyncio.wait_for(coro, max(0.01, deadline - asyncio.get_running_loop().time()))
        except asyncio.TimeoutError:
            await self.report_error(TimeoutError("not done by the stop deadline"), where=where)
        except Exception as e:
            await self.report_error(e, where=where)

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
        """An exception as one line with every credential, signature and listen key removed."""
        text = f"{type(e).__name__}: {e}"
        return redact(text, (self.keys.api_key, self.keys.secret, self.keys.password))[:500]

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
        health = getattr(self.recorder, "health", None)  # the trace: pending, failures
        return (f"{type(s).__name__}{label} equity {s.state.equity(self.prices()):.8g} {s.quote}  "
                f"orders {orders}  ticks {self.ticks}  {extra + '  ' if extra else ''}"
                f"last event {age:.1f}s ago{f'  {health()}' if health else ''}")


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
