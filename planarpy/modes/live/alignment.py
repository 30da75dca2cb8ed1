"""Periodic reconciliation of a live run with its exchange, and what it does about it.

Every `interval` seconds (and on demand: `LiveRun.align()`), the run asks the exchange for
its balances, positions, open orders and recent fills and compares them with the local
state. The `Alignment` it finds says, by asset, where the two differ and why:

- orders open only here, or only on the exchange (of this strategy's, or adopted hand
  orders: another strategy's are never counted);
- fills on the exchange that the local state has not applied ("fills missing");
- a balance difference that the missing fills do not explain. On spot it is measured
  against a ledger, not against the local figures (a balance snapshot may have copied an
  exchange figure already): what the run started with, plus every fill it applied, plus
  the transfers it recognised. What is left in two rounds in a row (a fill that lands
  between the requests of one round shows in one only) is a deposit (more than the
  ledger) or a withdrawal (less), told apart from a fill because no fill explains it,
  and recorded once, as a transfer, never as a trade; until then it is "unexplained".
  Its value moves the loss breakers' day start and peak alike: a withdrawal is no loss.
  On margin there is no such ledger (the wallet moves with realized PnL and funding the
  fills do not carry): the cash is compared with the local figure, so a deposit that a
  balance update brought first is taken in by it and not told as a transfer.

The policy (`[live] reconcile_policy`, per strategy in `[live.NAME]`) says what follows:
"warn" records a `reconciled` event, raises an alert (once, until the differences
change) and calls the strategy's `on_reconcile(alignment)`; "adjust" does that and then moves the local state to the
exchange's through the fill reconciler (missing fills, orders open only on one side,
each by the ordinary recorded events) and a REST balance snapshot, so a replay of the
trace still equals the live state; "halt" does what "warn" does and halts trading.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Mapping

import attrs
import ccxt

from ... import validate as V
from ...core.accounting import fee_parts
from ...core.apply import trade_from_payload
from ...core.instances import AssetInstance
from ...core.orders import Side
from . import inflight, reports, translate
from .reconciler import REST

if TYPE_CHECKING:  # for the annotations only: the session imports this module
    from .session import LiveSession

POLICIES = ("warn", "adjust", "halt")
KEYS = {"reconcile_every": V.positive("seconds"), "reconcile_policy": V.one_of(*POLICIES)}
DEFAULT_EVERY = 60.0
TRANSFER = "transfer"


@attrs.frozen(slots=True)
class Difference:
    """One figure that differs: a currency's total (`what` = the currency) or a position
    (`what` = "SYMBOL long"). `why`: "fills missing", "transfer" (a deposit or withdrawal)
    or "unexplained"."""

    what: str
    local: float
    exchange: float
    why: str

    @property
    def amount(self) -> float:
        return self.exchange - self.local

    def text(self) -> str:
        kind = ("deposit" if self.amount > 0 else "withdrawal") if self.why == TRANSFER else self.why
        return f"{self.what}: local {self.local:.10g}, exchange {self.exchange:.10g} ({kind})"


@attrs.frozen(slots=True)
class Alignment:
    """What one reconciliation found (empty: the run and the exchange agree)."""

    differences: tuple[Difference, ...] = ()
    only_local: tuple[str, ...] = ()  # "SYMBOL id" of orders open here, not there
    only_exchange: tuple[str, ...] = ()  # "SYMBOL id" of orders open there, not here
    missing_fills: tuple[str, ...] = ()  # "SYMBOL trade id" of fills not applied here
    ms: float = 0.0  # what the reconciliation took

    @property
    def ok(self) -> bool:
        return not (self.differences or self.only_local or self.only_exchange
                    or self.missing_fills)

    @property
    def transfers(self) -> dict[str, float]:
        return {d.what: d.amount for d in self.differences if d.why == TRANSFER}

    def lines(self) -> list[str]:
        return ([d.text() for d in self.differences]
                + [f"open only here: {o}" for o in self.only_local]
                + [f"open only on the exchange: {o}" for o in self.only_exchange]
                + [f"fill missing here: {t}" for t in self.missing_fills])

    def payload(self) -> dict[str, Any]:
        return {"ok": self.ok, "differences": [attrs.asdict(d) for d in self.differences],
                "transfers": self.transfers, "only_local": list(self.only_local),
                "only_exchange": list(self.only_exchange),
                "missing_fills": list(self.missing_fills), "ms": round(self.ms, 3)}


@attrs.frozen(slots=True)
class Seen:
    """What the exchange showed in one reconciliation."""

    total: Mapping[str, float]
    positions: Mapping[tuple[str, str], float]
    open_orders: Mapping[str, list[Any]]  # symbol -> ccxt orders (owned)
    trades: Mapping[str, list[Any]]  # symbol -> ccxt trades (owned, not applied here)


class Aligner:
    """A live session's periodic reconciliation (see the module docstring)."""

    def __init__(self, session: LiveSession, every: float = DEFAULT_EVERY,
                 policy: str = "warn") -> None:
        self.session = session
        self.every = KEYS["reconcile_every"].value(every, "reconcile_every")
        self.policy = KEYS["reconcile_policy"].value(policy, "reconcile_policy")
        self.baseline: dict[str, float] = {}  # currency -> total at the run's start
        self.transfers: dict[str, float] = {}  # currency -> transfers recognised so far
        self.last: Alignment | None = None
        self.runs = 0
        self.costs: list[float] = []  # ms of each reconciliation
        self._told: set[str] = set()  # the differences alerted already
        # currency -> what the ledger missed last time: a gap seen twice alike is a
        # transfer (a fill landing between the requests of one round shows only once)
        self._gaps: dict[str, float] = {}

    def start(self) -> None:
        """The start-up sync is done: its figures are where the ledger starts."""
        s = self.session.s
        if s.margin != "isolated":
            self.baseline = {s.quote: s.state.cash,
                             **{ai.market.base: ai.balance for ai in s.assets}}

    # ---- what the exchange shows -----------------------------------------------------
    async def look(self) -> Seen:
        session, s = self.session, self.session.s
        total = session.venue.balance_total(await session.request("fetch_balance"))
        positions: dict[tuple[str, str], float] = {}
        if s.margin == "isolated":
            for p in await session.request("fetch_positions", [a.symbol for a in s.assets]):
                if float(p.get("contracts") or 0):
                    positions[(p["symbol"], (p.get("side") or "long").lower())] = \
                        float(p["contracts"])
        opened, trades = {}, {}
        for ai in s.assets:
            opened[ai.symbol] = [o for o in await reports.fetch_open(session, ai.symbol)
                                 if session.owns(self._cid(o))]
            trades[ai.symbol] = await self._unapplied(ai)
        return Seen({k: float(v or 0.0) for k, v in total.items()}, positions, opened, trades)

    def _cid(self, o: Mapping[str, Any]) -> str:
        return self.session.venue.client_id(o) or str(o.get("id"))

    async def _unapplied(self, ai: AssetInstance) -> list[Any]:
        """This run's fills on the exchange since it started that it has not applied."""
        session = self.session
        since = session.started_ms
        try:
            found = await session.request("fetch_my_trades", ai.symbol, since, session.history)
        except ccxt.NotSupported:  # no fill list to compare (a failure to ask raises)
            return []
        mine = [t for t in found if str(t.get("id")) not in ai.trade_ids
                and int(t.get("timestamp") or 0) >= since]
        return [t for t in mine if self._is_ours(ai, t)]

    def _is_ours(self, ai: AssetInstance, t: Mapping[str, Any]) -> bool:
        lid = self.session.fills.exchange_ids.get(str(t.get("order")))
        if lid is not None:
            return True
        cid = self.session.venue.client_id(t)
        return bool(cid) and self.session.owns(cid) and cid in ai.orders

    # ---- the comparison --------------------------------------------------------------
    def compare(self, seen: Seen) -> Alignment:
        """The differences between the local state and what the exchange showed (called
        holding the state lock)."""
        s = self.session.s
        only_local, only_exchange, missing = [], [], []
        for ai in s.assets:
            theirs = {self._cid(o) for o in seen.open_orders[ai.symbol]}
            ours = reports.on_exchange(ai)  # not the emulated orders the engine holds
            only_local += [f"{ai.symbol} {i}" for i in sorted(ours - theirs)]
            only_exchange += [f"{ai.symbol} {i}" for i in sorted(theirs - set(ai.orders))]
            missing += [f"{ai.symbol} {t.get('id')}" for t in seen.trades[ai.symbol]]
        diffs = self._positions(seen) if s.margin == "isolated" else self._ledger(seen)
        return Alignment(tuple(diffs), tuple(only_local), tuple(only_exchange), tuple(missing))

    def _ledger(self, seen: Seen) -> list[Difference]:
        """Spot: each currency's exchange total against the ledger (start, fills applied,
        transfers recognised); what missing fills do not explain is a transfer."""
        s = self.session.s
        expected = dict(self.baseline)
        for c, x in self.transfers.items():
            expected[c] = expected.get(c, 0.0) + x
        pending = {c: 0.0 for c in expected}
        for ai in s.assets:
            first = self.session.first_trade.get(ai.symbol, 0)
            for t in ai.trades[first:]:
                _move(expected, s.state, ai, t)
            for t in seen.trades[ai.symbol]:
                _move(pending, s.state, ai, self._as_trade(ai, t))
        out, gaps = [], {}
        for c, want in expected.items():
            have = seen.total.get(c, 0.0)
            gap = have - want - pending.get(c, 0.0)
            tolerance = 1e-9 * max(1.0, abs(have))
            if abs(gap) > tolerance:
                gaps[c] = gap
                again = abs(gap - self._gaps.get(c, 0.0)) <= tolerance
                why = TRANSFER if again and not self._in_doubt() else "unexplained"
                out.append(Difference(c, want, have, why))
            elif abs(have - want) > tolerance:
                out.append(Difference(c, want, have, "fills missing"))
        self._gaps = {c: g for c, g in gaps.items()
                      if not any(d.what == c and d.why == TRANSFER for d in out)}
        return out

    def _in_doubt(self) -> bool:
        """Orders of unknown outcome: a difference may be theirs, not a transfer."""
        return bool(self.session.flights.unknown())

    def _positions(self, seen: Seen) -> list[Difference]:
        """Margin: positions by amount, and the cash (the wallet less the margins)."""
        s, out = self.session.s, []
        for ai in s.assets:
            for p in (ai.long, ai.short):
                theirs = seen.positions.get((ai.symbol, p.side.value), 0.0)
                if abs(theirs - p.amount) > ai.market.amount_step * 1e-6:
                    why = "fills missing" if seen.trades[ai.symbol] else "unexplained"
                    out.append(Difference(f"{ai.symbol} {p.side.value}", p.amount, theirs, why))
        held = sum(p.margin for ai in s.assets for p in (ai.long, ai.short))
        cash = seen.total.get(s.quote, 0.0) - held
        if abs(cash - s.state.cash) > 1e-9 * max(1.0, abs(cash)):
            why = "fills missing" if any(seen.trades.values()) or out else TRANSFER
            out.append(Difference(s.quote, s.state.cash, cash, why))
        return out

    async def loop(self) -> None:
        """Reconcile every `every` seconds until cancelled (a failure to ask is reported:
        nothing is known then, which is not "no difference")."""
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self.session.report_error(e, where="reconcile")

    # ---- one round -------------------------------------------------------------------
    async def run(self, act: bool = True) -> Alignment:
        """Reconcile once: compare, record, and (with `act`) apply the policy."""
        began = time.perf_counter()
        seen = await self.look()
        async with self.session.engine.mutating():
            found = self.compare(seen)
            found = attrs.evolve(found, ms=(time.perf_counter() - began) * 1000)
            self._learn(found)
            self.session.apply_now("reconciled", {**found.payload(), "policy": self.policy,
                                                  "ts": self.session.s.clock.now()})
        self.last, self.runs = found, self.runs + 1
        self.costs.append(found.ms)
        if found.ok or not act:
            self._told = set() if found.ok else self._told
            return found
        await self._react(found, seen)
        return found

    def _learn(self, found: Alignment) -> None:
        """A transfer is recognised once: the ledger takes it in, and the loss breakers'
        measurements move by its value, so money moved in or out is no profit or loss."""
        for c, x in found.transfers.items():
            self.transfers[c] = self.transfers.get(c, 0.0) + x
        if found.transfers:
            self._rebase(sum(x * self._value(c) for c, x in found.transfers.items()))

    def _value(self, currency: str) -> float:
        """The value of one unit of `currency` in the quote (its asset's last close)."""
        s = self.session.s
        if currency == s.quote:
            return 1.0
        prices = self.session.prices()
        return next((prices.get(ai.symbol, 0.0) for ai in s.assets
                     if ai.market.base == currency), 0.0)

    def _rebase(self, value: float) -> None:
        """Move the day's start and the peak equity by `value` (a recorded event: a
        restart and a replay find the same measurements)."""
        session = self.session
        risk = session.e.state.risk
        if risk.day is None or not value:
            return
        session.apply_now("risk_measured", {
            "day": risk.day, "day_start_equity": risk.day_start_equity + value,
            "peak_equity": risk.peak_equity + value, "ts": session.s.clock.now(),
            "reason": "transfer"})
        last = session.equity.last
        if last is not None:  # the equity a new day would start from
            session.equity.last = (last[0], last[1] + value)

    async def _react(self, found: Alignment, seen: Seen) -> None:
        session, s = self.session, self.session.s
        lines = found.lines()
        if set(lines) - self._told:  # alerted once, until the differences change
            session.alert("reconciliation", "; ".join(lines), found.payload())
        self._told = set(lines)
        await session.engine.run_strategy(lambda: session.e.invoke(s.on_reconcile, found))
        if self.policy == "adjust":
            await self.adjust(seen)
        elif self.policy == "halt":
            await session.halt_trading("reconciliation",
                                       "the exchange differs: " + "; ".join(found.lines()))

    async def adjust(self, seen: Seen) -> None:
        """Move the local state to the exchange's, each change an ordinary recorded event
        decided by the one fill reconciler: missing fills, orders open only there
        (adopted), orders open only here (their fate fetched), then a balance snapshot."""
        session, s = self.session, self.session.s
        for ai in s.assets:
            if seen.trades[ai.symbol]:
                await reports.on_trades(session, seen.trades[ai.symbol], REST)
            for o in seen.open_orders[ai.symbol]:
                if self._cid(o) not in ai.orders:
                    await reports.on_order(session, o, REST)
            theirs = {self._cid(o) for o in seen.open_orders[ai.symbol]}
            for lid in [i for i in reports.on_exchange(ai) if i not in theirs]:
                await self._settle(ai, lid)
        if s.margin == "isolated":
            await reports.on_positions(session, await session.request(
                "fetch_positions", [a.symbol for a in s.assets]), REST)
        await reports.on_balance(session, await session._fetch_balance(), REST)

    async def _settle(self, ai: AssetInstance, lid: str) -> None:
        """An order open here and not on the exchange: its fate, asked by its client id
        (could not ask, or not found: it stays as it is; unknown is not "gone")."""
        order = ai.orders.get(lid)
        if order is None:
            return
        try:
            o = await inflight.lookup(self.session, ai, order)
        except Exception as e:
            await self.session.report_error(e, where="reconcile", symbol=ai.symbol)
            return
        await reports.on_order(self.session, o, REST)

    def _as_trade(self, ai: AssetInstance, t: Mapping[str, Any]) -> Any:
        """A ccxt fill as a Trade (of no local order: only its amounts matter)."""
        side = Side(t["side"])
        pos = translate.position_side(self.session.venue, ai, t, side)
        return trade_from_payload(translate.trade_payload(ai, t, "", side, pos, ai.leverage))


def _move(figures: dict[str, float], state: Any, ai: AssetInstance, t: Any) -> None:
    """What spot fill `t` moves: the base and the quote, less the fee."""
    m = ai.market
    fee_base, fee_cash, _ = fee_parts(state, m, t)
    sign = 1.0 if t.side is Side.BUY else -1.0
    figures[m.base] = figures.get(m.base, 0.0) + sign * t.amount - fee_base
    figures[m.quote] = figures.get(m.quote, 0.0) - sign * t.cost - fee_cash
