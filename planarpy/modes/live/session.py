"""A live run of one strategy: start-up sync, watchers, the tick loop, and clean stops."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Mapping

import ccxt
import numpy as np

from ...actions import Mode
from ...core.errors import ConfigError, UnknownSymbol
from ...core.market import Market
from ...core.orders import Order, OrderType, Side
from ...data.ohlcv import OHLCV, align, concat, timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig, close_client, open_client
from ...strategy import Strategy
from . import translate
from .engine import EngineThread, LiveClock
from .watchers import Watcher

_SIGNATURE = re.compile(r"(signature|apiKey|secret|listenKey)=[^&\s\"']+", re.IGNORECASE)


class LiveSession:
    """Runs a strategy against an exchange on its own engine thread.

    `start()` returns the strategy once markets, balances, positions, open orders and
    recent trades are synced and the watchers run; `stop()` ends the tick loop, optionally
    cancels open orders and closes positions, and flushes the trace.
    """

    mode = Mode.LIVE

    def __init__(self, cls: type[Strategy], exchange: ExchangeConfig, keys: ApiKeys, *,
                 recorder: Any = None, tick_interval: float | None = None, waitfor: float = 5.0,
                 stall_after: float = 10.0, idle_stop: float = 60.0, candles: int = 500,
                 cancel_on_stop: bool = False, close_on_stop: bool = False,
                 history: int = 100) -> None:
        self.cls = cls
        self.exchange = exchange
        self.keys = keys
        self.recorder = recorder
        self.tick_interval = tick_interval if tick_interval is not None else \
            timeframe_ms(cls.timeframe) / 1000
        self.waitfor = waitfor
        self.stall_after = stall_after
        self.idle_stop = idle_stop
        self.candles = candles
        self.cancel_on_stop = cancel_on_stop
        self.close_on_stop = close_on_stop
        self.history = history
        self.engine = EngineThread(cls.__name__)
        self.s: Any = None
        self.client: Any = None
        self.watchers: dict[str, Watcher] = {}
        self.exchange_ids: dict[str, str] = {}  # exchange order id -> local order id
        self.pending_trades: dict[str, list[Mapping[str, Any]]] = {}
        self.waiters: dict[str, asyncio.Event] = {}
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
            ticker = asyncio.get_running_loop().create_task(self._tick_loop())
            await self._stop.wait()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
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
        s = self.cls(universe, mode=Mode.LIVE, clock=LiveClock(self.client))
        s.engine = self
        s.recorder = self.recorder
        self.s = s
        s.reset()
        await self.emit("strategy_started", {"strategy": self.cls.__name__, "mode": "live",
                                             "exchange": self.exchange.id,
                                             "universe": list(universe)})
        await self.sync()
        await self.refresh_candles()
        await asyncio.to_thread(self._in_strategy_thread, s.start)
        self.watchers["balance"] = Watcher(
            self, "balance", self._stream("watch_balance"),
            lambda: self.request("fetch_balance"), self._on_balance, stall_after=self.stall_after)
        self.watchers["balance"].start()
        if s.margin == "isolated":
            syms = list(universe)
            self.watchers["positions"] = Watcher(
                self, "positions", self._stream("watch_positions", syms),
                lambda: self.request("fetch_positions", syms), self._on_positions,
                stall_after=self.stall_after)
            self.watchers["positions"].start()
        for ai in s.assets:
            if ai.orders:
                self.watch_orders(ai.symbol)

    def _stream(self, method: str, *args: Any) -> Any:
        """A callable reading one message of a ccxt.pro stream, or None if there is none."""
        head, *rest = method.split("_")
        camel = head + "".join(w.title() for w in rest)
        fn = getattr(self.client, method, None)
        if fn is None or not self.client.has.get(camel):
            return None
        return lambda: fn(*args)

    async def sync(self) -> None:
        """Balances, positions, open orders (adopted) and recent trades, then a summary event."""
        s = self.s
        await self._on_balance(await self.request("fetch_balance"))
        if s.margin == "isolated":
            await self._on_positions(await self.request("fetch_positions", [a.symbol for a in s.assets]))
            await self._sync_leverage()
        adopted = 0
        history = []
        for ai in s.assets:
            for o in await self.request("fetch_open_orders", ai.symbol):
                if await self.adopt(ai, o):
                    adopted += 1
            try:
                trades = await self.request("fetch_my_trades", ai.symbol, None, self.history)
            except ccxt.NotSupported:
                trades = []
            for t in trades:
                lid = self.exchange_ids.get(str(t.get("order"))) or translate.client_id(t) or \
                    f"x{t.get('order')}"
                o = Order(lid, ai.symbol, Side(t["side"]), OrderType.LIMIT, 0.0, 0.0, 0,
                          pos=translate.position_side(ai, t, Side(t["side"])),
                          leverage=ai.leverage)
                history.append(translate.trade_payload(ai, t, o))
        await self.emit("sync_result", {"adopted_orders": adopted, "trades": history,
                                        "cash": s.state.cash,
                                        "positions": [{"symbol": a.symbol, "amount": p.amount,
                                                       "side": p.side.value}
                                                      for a in s.assets for p in (a.long, a.short)
                                                      if p.amount > 0]})

    async def _sync_leverage(self) -> None:
        """An open position keeps its leverage; elsewhere the exchange gets the local one."""
        from . import orders
        for ai in self.s.assets:
            pos = ai.open_position()
            if pos is not None:
                await self.emit("leverage_updated", {"symbol": ai.symbol,
                                                     "leverage": pos.leverage}, ai.symbol)
            else:
                await orders.set_leverage(self, ai, ai.leverage)

    async def adopt(self, ai: Any, o: Mapping[str, Any]) -> bool:
        """Make an order found open on the exchange a local order (once)."""
        exid = str(o.get("id"))
        if exid in self.exchange_ids:
            return False
        lid = translate.client_id(o) or exid
        self.exchange_ids[exid] = lid
        if lid in ai.orders:
            return False
        await self.emit("order_created", translate.order_payload(ai, o, lid, ai.leverage), ai.symbol)
        return True

    async def reconcile(self) -> list[str]:
        """Differences between the local state and the exchange's: cash, holdings, positions
        and open orders (empty when they agree)."""
        s = self.s
        out: list[str] = []
        balance = await self.request("fetch_balance")
        total = balance.get("total") or {}
        held = sum(p.margin for ai in s.assets for p in (ai.long, ai.short))
        exchange_cash = float(total.get(s.quote) or 0.0) - held
        if abs(exchange_cash - s.state.cash) > 1e-9 * max(1.0, abs(exchange_cash)):
            out.append(f"cash: local {s.state.cash!r}, exchange {exchange_cash!r}")
        positions = {}
        if s.margin == "isolated":
            for p in await self.request("fetch_positions", [a.symbol for a in s.assets]):
                if float(p.get("contracts") or 0):
                    positions[(p["symbol"], (p.get("side") or "long").lower())] = float(p["contracts"])
        for ai in s.assets:
            m = ai.market
            if not m.is_derivative:
                theirs = float(total.get(m.base) or 0.0)
                if abs(theirs - ai.balance) > 1e-9 * max(1.0, abs(theirs)):
                    out.append(f"{ai.symbol} balance: local {ai.balance!r}, exchange {theirs!r}")
            for p in (ai.long, ai.short):
                theirs = positions.get((ai.symbol, p.side.value), 0.0)
                if abs(theirs - p.amount) > m.amount_step * 1e-6:
                    out.append(f"{ai.symbol} {p.side.value}: local {p.amount!r}, exchange {theirs!r}")
            open_ids = {translate.client_id(o) or str(o.get("id"))
                        for o in await self.request("fetch_open_orders", ai.symbol)}
            if open_ids != set(ai.orders):
                out.append(f"{ai.symbol} open orders: local {sorted(ai.orders)}, "
                           f"exchange {sorted(open_ids)}")
        return out

    async def _shutdown(self) -> None:
        from . import orders
        try:
            await asyncio.to_thread(self._in_strategy_thread, self.s.stop)
        except Exception as e:
            await self.report_error(e, where="stop")
        if self.close_on_stop:
            for ai in self.s.assets:
                await orders.close_position(self, ai, None)
        elif self.cancel_on_stop:
            for ai in self.s.assets:
                if ai.orders:
                    await orders.cancel(self, ai, None, None, waitfor=self.waitfor, confirm=True)
        await self.emit("strategy_stopped", {"cash": self.s.state.cash,
                                             "committed": self.s.state.committed,
                                             "ticks": self.ticks})

    # ---- events -----------------------------------------------------------------------
    async def emit(self, kind: str, payload: Mapping[str, Any], symbol: str | None = None) -> Any:
        """Record and apply one event on the engine's loop, then wake who waits for it."""
        async with self.engine.mutating():
            effect = self.s.emit(kind, payload, symbol)
        self.last_event = time.monotonic()
        if effect.order is not None:
            waiter = self.waiters.get(effect.order.id)
            if waiter is not None and (effect.trade is not None or not effect.order.is_open):
                waiter.set()
        return effect

    async def record(self, kind: str, payload: Mapping[str, Any], symbol: str | None = None) -> None:
        """An event that changes no state (errors, connection news, requests): it goes to
        the trace only, with no lock and nothing to apply."""
        if self.recorder is not None and self.s is not None:
            self.recorder.record(kind, dict(payload), symbol=symbol, ts=self.s.clock.now_ns())
        self.last_event = time.monotonic()

    def describe(self, e: BaseException) -> str:
        """An exception as one line with every credential and signature removed."""
        text = f"{type(e).__name__}: {e}"
        return self.keys.redact(_SIGNATURE.sub(r"\1=***", text))[:500]

    async def report_error(self, e: BaseException, where: str, symbol: str | None = None) -> None:
        message = self.describe(e)
        self.errors.append(message)
        await self.record("exchange_error", {"where": where, "error": message}, symbol)
        self.s.on_error(where, message)

    async def request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the ccxt client, recording the request and its response or error."""
        tracing = self.recorder is not None
        if tracing:
            await self.record("request_sent", {"method": method, "args": _plain(args),
                                               "params": _plain(kwargs.get("params"))})
        try:
            result = await getattr(self.client, method)(*args, **kwargs)
        except Exception as e:
            await self.record("exchange_error", {"method": method, "error": self.describe(e)})
            raise
        if tracing:
            await self.record("response_received", {"method": method, "result": _summary(result)})
        return result

    # ---- watchers' processing ---------------------------------------------------------
    async def _on_balance(self, b: Mapping[str, Any]) -> None:
        await self.emit("balance_updated", translate.balance_payload(b))

    async def _on_positions(self, positions: Any) -> None:
        for p in positions or []:
            ai = self.s.state.assets.get(p.get("symbol"))
            if ai is not None:
                await self.emit("position_updated", translate.position_payload(ai, p), ai.symbol)

    def watch_orders(self, symbol: str) -> None:
        """Start (or keep) the orders and my-trades watchers of `symbol`."""
        from . import orders
        for kind, stream, fetch, process in (
                ("orders", "watch_orders", orders.fetch_order_updates, orders.on_orders),
                ("trades", "watch_my_trades", orders.fetch_trade_updates, orders.on_trades)):
            name = f"{kind}:{symbol}"
            w = self.watchers.get(name)
            if w is None:
                w = Watcher(self, name, self._stream(stream, symbol),
                            lambda f=fetch: f(self, symbol), lambda d, p=process: p(self, d),
                            symbol=symbol, stall_after=self.stall_after)
                self.watchers[name] = w
            w.start()

    async def _stop_idle_watchers(self) -> None:
        now = time.monotonic()
        for ai in self.s.assets:
            if ai.orders or now - self.last_event < self.idle_stop:
                continue
            for kind in ("orders", "trades"):
                w = self.watchers.get(f"{kind}:{ai.symbol}")
                if w is not None and w.running:
                    await w.stop()

    # ---- candles and ticks ------------------------------------------------------------
    async def refresh_candles(self) -> None:
        """Fetch the candles closed since the last refresh (the last `candles` at first) for
        every asset, and recompute the indicators."""
        s = self.s
        tf = timeframe_ms(s.timeframe)
        now = s.clock.now()
        series = {}
        for ai in s.assets:
            have = ai.ohlcv if ai.ohlcv is not None and len(ai.ohlcv) else None
            since = int(have.timestamp[-1]) + tf if have is not None else None
            rows = await self.request("fetch_ohlcv", ai.symbol, s.timeframe, since,
                                      None if since is not None else self.candles)
            # the exchange's newest candle is the one still forming, unless time says it closed
            if rows and rows[-1][0] + tf > now:
                rows = rows[:-1]
            if have is not None:
                rows = [r for r in rows if r[0] >= since]
                if not rows:
                    series[ai.symbol] = have
                    continue
                series[ai.symbol] = concat(have, OHLCV.from_rows(rows))[-self.candles:]
            elif rows:
                series[ai.symbol] = OHLCV.from_rows(rows)
        if len(series) < len(s.assets):
            return
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
                await self._stop_idle_watchers()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self.report_error(e, where="tick")
            await asyncio.sleep(self.tick_interval)

    def _in_strategy_thread(self, callback: Any) -> None:
        """Run a strategy callback as strategy code runs: on a worker thread, under the lock,
        so that it may `call` (which waits on the engine's loop)."""
        with self.engine.locked():
            callback()

    def _tick_in_thread(self) -> None:
        s = self.s
        with self.engine.locked():
            ohlcv = s.assets[0].ohlcv
            ts = int(ohlcv.timestamp[-1]) + timeframe_ms(s.timeframe) if ohlcv is not None \
                else s.clock.now()
            s.tick(ts)
            self.ticks += 1

    def new_client_id(self) -> str:
        """A client order id unique across restarts: a time stamp and a counter."""
        self._ids += 1
        return f"pp{int(time.time() * 1000):x}{self._ids:04d}"

    def status(self) -> str:
        """One line: equity, open orders, age of the last event."""
        s = self.s
        prices = {ai.symbol: float(ai.ohlcv.close[-1]) for ai in s.assets
                  if ai.ohlcv is not None and len(ai.ohlcv)}
        orders = sum(len(ai.orders) for ai in s.assets)
        age = time.monotonic() - self.last_event
        return (f"{type(s).__name__} equity {s.state.equity(prices):.8g} {s.quote}  "
                f"orders {orders}  ticks {self.ticks}  last event {age:.1f}s ago")


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
        if all(isinstance(v, Mapping) and "symbol" in v for v in list(result.values())[:3]) \
                and len(result) > 3:
            return {"markets": len(result)}
        return {k: _plain(v) for k, v in result.items() if k != "info"}
    return _plain(result)
