"""`replay_from_trace`: rebuild a strategy's state from its trace, and say what differs.

Every event goes through `planarpy.core.apply.apply_event`, the function that changed the
state when the event first happened (in the sim, in paper or in live mode), so a replay of
a complete trace rebuilds exactly the state the run ended with.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

from ..core.apply import apply_event
from ..core.instances import AssetInstance, State
from .reader import iter_events
from .store import TraceError


@attrs.frozen(slots=True)
class ReplayReport:
    """The state rebuilt from a trace, and its differences from the state compared with."""

    state: State
    run: int | None
    events: int
    differences: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.differences

    def __str__(self) -> str:
        head = f"replayed {self.events} events of run {self.run}"
        if self.ok:
            return f"{head}: the state matches"
        return head + f": {len(self.differences)} difference(s)\n  " + "\n  ".join(self.differences)


def replay_from_trace(strategy: Any, trace: Any, run: int | Literal["last"] = "last",
                      compare: State | None = None) -> ReplayReport:
    """Rebuild cash, committed cash, open orders, trades, positions and the trading state
    from `trace`.

    `strategy` supplies the markets (and, unless `compare` is given, the state to compare
    with). `run` is a run id or "last". Unknown or damaged events are skipped, as the
    reader does, and named in the report.
    """
    current = strategy.state if compare is None else compare
    state = State(current.quote, 0.0, assets={sym: AssetInstance(ai.market)
                                               for sym, ai in current.assets.items()})
    count, run_id, notes = 0, None, []
    for event in iter_events(trace, run=run):
        kind, payload = event["kind"], event["payload"]
        run_id = event.get("run", run_id)
        if kind == "strategy_started" and "cash" in (payload or {}):
            state.cash = float(payload["cash"])
        try:
            apply_event(state, kind, payload or {})
        except (KeyError, ValueError, TypeError) as e:
            notes.append(f"event {count} ({kind}) could not be applied: {e}")
        count += 1
    if count == 0:
        raise TraceError(f"{_name(trace)} has no events for run {run!r}")
    return ReplayReport(state, run_id, count, tuple(notes + differences(state, current)))


def _name(trace: Any) -> str:
    return str(getattr(trace, "path", trace))


def differences(a: State, b: State, rel: float = 1e-12) -> list[str]:
    """Every difference between two states: cash, commitments, trading state, holdings,
    orders, trades."""
    out: list[str] = []

    def num(what: str, x: float, y: float) -> None:
        if not math.isclose(x, y, rel_tol=rel, abs_tol=1e-12):
            out.append(f"{what}: replayed {x!r}, current {y!r}")

    num("cash", a.cash, b.cash)
    num("committed", a.committed, b.committed)
    if a.risk.trading is not b.risk.trading:
        out.append(f"trading state: replayed {a.risk.trading.value}, current {b.risk.trading.value}")
    if a.risk.denied != b.risk.denied:
        out.append(f"risk denials: replayed {a.risk.denied}, current {b.risk.denied}")
    for sym in sorted(set(a.assets) | set(b.assets)):
        x, y = a.assets.get(sym), b.assets.get(sym)
        if x is None or y is None:
            out.append(f"{sym}: only in the {'current' if x is None else 'replayed'} state")
            continue
        num(f"{sym} balance", x.balance, y.balance)
        num(f"{sym} committed", x.committed, y.committed)
        for side in ("long", "short"):
            p, q = getattr(x, side), getattr(y, side)
            for field in ("amount", "entry_price", "margin", "leverage", "liquidation_price"):
                if field != "leverage" or p.amount or q.amount:
                    num(f"{sym} {side} {field}", getattr(p, field), getattr(q, field))
        out += _orders(sym, x, y, num)
        if len(x.trades) != len(y.trades):
            out.append(f"{sym} trades: replayed {len(x.trades)}, current {len(y.trades)}")
        else:
            for k, (t, u) in enumerate(zip(x.trades, y.trades)):
                if t != u:
                    out.append(f"{sym} trade {k}: replayed {t}, current {u}")
                    break
    return out


def _orders(sym: str, x: AssetInstance, y: AssetInstance, num: Any) -> list[str]:
    out = []
    ids = set(x.orders) | set(y.orders)
    for oid in sorted(ids):
        o, p = x.orders.get(oid), y.orders.get(oid)
        if o is None or p is None:
            out.append(f"{sym} order {oid}: open only in the {'current' if o is None else 'replayed'} state")
            continue
        num(f"{sym} order {oid} filled", o.filled, p.filled)
        num(f"{sym} order {oid} committed", o.committed, p.committed)
    return out
