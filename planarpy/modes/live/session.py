"""A live run of one strategy: start-up sync, private watchers; candles by REST (session.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import ccxt

from ... import validate as V
from ...actions import Mode
from ...core.errors import ConfigError
from ...core.orders import Side
from ...exchanges import ApiKeys, ExchangeConfig
from ...exchanges.venues import venue_for
from ...strategy import Strategy
from ...trace import trace_tail
from ..runtime import Session, Watcher
from . import emulation, inflight, reports, resume, translate
from .alignment import DEFAULT_EVERY, Aligner
from .executor import LiveExecutor
from .inflight import Flights
from .reconciler import HAND_ORDERS, REST, Reconciler


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
                 hand_orders: str = "adopt", inflight_every: float = 1.0,
                 adopt_every: float | None = 60.0, reconcile_every: float = DEFAULT_EVERY,
                 reconcile_policy: str = "warn", **options: Any) -> None:
        super().__init__(cls, exchange, keys, **options)
        self.idle_stop = V.positive("seconds").value(idle_stop, "idle_stop")
        self.history = V.count("orders and trades").value(history, "history")
        # whose orders are whose on a shared key: by default the class name; two runs of
        # one class on one key need ids of their own (`strategy_id`)
        self.strategy_id = strategy_id or cls.__name__
        self.id_prefix = translate.client_id_prefix(self.strategy_id)
        self.venue = venue_for(exchange.id)
        self.fills = Reconciler(self.venue, self.id_prefix,
                                V.one_of(*HAND_ORDERS).value(hand_orders, "hand_orders"),
                                clock=lambda: self.e.clock.now())
        self.flights = Flights()  # orders sent and not yet known to exist, or unknown
        self.trigger_seen: dict[str, int] = {}  # public trade time emulation.py applied up to
        self.trigger_streamed: dict[str, int] = {}  # newest public trade the stream delivered
        self.trigger_rearmed: dict[str, int] = {}  # order id -> a re-armed trailing stop's mark
        self.trigger_unsent: set[str] = set()  # fired emulated orders whose send has not started
        self.last_trade: dict[str, tuple[int, float]] = {}  # newest public trade: (time, price)
        self.inflight_every = V.positive("seconds").value(inflight_every, "inflight_every")
        self.limited_until = 0.0  # monotonic: the exchange's last 429 asked to wait until
        self.adopt_every = None if adopt_every is None else \
            V.positive("seconds").value(adopt_every, "adopt_every")
        # symbol -> index of the first trade after the balances the sync read (alignment)
        self.first_trade: dict[str, int] = {}
        # symbol -> indexes in its trades of the exchange's history: fills of orders the
        # trace did not know, found by this run's sync or by the earlier runs' it resumes
        self.history_trades: dict[str, set[int]] = {}
        self.order_activity = time.monotonic()  # last order sent or order/trade applied
        self.claimed: tuple[str, str, str] | None = None
        self._ids = 0
        # the periodic reconciliation and its policy (alignment.py)
        self.aligner = Aligner(self, reconcile_every, reconcile_policy)
        self.started_ms = 0  # exchange time of the start-up sync: fills after it are the run's

    async def _startup(self) -> None:
        _claim(self)
        universe = await self.load_universe()
        s = self.cls(universe, mode=Mode.LIVE, clock=self.exchange_clock(), params=self.params)
        await self.begin(s)
        # what settling the carried orders sets off (a bracket's exits, an OCO's other leg
        # cancelled) waits for the synced state: the exits need the balances it reads
        with self.engine.holding() as held:
            brackets = await resume.carry_over(self)  # the earlier runs' state and variables
            await self.sync()
            await self.refresh_candles()
            await self.carry_over(trace_tail, measurements=True)
            await emulation.rearm(self)
        await self.engine.release(held)
        await resume.finish_exits(self, brackets)
        await self.start_strategy()
        self.watchers["balance"] = Watcher(
            self, "balance", self.stream("watch_balance"), self._fetch_balance,
            lambda b: reports.on_balance(self, b), stall_after=self.stall_after,
            process_rest=lambda b: reports.on_balance(self, b, REST))
        self.watchers["balance"].start()
        if s.margin == "isolated":
            syms = list(universe)
            self.watchers["positions"] = Watcher(
                self, "positions", self.stream("watch_positions", syms),
                lambda: self.request("fetch_positions", syms),
                lambda p: reports.on_positions(self, p), stall_after=self.stall_after,
                process_rest=lambda p: reports.on_positions(self, p, REST))
            self.watchers["positions"].start()
        for ai in self.e.assets:
            if ai.orders:
                self.watch_orders(ai.symbol)

    async def sync(self) -> None:
        """Positions, balances, open orders (adopted) and recent orders and trades, then a
        summary event. Orders and trades of other planarpy strategies on the same key are
        left to them."""
        s = self.s
        self.started_ms = s.clock.now()
        if s.margin == "isolated":  # first: the cash is the balance less their margin
            await reports.on_positions(self, await self.request(
                "fetch_positions", [a.symbol for a in self.e.assets]), REST)
        await reports.on_balance(self, await self._fetch_balance(), REST)
        self.fills.baseline()  # what they show is where the run starts
        if s.margin == "isolated":
            await self._sync_leverage()
        adopted = others = 0
        history: list[dict[str, Any]] = []
        closed: list[dict[str, Any]] = []
        for ai in self.e.assets:
            owners = {}  # exchange order id -> client id, of every order in sight
            for o in await reports.fetch_open(self, ai.symbol):
                owners[str(o.get("id"))] = self.venue.client_id(o) or str(o.get("id"))
                verdict = await reports.on_order(self, o, REST)
                adopted += bool(verdict.events) and verdict.events[0][0] == "order_created"
                others += self.fills.owner(owners[str(o.get("id"))]) == "other"
            for o in await self._recent("fetch_orders", ai.symbol):
                cid = owners[str(o.get("id"))] = self.venue.client_id(o) or str(o.get("id"))
                if o.get("status") != "open" and self.owns(cid):
                    closed.append(translate.closed_order_summary(o, cid))
            for t in await self._recent("fetch_my_trades", ai.symbol):
                # a trade of an order out of sight may be another strategy's: left out
                lid = owners.get(str(t.get("order"))) or self.venue.client_id(t)
                if not lid or not self.owns(lid):
                    continue
                side = Side(t["side"])
                pos = translate.position_side(self.venue, ai, t, side)
                history.append(translate.trade_payload(ai, t, lid, side, pos, ai.leverage))
        known = {ai.symbol: len(ai.trades) for ai in self.e.assets}  # carried over, settled
        await self.emit("sync_result", {"adopted_orders": adopted, "trades": history,
                                        "closed_orders": closed, "cash": self.e.state.cash,
                                        "others_open_orders": others,
                                        "positions": [{"symbol": a.symbol, "amount": p.amount,
                                                       "side": p.side.value}
                                                      for a in self.e.assets for p in (a.long, a.short)
                                                      if p.amount > 0]})
        self.first_trade = {ai.symbol: len(ai.trades) for ai in self.e.assets}
        for ai in self.e.assets:  # the history applied: what the trace did not know
            self.history_trades.setdefault(ai.symbol, set()).update(
                range(known[ai.symbol], self.first_trade[ai.symbol]))
        self.aligner.start()

    async def _sync_leverage(self) -> None:
        """An open position keeps its leverage; elsewhere the exchange gets the local one."""
        from . import orders
        for ai in self.e.assets:
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
        hand (or by a planarpy before client ids named their strategy) unless
        `hand_orders` is "ignore"; never another planarpy strategy's."""
        return self.fills.owns(client_id)

    async def reconcile(self) -> list[str]:
        """Differences between the local state and the exchange's: cash, holdings, positions
        and open orders (empty when they agree)."""
        s = self.s
        out: list[str] = []
        total = self.venue.balance_total(await self.request("fetch_balance"))
        held = sum(p.margin for ai in self.e.assets for p in (ai.long, ai.short))
        exchange_cash = float(total.get(s.quote) or 0.0) - held
        if abs(exchange_cash - self.e.state.cash) > 1e-9 * max(1.0, abs(exchange_cash)):
            out.append(f"cash: local {self.e.state.cash!r}, exchange {exchange_cash!r}")
        positions = {}
        if s.margin == "isolated":
            for p in await self.request("fetch_positions", [a.symbol for a in self.e.assets]):
                if float(p.get("contracts") or 0):
                    positions[(p["symbol"], (p.get("side") or "long").lower())] = float(p["contracts"])
        for ai in self.e.assets:
            m = ai.market
            if not m.is_derivative:
                theirs = float(total.get(m.base) or 0.0)
                if abs(theirs - ai.balance) > 1e-9 * max(1.0, abs(theirs)):
                    out.append(f"{ai.symbol} balance: local {ai.balance!r}, exchange {theirs!r}")
            for p in (ai.long, ai.short):
                theirs = positions.get((ai.symbol, p.side.value), 0.0)
                if abs(theirs - p.amount) > m.amount_step * 1e-6:
                    out.append(f"{ai.symbol} {p.side.value}: local {p.amount!r}, exchange {theirs!r}")
            open_ids = {cid for o in await reports.fetch_open(self, ai.symbol)
                        if self.owns(cid := self.venue.client_id(o) or str(o.get("id")))}
            ours = reports.on_exchange(ai)  # not the emulated orders the engine holds
            if open_ids != ours:
                out.append(f"{ai.symbol} open orders: local {sorted(ours)}, "
                           f"exchange {sorted(open_ids)}")
        return out

    def _ended(self) -> None:
        with _RUNNING_LOCK:
            _RUNNING.discard(self.claimed)  # type: ignore[arg-type]
        self.claimed = None

    async def request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Session.request, noting the pause a rate limit (429, 418) asks for, which the
        retries of the checks of orders in flight wait out (`inflight.check`)."""
        try:
            return await super().request(method, *args, **kwargs)
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection):
            self.limited_until = max(self.limited_until,
                                     time.monotonic() + self.venue.retry_after(self.client))
            raise

    def make_executor(self) -> LiveExecutor:
        return LiveExecutor(self)

    # ---- watchers' processing ---------------------------------------------------------
    async def _fetch_balance(self) -> dict[str, Any]:
        """The account's balances by REST: a complete snapshot, so a currency of the
        strategy it leaves out (exchanges omit zero balances) is zero."""
        b = dict(await self.request("fetch_balance"))
        s = self.s
        for part in ("total", "free"):
            b[part] = dict(b.get(part) or {})
            for currency in [s.quote] + [ai.market.base for ai in self.e.assets
                                         if not ai.market.is_derivative]:
                b[part].setdefault(currency, 0.0)
        return b

    def watch_orders(self, symbol: str) -> None:
        """Start (or keep) the account's orders and my-trades watchers; `symbol` has just
        had an order sent. Their REST fallback fetches every asset with an open order.

        The streams are read account-wide, not per symbol: an exchange sends one user-data
        stream for all symbols, and ccxt's per-symbol read filters its whole cache on every
        message (a quarter of a busy run's CPU); `on_order` ignores symbols not in the universe.
        """
        self.order_activity = time.monotonic()
        for kind, stream, fetch, process in (
                ("orders", "watch_orders", reports.fetch_order_updates, reports.on_orders),
                ("trades", "watch_my_trades", reports.fetch_trade_updates, reports.on_trades)):
            w = self.watchers.get(kind)
            if w is None:
                w = Watcher(self, kind, self.stream(stream),
                            lambda f=fetch: f(self, self.symbols_with_orders()),
                            lambda d, p=process: p(self, d), stall_after=self.stall_after,
                            process_rest=lambda d, p=process: p(self, d, REST))
                self.watchers[kind] = w
            w.start()

    async def watch_triggers(self, symbol: str) -> None:
        """Watch `symbol`'s public trades to fire its emulated conditional orders."""
        await emulation.watch(self, symbol)

    def symbols_with_orders(self) -> list[str]:
        return [ai.symbol for ai in self.e.assets if ai.orders]

    def _background(self) -> list[Any]:
        return [self._inflight_loop, self.aligner.loop]

    async def _inflight_loop(self) -> None:
        """Every `inflight_every` s, settle the orders of unknown outcome and send the
        cancels due; every `adopt_every` s, look for orders that appeared open."""
        loop = asyncio.get_running_loop()
        sweep_at = loop.time() + (self.adopt_every or 0.0)
        while True:
            await asyncio.sleep(self.inflight_every)
            try:
                if len(self.flights):
                    await inflight.check(self)
                if self.adopt_every is not None and loop.time() >= sweep_at:
                    sweep_at = loop.time() + self.adopt_every
                    await inflight.sweep(self)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # could not ask: next time
                await self.report_error(e, where="inflight")

    def status_extra(self) -> str:
        unknown = len(self.flights.unknown())
        last = self.aligner.last
        parts = [f"unknown {unknown}" if unknown else "",
                 f"DIFFERS from the exchange ({len(last.lines())})"
                 if last is not None and not last.ok else ""]
        return "  ".join(p for p in parts if p)

    def supervision_metrics(self) -> dict[str, Any]:
        costs = self.aligner.costs
        return {"reconciliations": self.aligner.runs,
                "reconcile_ms": round(sum(costs) / len(costs), 1) if costs else None}

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

    def new_client_id(self) -> str:
        """A client order id unique across restarts and strategies: the strategy's prefix,
        a time stamp and a counter."""
        self._ids = (self._ids + 1) % 10_000
        return translate.new_client_id(self.id_prefix, int(time.time() * 1000), self._ids)

