"""A live run of one strategy: start-up sync, private watchers, REST candles."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Mapping

import ccxt

from ... import validate as V
from ...actions import Mode
from ...core.errors import ConfigError
from ...core.orders import Side
from ...data.ohlcv import OHLCV, concat, timeframe_ms
from ...exchanges import ApiKeys, ExchangeConfig
from ...strategy import Strategy
from ..runtime import ExchangeClock, Session, Watcher
from . import translate


_RUNNING: set[tuple[str, str, str]] = set()  # (exchange, key, client id prefix) in this process
_RUNNING_LOCK = threading.Lock()


def _claim(session: "LiveSession") -> None:
    """Refuse a second run with the same client id prefix on the same key in this process:
    each would take the other's orders for its own."""
    key = (session.exchange.id, session.keys.api_key, session.id_prefix)
    with _RUNNING_LOCK:
        if key in _RUNNING:
            raise ConfigError(f"a live run of {session.strategy_id!r} already trades on this key "
                              "in this process; give each run its own strategy_id")
        _RUNNING.add(key)
    session.claimed = key


class LiveSession(Session):
    """Runs a strategy against an exchange on its own engine thread.

    `start()` returns the strategy once markets, positions, balances, open orders and
    recent orders and trades are synced and the watchers run; `stop()` ends the tick
    loop, optionally cancels open orders and closes positions, and flushes the trace.
    """

    mode = Mode.LIVE

    def __init__(self, cls: type[Strategy], exchange: ExchangeConfig, keys: ApiKeys, *,
                 idle_stop: float = 60.0, history: int = 100, strategy_id: str | None = None,
                 **options: Any) -> None:
        super().__init__(cls, exchange, keys, **options)
        self.idle_stop = V.positive("seconds").value(idle_stop, "idle_stop")
        self.history = V.count("orders and trades").value(history, "history")
        self.exchange_ids: dict[str, str] = {}  # exchange order id -> local order id
        self.pending_trades: dict[str, list[Mapping[str, Any]]] = {}
        # whose orders are whose on a shared key: by default the class name; two runs of
        # one class on one key need ids of their own (`strategy_id`)
        self.strategy_id = strategy_id or cls.__name__
        self.id_prefix = translate.client_id_prefix(self.strategy_id)
        self.first_trade: dict[str, int] = {}  # symbol -> index of the run's first trade
        self.order_activity = time.monotonic()  # last order sent or order/trade applied
        self.claimed: tuple[str, str, str] | None = None
        self.fill_ms: dict[str, int] = {}  # symbol -> exchange time of its newest fill applied
        self.unconfirmed: dict[str, int] = {}  # fills applied from REST, not yet streamed
        self._ids = 0

    async def _startup(self) -> None:
        _claim(self)
        universe = await self.load_universe()
        s = self.cls(universe, mode=Mode.LIVE, clock=ExchangeClock(self.client),
                     params=self.params)
        await self.begin(s)
        await self.sync()
        await self.refresh_candles()
        await self.start_strategy()
        self.watchers["balance"] = Watcher(
            self, "balance", self.stream("watch_balance"),
            self._fetch_balance, self._on_balance, stall_after=self.stall_after)
        self.watchers["balance"].start()
        if s.margin == "isolated":
            syms = list(universe)
            self.watchers["positions"] = Watcher(
                self, "positions", self.stream("watch_positions", syms),
                lambda: self.request("fetch_positions", syms), self._on_positions,
                stall_after=self.stall_after)
            self.watchers["positions"].start()
        for ai in s.assets:
            if ai.orders:
                self.watch_orders(ai.symbol)

    async def sync(self) -> None:
        """Positions, balances, open orders (adopted) and recent orders and trades, then a
        summary event. Orders and trades of other planarpy strategies on the same key are
        left to them."""
        s = self.s
        if s.margin == "isolated":  # first: the cash is the balance less their margin
            await self._on_positions(await self.request("fetch_positions", [a.symbol for a in s.assets]))
        await self._on_balance(await self._fetch_balance())
        if s.margin == "isolated":
            await self._sync_leverage()
        adopted = others = 0
        history: list[dict[str, Any]] = []
        closed: list[dict[str, Any]] = []
        for ai in s.assets:
            owners = {}  # exchange order id -> client id, of every order in sight
            for o in await self.request("fetch_open_orders", ai.symbol):
                owners[str(o.get("id"))] = translate.client_id(o) or str(o.get("id"))
                if await self.adopt(ai, o):
                    adopted += 1
                others += not self.owns(owners[str(o.get("id"))])
            for o in await self._recent("fetch_orders", ai.symbol):
                cid = owners[str(o.get("id"))] = translate.client_id(o) or str(o.get("id"))
                if o.get("status") != "open" and self.owns(cid):
                    closed.append(translate.closed_order_summary(o, cid))
            for t in await self._recent("fetch_my_trades", ai.symbol):
                # a trade of an order out of sight may be another strategy's: left out
                lid = owners.get(str(t.get("order"))) or translate.client_id(t)
                if not lid or not self.owns(lid):
                    continue
                side = Side(t["side"])
                pos = translate.position_side(ai, t, side)
                history.append(translate.trade_payload(ai, t, lid, side, pos, ai.leverage))
        await self.emit("sync_result", {"adopted_orders": adopted, "trades": history,
                                        "closed_orders": closed, "cash": s.state.cash,
                                        "others_open_orders": others,
                                        "positions": [{"symbol": a.symbol, "amount": p.amount,
                                                       "side": p.side.value}
                                                      for a in s.assets for p in (a.long, a.short)
                                                      if p.amount > 0]})
        self.first_trade = {ai.symbol: len(ai.trades) for ai in s.assets}

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

    async def _recent(self, method: str, symbol: str) -> list[Any]:
        """The last `history` orders (of any status) or trades of `symbol`; none where
        the exchange cannot list them."""
        try:
            return await self.request(method, symbol, None, self.history)
        except ccxt.NotSupported:
            return []

    def owns(self, client_id: str) -> bool:
        """Whether an order is this strategy's to keep: one it placed, or one placed by
        hand (or by a planarpy before client ids named their strategy), which every
        strategy trading its symbol adopts; not one of another planarpy strategy."""
        return not translate.is_planarpy_id(client_id) or client_id.startswith(self.id_prefix)

    async def adopt(self, ai: Any, o: Mapping[str, Any]) -> bool:
        """Make an order found open on the exchange a local order (once), if it is ours."""
        exid = str(o.get("id"))
        if exid in self.exchange_ids:
            return False
        lid = translate.client_id(o) or exid
        if not self.owns(lid):
            return False
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
            open_ids = {cid for o in await self.request("fetch_open_orders", ai.symbol)
                        if self.owns(cid := translate.client_id(o) or str(o.get("id")))}
            if open_ids != set(ai.orders):
                out.append(f"{ai.symbol} open orders: local {sorted(ai.orders)}, "
                           f"exchange {sorted(open_ids)}")
        return out

    def _ended(self) -> None:
        with _RUNNING_LOCK:
            _RUNNING.discard(self.claimed)  # type: ignore[arg-type]
        self.claimed = None

    async def cancel_asset(self, ai: Any) -> None:
        from . import orders
        await orders.cancel(self, ai, None, None, waitfor=self.waitfor, confirm=True)

    async def close_asset(self, ai: Any) -> bool:
        from . import orders
        return await orders.close_position(self, ai, None)

    # ---- watchers' processing ---------------------------------------------------------
    async def _fetch_balance(self) -> dict[str, Any]:
        """The account's balances by REST: a complete snapshot, so a currency of the
        strategy it leaves out (exchanges omit zero balances) is zero."""
        b = dict(await self.request("fetch_balance"))
        s = self.s
        for part in ("total", "free"):
            b[part] = dict(b.get(part) or {})
            for currency in [s.quote] + [ai.market.base for ai in s.assets
                                         if not ai.market.is_derivative]:
                b[part].setdefault(currency, 0.0)
        return b

    async def _on_balance(self, b: Mapping[str, Any]) -> None:
        """Apply balances, unless they are older than a fill already applied (a stream
        that lags the order replies would otherwise take the state back in time)."""
        if self._stale(b, self.fill_ms.values()):
            return
        await self.emit("balance_updated", translate.balance_payload(b))

    async def _on_positions(self, positions: Any) -> None:
        for p in positions or []:
            ai = self.s.state.assets.get(p.get("symbol"))
            if ai is None:
                continue
            if self._stale(p, [self.fill_ms.get(ai.symbol, 0)]):
                continue
            await self.emit("position_updated", translate.position_payload(ai, p), ai.symbol)

    def _stale(self, update: Mapping[str, Any], fills: Any) -> bool:
        """Whether an exchange update was made before the newest of `fills` (ms times): an
        older time, or the same millisecond as a fill the stream has not brought yet (the
        stream sends a fill before the balances that include it). One without a time is
        taken as current."""
        info = update.get("info") if isinstance(update.get("info"), Mapping) else {}
        ts = update.get("timestamp") or info.get("E") or info.get("T")
        if ts is None:
            return False
        newest = max(fills, default=0)
        return int(ts) < newest or (int(ts) == newest and newest in self.unconfirmed.values())

    async def emit(self, kind: str, payload: Any, symbol: str | None = None) -> Any:
        effect = await super().emit(kind, payload, symbol)
        if effect.trade is not None and effect.symbol is not None:
            self.fill_ms[effect.symbol] = max(self.fill_ms.get(effect.symbol, 0), effect.trade.date)
        return effect

    async def emit_rest_fill(self, kind: str, payload: Any, symbol: str) -> Any:
        """Apply a fill learnt by REST (an order's reply, a fetch), ahead of the stream:
        until the stream brings it too, the stream's balances are older than it."""
        effect = await self.emit(kind, payload, symbol)
        if effect.trade is not None:
            self.unconfirmed[effect.trade.id] = effect.trade.date
            while len(self.unconfirmed) > 1000:  # fills the stream never brought
                del self.unconfirmed[next(iter(self.unconfirmed))]
        return effect

    def seen_fill(self, t: Mapping[str, Any]) -> None:
        """The stream brought fill `t`: balances it sends from now on include it."""
        if self.unconfirmed:
            self.unconfirmed.pop(str(t.get("id")), None)

    def watch_orders(self, symbol: str) -> None:
        """Start (or keep) the account's orders and my-trades watchers; `symbol` has just
        had an order sent. Their REST fallback fetches every asset with an open order.

        The streams are read account-wide, not per symbol: an exchange sends one user-data
        stream for all symbols, and ccxt's per-symbol read filters its whole cache on every
        message (a quarter of a busy run's CPU); `on_order` ignores symbols not in the universe.
        """
        from . import orders
        self.order_activity = time.monotonic()
        for kind, stream, fetch, process in (
                ("orders", "watch_orders", orders.fetch_order_updates, orders.on_orders),
                ("trades", "watch_my_trades", orders.fetch_trade_updates, orders.on_trades)):
            w = self.watchers.get(kind)
            if w is None:
                w = Watcher(self, kind, self.stream(stream),
                            lambda f=fetch: f(self, self.symbols_with_orders()),
                            lambda d, p=process: p(self, d), stall_after=self.stall_after)
                self.watchers[kind] = w
            w.start()

    def symbols_with_orders(self) -> list[str]:
        return [ai.symbol for ai in self.s.assets if ai.orders]

    async def _after_tick(self) -> None:
        """Stop the orders and trades watchers once no order is open and no order was sent
        or updated for `idle_stop` seconds."""
        if self.symbols_with_orders() or time.monotonic() - self.order_activity < self.idle_stop:
            return
        # both cancelled before any await: an order sent meanwhile restarts them cleanly
        tasks = [t for kind in ("orders", "trades") if kind in self.watchers
                 for t in self.watchers[kind].detach()]
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)

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
        if len(series) == len(s.assets):
            await self.use_candles(series)

    def new_client_id(self) -> str:
        """A client order id unique across restarts and strategies: the strategy's prefix,
        a time stamp and a counter."""
        self._ids = (self._ids + 1) % 10_000
        return translate.new_client_id(self.id_prefix, int(time.time() * 1000), self._ids)
