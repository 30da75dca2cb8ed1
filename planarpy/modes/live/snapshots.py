"""Balance and position snapshots against fills: which snapshots are stale, which fills
a snapshot shows already.

A snapshot sets figures to the exchange's: a balance sets the cash (on margin the wallet:
the cash and the margins of the positions) and each spot asset's holdings; a position
sets one symbol's position (long less short: one-way). A fill moves the same figures. The
two come by different ways (the order's reply, several streams, REST) and either may be
applied first, so each figure (a currency, or a symbol for its position) keeps the time of
the last snapshot applied, of the last fill that moved it, and:

- a snapshot older than either is stale, and skipped: it would take the fill back, or go
  behind a newer snapshot;
- a fill older than the last snapshot of its figures is in it: recorded (trade, order),
  it moves them no further (`in_balance` / `in_position` on its event, so that replay
  does the same). On margin a fill has two parts: its position (amount, entry, margin,
  and the cash the margin takes or frees), which the position shows, and its fee and
  realized pnl, which the wallet shows.

The same millisecond decides nothing by time: one exchange millisecond often holds
several fills and the updates between them (and a stepped test clock gives all one time).

- A snapshot of the same millisecond as a fill that moved its figures is applied, unless
  it came on the stream while that fill came only by reply or REST: the stream sends a
  fill before the updates that include it, so that update was sent before the fill.
- A fill of the same millisecond as a snapshot is in it when the snapshot moved each of
  its figures by at least the fill's own change, in its direction, beyond what the state
  had: a snapshot keeps that unexplained change (added up over the snapshots of one
  millisecond), and each fill found in it uses up its part. So a snapshot that came while
  the fill was on its way, and shows it, holds it; one sent before the fill (it moved
  nothing, or something else) does not, and the fill counts. The start-up sync explains
  nothing: what it found is where the run starts.

A snapshot with no time (ccxt gives USD-M REST balances none) is never stale, and
decides by its unexplained change alone, for the fills up to the exchange's time when it
came.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import attrs

from ...core.accounting import fee_parts
from ...core.instances import AssetInstance, State
from ...core.orders import Order, Side, Trade, opens_position
from ...core.positions import pnl

STREAM = "stream"
UNCONFIRMED = 1000  # REST fills remembered until the stream brings them
Figures = Mapping[str, "tuple[float, float]"]  # figure -> (value here, the snapshot's value)


@attrs.define(slots=True)
class Shown:
    """The last snapshot applied of one figure: its exchange time (ms; if it had none, the
    exchange's time when it came, and `timed` is False), the change it made that no fill
    applied here explains yet, and the size of the figure (for rounding)."""

    ms: int
    unexplained: float = 0.0
    scale: float = 1.0
    timed: bool = True

    def holds(self, change: float) -> bool:
        """Whether the unexplained change includes a fill's `change` of the figure."""
        tol = 1e-9 * self.scale
        if abs(change) <= tol:
            return True
        return self.unexplained >= change - tol if change > 0 else self.unexplained <= change + tol


class Snapshots:
    """The times and unexplained changes of each figure (see the module docstring)."""

    def __init__(self) -> None:
        self.shown: dict[str, Shown] = {}  # figure -> the last snapshot applied of it
        self.moved_ms: dict[str, int] = {}  # figure -> time of the newest fill that moved it
        self.unconfirmed: dict[str, int] = {}  # trade id -> time, moved from REST only
        self.newest_ms = 0  # the newest exchange time seen

    # ---- snapshots ---------------------------------------------------------------------
    def stale(self, figures: Figures, ms: int | None, source: str) -> str | None:
        """Why a snapshot of `figures` made at `ms` must be skipped, or None."""
        if ms is None:
            return None
        for key in figures:
            moved = self.moved_ms.get(key, 0)
            shown = self.shown.get(key)
            if ms < moved or (source == STREAM and ms == moved
                              and moved in self.unconfirmed.values()):
                return "stale: older than a fill applied"
            if shown is not None and shown.timed and ms < shown.ms:
                return "stale: older than a snapshot applied"
        return None

    def took(self, figures: Figures, ms: int | None, now_ms: int) -> None:
        """A snapshot of `figures` made at `ms` (None: not known) is applied, at the
        exchange's time `now_ms`."""
        timed = ms is not None
        ms = ms if ms is not None else max(now_ms, self.newest_ms)
        self.newest_ms = max(self.newest_ms, ms)
        for key, (here, theirs) in figures.items():
            last = self.shown.get(key)
            unexplained = theirs - here
            if last is not None and last.ms == ms:
                unexplained += last.unexplained
            self.shown[key] = Shown(ms, unexplained, max(1.0, abs(theirs)), timed)

    def baseline(self) -> None:
        """The snapshots so far are where the run starts: no fill is to come for them."""
        for shown in self.shown.values():
            shown.unexplained = 0.0

    # ---- fills -------------------------------------------------------------------------
    def in_snapshots(self, state: State, ai: AssetInstance, order: Order,
                     trade: Trade) -> dict[str, bool]:
        """The flags of a fill's event: {"in_balance": True} and/or {"in_position": True}
        for the parts the last snapshots show already. Decided once per fill (what a
        snapshot holds is used up)."""
        balance, position = fill_changes(state, ai, order, trade)
        out = {}
        if position and self._holds(position, trade.date):
            out["in_position"] = True
        if None in balance.values():
            if out:  # the snapshot closed the position: no entry to reckon the pnl from,
                out["in_balance"] = True  # left to the balance update that comes with it
        elif self._holds(balance, trade.date):
            out["in_balance"] = True
        return out

    def _holds(self, changes: Mapping[str, float], ms: int) -> bool:
        """Whether the last snapshots of the figures hold a fill made at `ms` (0: not
        known) that makes `changes`; if so, it uses up its part of what they left
        unexplained."""
        tied = []
        for key, change in changes.items():
            shown = self.shown.get(key)
            if shown is None or ms > shown.ms:
                return False
            if 0 < ms < shown.ms and shown.timed:
                continue
            if not shown.holds(change):
                return False
            tied.append((shown, change))
        for shown, change in tied:
            shown.unexplained -= change
        return True

    def applied(self, state: State, payload: Mapping[str, Any], trade: Trade,
                source: str) -> None:
        """A fill's event is applied: the figures it moved, and whether the stream has it."""
        ai = state.assets[trade.symbol]
        self.newest_ms = max(self.newest_ms, trade.date)
        moved = [] if payload.get("in_balance") else balance_figures_of(state, ai)
        if ai.market.is_derivative and not payload.get("in_position"):
            moved.append(ai.symbol)
        for key in moved:
            self.moved_ms[key] = max(self.moved_ms.get(key, 0), trade.date)
        if moved and source != STREAM and trade.id:
            self.unconfirmed[trade.id] = trade.date
            while len(self.unconfirmed) > UNCONFIRMED:  # fills the stream never brought
                del self.unconfirmed[next(iter(self.unconfirmed))]

    def streamed(self, trades: Iterable[Mapping[str, Any]]) -> None:
        """The stream brought these fills: updates it sends from now on include them."""
        if self.unconfirmed:
            for t in trades:
                self.unconfirmed.pop(str(t.get("id")), None)


# ---- the figures -----------------------------------------------------------------------
def balance_figures(state: State, total: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The figures a balance snapshot sets (see apply's balance_updated): the cash (with the
    margins the positions hold, which the exchange counts in it) and spot holdings."""
    out = {}
    if total.get(state.quote) is not None:
        held = sum(p.margin for ai in state.assets.values() for p in (ai.long, ai.short)
                   if ai.market.is_derivative)
        out[state.quote] = (state.cash + held, float(total[state.quote]))
    for ai in state.assets.values():
        m = ai.market
        if not m.is_derivative and total.get(m.base) is not None:
            out[m.base] = (ai.balance, float(total[m.base]))
    return out


def position_figures(ai: AssetInstance, payload: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The figure a position snapshot sets: the symbol's position, long less short."""
    amount = float(payload.get("amount") or 0.0)
    theirs = -amount if payload.get("side") == "short" else amount
    return {ai.symbol: (ai.long.amount - ai.short.amount, theirs)}


def balance_figures_of(state: State, ai: AssetInstance) -> list[str]:
    """The balance figures a fill of `ai` moves."""
    m = ai.market
    return [state.quote] if m.is_derivative else [m.base, state.quote]


def fill_changes(state: State, ai: AssetInstance, order: Order,
                 trade: Trade) -> tuple[dict[str, float | None], dict[str, float]]:
    """What a fill changes: (balance figures, position figures). On margin the balance's
    is the wallet's: the fee, and a reducing fill's realized pnl (None when no position is
    open here to reckon it from)."""
    m = ai.market
    fee_base, fee_cash, _ = fee_parts(state, m, trade)
    sign = 1.0 if trade.side is Side.BUY else -1.0
    if not m.is_derivative:
        return {m.base: sign * trade.amount - fee_base,
                state.quote: -sign * trade.cost - fee_cash}, {}
    position = {ai.symbol: sign * trade.amount}
    if opens_position(trade.side, trade.pos) and not order.reduce_only:
        return {state.quote: -fee_cash}, position
    pos = ai.position(trade.pos)
    if pos.amount <= 0:
        return {state.quote: None}, position
    realized = pnl(pos.side, pos.entry_price, trade.price, trade.amount * m.contract_size)
    return {state.quote: realized - fee_cash}, position
