"""The lifecycle every engine-run mode shares: start, tick, emit, request, stop.

A mode subclasses `Session` and supplies `_startup` (build the strategy, sync), where its
candles come from (`candle_rows`), what to do on stop (`_shutdown`), and the prices its
status line values holdings at.

Ticks: `tick` runs once for every candle of the strategy's timeframe that closes, in
order, with `s.i` on that candle, as in a backtest. The loop sleeps until the next close
by the exchange's clock (the wall clock corrected by the offset ccxt measured, or the
clock given as `clock`), fetches what closed, and ticks each new candle. Candles closed
while it could not tick (a slow tick, an outage) are ticked in order, at most `backlog`
of them; older ones are too old to act on: they join the candles and indicators but are
not ticked, and a `ticks_skipped` event says so. A tick still running when the next
candle closes is reported (`tick_overrun`); the candle it missed is ticked after it.
With `tick_interval` set, `on_interval` runs that often between closes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

import attrs
import ccxt

from ... import validate as V
from ...actions import Mode, pipeline
from ...actions.engine import Engine
from ...actions.requests import CancelOrders, ClosePosition
from ...core.errors import PlanarError, StartupError, StartupInterrupted, UnknownSymbol
from ...core.instances import AssetInstance
from ...core.market import Market
from ...core.risk import MINUTE_MS, Breach, RiskRules, RiskState, TradingState, rules_for
from ...data.ohlcv import timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig, close_client, open_client
from ...exchanges.redact import redact
from ...params import resolve as resolve_params
from ...strategy import Strategy, check_instance
from . import carry, stopping
from .candles import extend, newest_closed, sleep_toward, start_series, wall_seconds
from .breakers import EquityWatch
from .control import ControlServer
from .engine import EngineThread, ExchangeClock
from .executor import SessionExecutor
from .stopping import StopReport
from .shadow import Shadow, ShadowConfig
from .supervision import DEFAULT_CHECKPOINT_EVERY, Supervisor
from .watchers import Watcher

log = logging.getLogger(__name__)
STOP_GRACE = 15.0  # seconds beyond the stop deadline that `stop` waits for the engine

# ccxt's `has` flags for the streams the modes read (not all are plain camel case)
_HAS = {"watch_balance": "watchBalance", "watch_positions": "watchPositions",
        "watch_orders": "watchOrders", "watch_my_trades": "watchMyTrades",
        "watch_trades": "watchTrades", "watch_order_book": "watchOrderBook",
        "watch_ticker": "watchTicker", "watch_ohlcv": "watchOHLCV"}
PAGE = 1000  # candles per request (Binance's largest spot page)
HOUSEKEEPING = 1.0  # seconds between `_after_tick` runs while the loop waits
RETRY = 5.0  # seconds before the candles are fetched again after a failure
CLOCK_RESYNC = 3600.0  # seconds between measurements of the exchange clock's offset
CLOSE_AGAIN = 1.0  # seconds before a halt's close that is not done is tried again


class Session:
    """One strategy run on an engine thread against an exchange."""

    label = ""  # what the status line calls the mode
    mode: Mode  # set by each mode's session

    def __init__(self, cls: type[Strategy], exchange: ExchangeConfig, keys: ApiKeys, *,
                 recorder: Any = None, tick_interval: float | None = None, waitfor: float = 5.0,
                 stall_after: float = 10.0, candles: int = 500, on_stop: str = "keep",
                 stop_timeout: float = stopping.DEFAULT_STOP_TIMEOUT,
                 params: Mapping[str, Any] | None = None, clock: Any = None, backlog: int = 10,
                 close_delay: float = 0.25,
                 risk: RiskRules | Mapping[str, Any] | None = None,
                 control: str | Path | None = None,
                 checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY,
                 alerts: Any = None, shadow: Any = None) -> None:
        self.cls = cls
        self.params = resolve_params(cls, params)  # checked before anything starts
        self.exchange = exchange
        self.keys = keys
        self.recorder = recorder
        # the run's risk rules (RiskRules, or a table shaped like planar.toml's [risk])
        self.risk = rules_for(risk, {}, cls.__name__)
        # where `planarpy halt` finds the run (None: no control socket)
        self.control_dir = None if control is None else Path(control)
        self.control: ControlServer | None = None
        # seconds between on_interval calls within a candle; None: none (tick runs once
        # per closed candle whatever this is)
        self.tick_interval = None if tick_interval is None \
            else V.positive("seconds").value(tick_interval, "tick_interval")
        self.clock = clock  # the exchange's clock; None: the wall clock, offset-corrected
        # closed candles ticked in a row at most (catch-up)
        self.backlog = V.count("candles").value(backlog, "backlog")
        # seconds a closed candle is given to be published
        self.close_delay = V.non_negative("seconds").value(close_delay, "close_delay")
        self.tf = timeframe_ms(cls.timeframe)
        self.waitfor = V.wait().value(waitfor, "waitfor")
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
        self.s: Any = None  # the strategy, once built
        self.e: Engine = None  # type: ignore[assignment]  # its engine side (s.engine)
        self.client: Any = None
        self.watchers: dict[str, Watcher] = {}
        self.waiters: dict[str, asyncio.Event] = {}  # order id -> set on its first fill or end
        self.callers: dict[str, Any] = {}  # order id -> the call waiting for it (engine.soon)
        self.first_trades: dict[str, Any] = {}  # order id -> first fill, for waited orders
        self.last_event = time.monotonic()
        self.ticks = 0
        self.intervals = 0
        self.errors: list[str] = []
        self._stop: asyncio.Event | None = None
        self._next_tick: int | None = None  # index of the first candle not ticked yet
        self._tick_ended = 0  # exchange time at which the last tick returned
        self._refreshing = asyncio.Lock()
        self._housekept = 0.0
        self._clock_synced = time.monotonic()  # ccxt measures the offset as markets load
        self._next_interval = 0.0
        # checkpoints, alerts, health checks (`alerts`: planar.toml's [alerts] table)
        self.supervisor = Supervisor(self, checkpoint_every, alerts)
        # the shadow backtest beside the run (`shadow`: planar.toml's [shadow], or True)
        shadowing = ShadowConfig.of(shadow)
        self.shadow = Shadow(self, shadowing) if shadowing.enabled else None

    # ---- what a mode supplies ---------------------------------------------------------
    async def _startup(self) -> None:
        raise NotImplementedError

    def make_executor(self) -> SessionExecutor:
        """The mode's side of the order pipeline (`planarpy.actions.pipeline.Executor`)."""
        raise NotImplementedError

    async def cancel_asset(self, ai: AssetInstance) -> None:
        """Cancel the asset's open orders (on_stop = "cancel")."""
        await self.engine.run_strategy(
            lambda: pipeline.cancel_orders(self.e, CancelOrders(ai, confirm=True)))

    async def close_asset(self, ai: AssetInstance) -> bool:
        """Cancel the asset's orders and close its position (on_stop = "close"): through
        the pipeline, as a risk close-out (a halted run closes too); whether it is closed."""
        return bool(await self.engine.run_strategy(
            lambda: pipeline.close_position(self.e, ClosePosition(ai), by_risk=True)))

    async def candle_rows(self, symbol: str, since: int, through: int) -> list[Any]:
        """The exchange's candles of `symbol` opening in [since, through] (ccxt rows), by
        REST page by page; periods in which nothing traded have none."""
        out: list[Any] = []
        while since <= through:
            limit = min(PAGE, (through - since) // self.tf + 1)
            page = await self.request("fetch_ohlcv", symbol, self.s.timeframe, since, limit) or []
            kept = [r for r in page if since <= int(r[0]) <= through]
            out += kept
            if len(page) < limit or not kept or int(page[-1][0]) >= through:
                return out
            since = int(kept[-1][0]) + self.tf
        return out

    def _background(self) -> list[Callable[[], Awaitable[None]]]:
        """Extra loops to run beside the ticks."""
        return []

    async def _after_tick(self) -> None:
        """Housekeeping after each tick."""

    def prices(self) -> dict[str, float]:
        return {ai.symbol: float(ai.ohlcv.close[-1]) for ai in self.e.assets
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
        st = self.e.state  # what the run's summary counts from: equity, fills, fees
        self.baseline = (st.equity(self.prices()), len(st.trades), st.fees)
        if self.shadow is not None:
            await self.engine.run_strategy(self.shadow.attach)
        await self.engine.run_strategy(self.s.start)

    async def carry_over(self, tail: Callable[..., Any], measurements: bool,
                         windows: bool = False) -> None:
        """Start from the trading state (and, if `measurements`, the loss breakers'
        measurements; if `windows`, the rate windows) that the trace's earlier runs of this
        mode ended with, read with `tail` (`trace_tail`; see carry.py). Windows that
        damage hides leave the run HALTED until a reset."""
        path = getattr(self.recorder, "path", None)
        if path is None:
            return
        mode = self.mode.value
        unknown = False  # the rate windows: damage hid them
        if windows:
            now = self.e.clock.now()
            found = await asyncio.to_thread(carry.windows, path, tail, mode, self.e.state, now)
            if found is not None:
                await self.carry_windows(*found, now)
            unknown = found is None
        wanted = carry.KINDS if measurements and self.risk.checks_equity else carry.KINDS[:1]
        events = await asyncio.to_thread(carry.carried, path, tail, mode, wanted)
        if events is None or events:
            await self.engine.run_strategy(lambda: carry.restore(self.e, events, measurements))
        if unknown:
            await self.engine.run_strategy(lambda: carry.unknown_windows(self.e))
        if measurements:  # a later day than the carried one starts from its midnight
            self.equity.resume(self.e.clock.now(), self.tf)

    async def carry_windows(self, risk: RiskState, run: int | None, now: int) -> None:
        """Carry the rate windows an earlier run left (`risk`: those of run `run`) into
        this one (`risk_carried`): the creation times of its orders and the times of its
        order errors within the last minute before `now` (ms), so that the order throttle
        and the error-rate breaker go on counting where they were (a strategy that
        crash-loops on errors still trips the breaker). Applying it counts each time once
        (`core.risk.carry_times`), so a replay of the whole trace adds nothing twice."""
        created = [t for t in risk.orders if t > now - MINUTE_MS]
        errors = [t for t in risk.errors if t > now - MINUTE_MS]
        if created or errors:
            await self.emit("risk_carried", {"orders": created, "errors": errors, "ts": now,
                                             "carried_from": run})

    async def begin(self, s: Strategy, **started: Any) -> None:
        """Attach the built strategy to this session, reset it, record that it started."""
        e = s.engine
        e.executor = self.make_executor()
        e.dispatch = pipeline.HANDLERS
        e.recorder = self.recorder
        e.state.risk.rules = self.risk
        self.s, self.e = s, e
        self.equity = EquityWatch(e)
        self.supervisor.begin(s)
        s.reset()
        check_instance(s)
        await self.emit("strategy_started", {"strategy": self.cls.__name__,
                                             "mode": e.mode.value, "exchange": self.exchange.id,
                                             "universe": [ai.symbol for ai in e.assets],
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
            return stopping.open_items(self.e)
        except RuntimeError:  # changed while read without the lock: once more
            return stopping.open_items(self.e)
        finally:
            if held:
                self.engine.lock.release()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        if self._stop_asked:
            self._stop.set()
        self.client = open_client(self.exchange, self.keys)
        try:
            await self._open_control()
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
            if self.control is not None:
                await self.control.close()
            if self.recorder is not None:
                await asyncio.to_thread(self.recorder.close)  # a flush: off the loop
            await close_client(self.client)
            self.supervisor.close()
            self._ended()

    # ---- the kill switch --------------------------------------------------------------
    async def _open_control(self) -> None:
        """Listen for `planarpy halt` (when the run has a control directory)."""
        if self.control_dir is None:
            return
        server = ControlServer(self.control_dir, self.cls.__name__, self.exchange.id,
                               self.mode.value, self._on_control)
        await server.start()
        self.control = server

    async def _on_control(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one request of the control socket: the kill switch."""
        if request.get("command") != "halt":
            return {"ok": False, "error": f"unknown command {request.get('command')!r}; "
                                          "the commands are: halt"}
        reason, close = request.get("reason") or "halted from another terminal", \
            request.get("close")
        if not isinstance(reason, str) or close not in (None, True, False):
            return {"ok": False, "error": "halt takes a reason (text) and close (true, false "
                                          "or null)"}
        if self.s is None or not self.engine.running:
            return {"ok": False, "error": "the run is still starting: try again"}
        began = time.monotonic()
        await self.engine.run_strategy(lambda: self.halt_now(reason, close))
        unrecorded = await asyncio.to_thread(self.commit_trace)
        answer = {"ok": True, "state": self.e.state.risk.trading.value,
                  "open_orders": stopping.order_items(self.e),
                  "positions": stopping.position_items(self.e),
                  "to_close": stopping.closing_items(self.e) if self.e.close_due else [],
                  "seconds": round(time.monotonic() - began, 3)}
        return answer if unrecorded is None else {**answer, "unrecorded": unrecorded}

    def commit_trace(self) -> str | None:
        """Commit what the trace holds now (blocks), so that a halt the caller is told of
        survives a crash right after; why it could not (the events stay pending), or None."""
        flush = getattr(self.recorder, "flush", None)
        if flush is None:
            return None
        try:
            flush()
        except PlanarError as e:  # TraceError: the store cannot be written now
            return str(e)
        return None

    def halt_now(self, reason: str, close: bool | None = None) -> None:
        """The kill switch, as strategy code (holding the state lock): trading halted
        through the pipeline, every open order cancelled, positions closed if `close`."""
        pipeline.halt(self.e, reason, close)

    async def stop_attempt(self) -> list[Any]:
        """One pass of on_stop's cancel or close (the stop retries while some is left);
        the spot assets whose sale failed."""
        unsold = []
        for ai in self.e.assets:
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
        tasks = [loop.create_task(fn()) for fn in [self._tick_loop, self.supervisor.loop,
                                                   self._close_loop, *self._background()]]
        await self._stop.wait()  # type: ignore[union-attr]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_loop(self) -> None:
        """The close a halt asked for and could not finish yet (`pipeline.close_again`:
        its orders had to be cancelled first), tried again a second later, then twice as
        long after each try that leaves it undone, up to 10 s (a close the exchange keeps
        refusing must not send an order every second; one waiting for an order of unknown
        outcome goes within 10 s of its cancel)."""
        delay = CLOSE_AGAIN
        while True:
            await asyncio.sleep(delay)
            if not self.e.close_due:
                delay = CLOSE_AGAIN
                continue
            try:
                await self.engine.run_strategy(lambda: pipeline.close_again(self.e))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # could not: next time
                await self.report_error(e, where="close")
            delay = min(2 * delay, 10.0) if self.e.close_due else CLOSE_AGAIN

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
        await self._bounded(self.supervisor.final(), deadline, "stop")  # the last checkpoint
        await self._stop_watchers()  # nothing changes after strategy_stopped
        report = StopReport(self.on_stop, reason, tuple(stopping.open_items(self.e)),
                            tuple(undone))
        self.stop_report = report
        try:
            await self.emit("strategy_stopped", {
                "cash": self.e.state.cash, "committed": self.e.state.committed,
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
            return self.apply_now(kind, payload, symbol)

    def apply_now(self, kind: str, payload: Any, symbol: str | None = None,
                  note: Mapping[str, Any] | None = None) -> Any:
        """`emit`, by a caller that holds the state lock already (on the loop, or in a
        `call` from another thread)."""
        effect = self.e.emit(kind, payload, symbol, note)
        self.last_event = time.monotonic()
        if effect.order is not None:
            waiter = self.waiters.get(effect.order.id)
            if waiter is not None:
                if effect.trade is not None:
                    self.first_trades.setdefault(effect.order.id, effect.trade)
                if effect.trade is not None or not effect.order.is_open:
                    self._wake(waiter)
        return effect

    def _wake(self, waiter: asyncio.Event) -> None:
        """Set an event of the loop, from its thread or another one."""
        if self.engine.thread is not None and threading.get_ident() == self.engine.thread.ident:
            waiter.set()
        elif self.engine.loop is not None:
            self.engine.loop.call_soon_threadsafe(waiter.set)

    def alert(self, kind: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        """Raise an alert: logged, recorded, posted to the webhooks (never blocks)."""
        self.supervisor.alert(kind, message, details)

    async def halt_trading(self, rule: str, reason: str) -> None:
        """Halt trading as a breaker does (the trading state HALTED, recorded)."""
        await self.engine.run_strategy(lambda: self.trip_halt(rule, reason))

    def trip_halt(self, rule: str, reason: str) -> None:
        """`halt_trading`, as strategy code (holding the state lock)."""
        pipeline.trip(self.e, Breach(rule, reason, TradingState.HALTED))

    def supervision_metrics(self) -> dict[str, Any]:
        """A mode's figures for the shutdown line."""
        return {}

    async def record(self, kind: str, payload: Mapping[str, Any], symbol: str | None = None) -> None:
        """An event that changes no state (errors, connection news, requests, market data):
        it goes to the trace only, with no lock and nothing to apply."""
        if self.recorder is not None and self.s is not None:
            self.recorder.record(kind, dict(payload), symbol=symbol, ts=self.e.clock.now_ns())

    def describe(self, e: BaseException) -> str:
        """An exception as one line with every credential, signature and listen key removed."""
        text = f"{type(e).__name__}: {e}"
        return redact(text, (self.keys.api_key, self.keys.secret, self.keys.password))[:500]

    async def report_error(self, e: BaseException, where: str, symbol: str | None = None,
                           request: Mapping[str, Any] | None = None) -> None:
        """Record an exchange or connection error and tell on_error. One of an order
        request the strategy made (`request`: a submit or cancel that got no answer) is
        applied too: the error-rate breaker counts it, as it counts order errors."""
        message = self.describe(e)
        self.errors.append(message)
        payload = {"where": where, "error": message}
        if request is None or self.s is None:
            await self.record("exchange_error", payload, symbol)
        else:
            async with self.engine.mutating():
                self.e.emit("exchange_error", {**payload, "request": dict(request),
                                               "ts": self.e.clock.now()}, symbol)
                if self.e.state.risk.rules.max_errors_per_minute is not None:
                    pipeline.watch_errors(self.e)
        self.tell_error(where, message)

    def tell_error(self, where: str, message: str) -> None:
        """The strategy's on_error callback (a failing one is logged, not raised)."""
        if self.s is not None:
            self.e.invoke(self.s.on_error, where, message)

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

    # ---- candles -----------------------------------------------------------------------
    def exchange_clock(self) -> Any:
        """The exchange's clock: the one given, or the wall clock corrected by the offset
        ccxt measured from the server's time."""
        return self.clock if self.clock is not None else ExchangeClock(self.client)

    def history_candles(self) -> int:
        """Candles fetched at start: `candles`, or more if the warmup or lookback needs them."""
        s = self.s
        return max(self.candles, int(s.warmup_period()) + 1, int(s.lookback or 0) + 1)

    def settle_ms(self) -> int:
        """Exchange time a closed candle is given to be published (none on a stepped clock,
        which the exchange has caught up with when a step returns)."""
        return 0 if wall_seconds(self.e.clock, 1) is None else int(self.close_delay * 1000)

    def closed_through(self) -> int:
        """Open time of the newest candle closed (and published) by the exchange's clock."""
        return newest_closed(self.e.clock.now() - self.settle_ms(), self.tf)

    async def refresh_candles(self) -> None:
        """Add the candles closed since the last refresh (the last `history_candles()` at
        first) to every asset, flat where nothing traded, and append their indicators."""
        async with self._refreshing:
            s, assets = self.s, self.e.assets
            through = self.closed_through()
            have = assets[0].ohlcv if assets[0].ohlcv is not None and len(assets[0].ohlcv) \
                else None
            if have is not None and int(have.timestamp[-1]) >= through:
                return
            since = int(have.timestamp[-1]) + self.tf if have is not None \
                else through - (self.history_candles() - 1) * self.tf
            rows = {ai.symbol: await self.candle_rows(ai.symbol, since, through)
                    for ai in self.e.assets}
            if have is None:
                series = start_series(rows, through, s.timeframe, self.tf)
                if series is None:
                    return
            else:
                series = {ai.symbol: extend(ai.ohlcv, rows[ai.symbol], through, self.tf)
                          for ai in self.e.assets}
            async with self.engine.mutating():
                known = {ai.symbol: len(ai.ohlcv) if ai.ohlcv is not None else 0
                         for ai in self.e.assets}
                for ai in self.e.assets:  # all candles first: they stay aligned if one fails
                    ai.ohlcv = series[ai.symbol]
                for ai in self.e.assets:
                    self.e.update_indicators(ai, known[ai.symbol])

    # ---- ticks ------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            failed = not await self._guarded(self.refresh_candles, "candles")
            await self._guarded(self._tick_closed, "tick")
            await self._guarded(lambda: self._housekeeping(force=True), "housekeeping")
            await self._guarded(lambda: self._wait(failed), "tick")

    async def _guarded(self, step: Callable[[], Awaitable[Any]], where: str) -> bool:
        """Run one step of the loop; an error is reported (the loop goes on). False if so."""
        try:
            await step()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await self.report_error(e, where=where)
            return False

    async def _tick_closed(self) -> None:
        """Tick each candle closed since the last tick, oldest first (the newest only, at
        start), skipping those beyond the backlog and those within the warmup."""
        s = self.s
        n = len(self.e.assets[0].ohlcv) if self.e.assets[0].ohlcv is not None else 0
        if n == 0:
            return
        first = max(n - 1 if self._next_tick is None else self._next_tick, s.warmup_period())
        self._next_tick = n  # before ticking: whatever happens, no candle is ticked twice
        due = range(first, n)
        if len(due) > self.backlog:
            await self._skipped(due[:-self.backlog])
            due = due[-self.backlog:]
        for i in due:
            await self._tick_candle(i)

    async def _tick_candle(self, i: int) -> None:
        ts = int(self.e.assets[0].ohlcv.timestamp[i]) + self.tf  # the candle's close
        began = self._tick_ended = self.e.clock.now()
        try:
            await self.engine.run_strategy(lambda: self._tick(i, ts))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._tick_ended = self.e.clock.now()
            await self.report_error(e, where="tick")
        ended = self._tick_ended
        passed = ended // self.tf - began // self.tf
        if passed > 0:
            log.warning("%s: the tick of the candle closed at %d ran past %d close(s) "
                        "(%d ms); the candles closed meanwhile are ticked next",
                        self.cls.__name__, ts, passed, ended - began)
            await self.record("tick_overrun", {"candle": ts, "began": began, "ended": ended,
                                               "closes_passed": passed})

    def _tick(self, i: int, ts: int) -> None:
        """One tick of the strategy (run by `EngineThread.run_strategy`, so it may `call`),
        after the loss breakers looked at the equity at its close, as a backtest does."""
        self.s.i = i
        self.equity.before_tick(ts)
        if self.shadow is None:
            self.s.tick(ts)
        else:
            self.shadow.beside(i, ts)  # the tick, then the shadow's
        self.equity.after_tick(ts)
        self._tick_ended = self.e.clock.now()
        self.ticks += 1

    async def _skipped(self, skipped: range) -> None:
        o = self.e.assets[0].ohlcv
        first, last = (int(o.timestamp[i]) + self.tf for i in (skipped[0], skipped[-1]))
        log.warning("%s: %d closed candles (closes %d to %d) were not ticked: more than the "
                    "backlog of %d closed since the last tick", self.cls.__name__,
                    len(skipped), first, last, self.backlog)
        await self.record("ticks_skipped", {"count": len(skipped), "first": first, "last": last,
                                            "backlog": self.backlog})

    async def _wait(self, failed: bool) -> None:
        """Sleep until the next candle closes by the exchange's clock (sooner after a failed
        refresh), running `on_interval` every `tick_interval` meanwhile."""
        clock = self.e.clock
        o = self.e.assets[0].ohlcv
        if o is not None and len(o):  # the close after the newest candle fetched
            target = int(o.timestamp[-1]) + 2 * self.tf + self.settle_ms()
        else:
            target = (self.closed_through() + 2 * self.tf) + self.settle_ms()
        retry_at = time.monotonic() + RETRY if failed else None
        while (time.monotonic() < retry_at) if retry_at is not None else clock.now() < target:
            at_most = HOUSEKEEPING
            if self.tick_interval:
                left = self._next_interval - time.monotonic()
                if left <= 0:
                    await self._interval()
                    await self._housekeeping(force=True)
                    continue
                at_most = min(at_most, left)
            if retry_at is not None:
                at_most = min(at_most, retry_at - time.monotonic())
            await sleep_toward(clock, target, at_most)
            await self._housekeeping()

    async def _interval(self) -> None:
        self._next_interval = time.monotonic() + (self.tick_interval or 0)
        if self.s.i < 0:  # nothing ticked yet: no candle to be within
            return
        try:
            await self.engine.run_strategy(self._on_interval)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            await self.report_error(e, where="on_interval")

    def _on_interval(self) -> None:
        self.s.on_interval(self.e.clock.now())
        self.intervals += 1

    async def _housekeeping(self, force: bool = False) -> None:
        """`_after_tick`, and now and then a new measure of the exchange clock's offset,
        which decides when candles close (unless the run was given its clock)."""
        now = time.monotonic()
        if self.clock is None and now - self._clock_synced >= CLOCK_RESYNC:
            self._clock_synced = now
            await self.resync_clock()
        if force or now - self._housekept >= HOUSEKEEPING:
            self._housekept = now
            await self._after_tick()

    def status(self) -> str:
        """One line: equity, open orders, ticks, age of the last event."""
        s = self.s
        orders = sum(len(ai.orders) for ai in self.e.assets)
        age = time.monotonic() - self.last_event
        label = f" {self.label}" if self.label else ""
        extra = "  ".join(x for x in (self.status_extra(),
                                      self.shadow.status() if self.shadow else "") if x)
        health = getattr(self.recorder, "health", None)  # the trace: pending, failures
        trading = self.e.state.risk.trading
        if trading is not TradingState.ACTIVE:
            extra = f"trading {trading.value.upper()}" + (f"  {extra}" if extra else "")
        return (f"{type(s).__name__}{label} equity {self.e.state.equity(self.prices()):.8g} "
                f"{s.quote}  "
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
