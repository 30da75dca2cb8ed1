"""`replay_from_trace`: rebuild a strategy's state from its trace, and say what differs.

Every event goes through `planarpy.core.apply.apply_event`, the function that changed the
state when the event first happened (in the sim, in paper or in live mode), so a replay of
a complete trace rebuilds exactly the state the run ended with.

A replay is only as good as its trace, so it refuses (the report is not `ok`) whatever
would make its answer silently wrong: damaged or missing events, a sequence gap, event
kinds this planarpy does not know (unless allowed), a trace recorded by another strategy
or on another exchange, events still waiting in a journal, and an end state recorded by
the run (`strategy_stopped`) that the replay does not reach.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Mapping

import attrs

from ..core.apply import apply_event
from ..core.display import html_table, num
from ..core.events import KIND_CODES
from ..core.instances import AssetInstance, State
from .layout import TraceError, load_root
from .reader import _Report, iter_events, journal_problems, scan


@attrs.frozen(slots=True)
class ReplayReport:
    """The state rebuilt from a trace and what stands between it and the truth.

    `problems`: why the trace cannot be trusted to rebuild the run (damage, gaps, unknown
    kinds, another strategy or exchange). `differences`: where the rebuilt state differs
    from the state compared with, or from the end state the run recorded. `notes`: what
    is worth knowing and changes nothing. `ok` when there are no problems or differences.
    """

    state: State
    run: int | None
    events: int
    differences: tuple[str, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = attrs.Factory(dict)  # the strategy parameters of the run header

    @property
    def ok(self) -> bool:
        return not self.differences and not self.problems

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s), {len(self.differences)} difference(s)"
        return (f"<ReplayReport run {self.run}: {self.events} events, "
                f"{len(self.state.trades)} trades, {verdict}>")

    def _repr_html_(self) -> str:
        st = self.state
        rows = [("run", str(self.run)), ("events", str(self.events)),
                ("verdict", "the state matches" if self.ok else "NOT OK"),
                ("cash", f"{num(st.cash)} {st.quote} (committed {num(st.committed)})"),
                ("trades", str(len(st.trades))), ("trading", st.risk.trading.value)]
        rows += [(sym, repr(ai)[1:-1].split(" ", 2)[2]) for sym, ai in st.assets.items()]
        rows += [("params", ", ".join(f"{k}={v}" for k, v in self.params.items()))] if self.params else []
        lines = [["what", "detail"]] + [["problem", p] for p in self.problems] + \
            [["difference", d] for d in self.differences] + [["note", n] for n in self.notes]
        return html_table("Replay", rows, lines if len(lines) > 1 else None)

    def __str__(self) -> str:
        head = f"replayed {self.events} events of run {self.run}"
        lines = [f"problem: {p}" for p in self.problems]
        lines += [f"difference: {d}" for d in self.differences]
        lines += [f"note: {n}" for n in self.notes]
        if self.ok:
            head += ": the state matches"
        else:
            head += f": {len(self.problems)} problem(s), {len(self.differences)} difference(s)"
        return "\n  ".join([head, *lines])


def replay_from_trace(strategy: Any, trace: Any, run: int | Literal["last"] = "last",
                      compare: State | None = None, *, exchange: str | None = None,
                      allow_unknown: bool = False, compare_state: bool | None = None,
                      settings: Mapping[str, Any] | None = None) -> ReplayReport:
    """Rebuild cash, committed cash, open orders, trades, positions and the trading state
    from `trace`.

    `strategy` is a running strategy instance, a Strategy class, or a strategy's name or
    path (as `planarpy trace replay --strategy` takes it); a class or name is built on
    the markets of its exchange (`settings`: planar.toml's content, default read) with
    the parameters the run recorded. Its class name must be the strategy the trace
    records, and its `exchange` (or `exchange`, when the run used another) the exchange.
    `run` is a run id or "last". The rebuilt state is compared with `compare` (default
    an instance's state, nothing for a class or name; `compare_state=False`: nothing)
    and with the end state the run recorded. Event kinds this planarpy does not know
    fail the replay unless `allow_unknown`, which skips them with a note.
    """
    built = isinstance(strategy, (str, Path, type))
    if compare_state is None:
        compare_state = compare is not None or not built
    if built or not hasattr(strategy, "engine"):
        strategy = strategy_for_replay(strategy, trace, run, exchange, settings)
    current = strategy.engine.state if compare is None else compare
    state = State(current.quote, 0.0, assets={sym: AssetInstance(ai.market)
                                               for sym, ai in current.assets.items()})
    report = _Report("skip", Path(str(getattr(trace, "path", trace))))
    problems = _identity(strategy, trace, exchange)
    replay = _Replay(state, allow_unknown)
    for event in scan(trace, report, run=run):
        replay.apply(event)
    if replay.count == 0:
        raise TraceError(f"{_name(trace)} has no events for run {run!r}")
    conflicts, waiting = journal_problems(trace)
    problems += report.problems + replay.problems + conflicts
    problems += [f"{w}: this replay is without them" for w in waiting]
    found = list(replay.differences)
    if compare_state:
        found += differences(state, current)
    return ReplayReport(state, replay.run, replay.count, tuple(found), tuple(problems),
                        tuple(replay.notes()), replay.params)


def strategy_for_replay(strategy: Any, trace: Any, run: int | Literal["last"] = "last",
                        exchange: str | None = None,
                        settings: Mapping[str, Any] | None = None) -> Any:
    """An instance of `strategy` (a class, or a name or path for `find_strategy`) on its
    exchange's markets, with the parameters the trace's run recorded when the run was
    this strategy's."""
    from ..config import load_config
    from ..data.sources import markets_for
    from ..loader import find_strategy
    from ..params import resolve
    cfg = load_config() if settings is None else settings
    cls = find_strategy(strategy, cfg) if isinstance(strategy, (str, Path)) else strategy
    if not isinstance(cls, type):
        raise TypeError(f"strategy must be a Strategy instance, class or name, not "
                        f"{type(strategy).__name__}")
    markets = markets_for(exchange or cls.exchange, cfg)
    if not markets:
        raise TraceError(f"no markets known for exchange {exchange or cls.exchange!r}: none are "
                         "bundled; describe them under [markets.EXCHANGE] in planar.toml")
    header = run_header(trace, run=run)
    # another strategy's parameters mean nothing here: the replay reports the mismatch
    params = resolve(cls, header.get("params")) if header.get("strategy") in (None, cls.__name__) else {}
    return cls(markets, params=params)


def run_header(trace: Any, run: int | Literal["last"] = "last") -> dict[str, Any]:
    """The payload of a run's `strategy_started` event (strategy, mode, cash, seed, params,
    ...), or {} if the run has none."""
    for event in iter_events(trace, run=run, kinds="strategy_started"):
        return dict(event["payload"] or {})
    return {}


@attrs.define(slots=True)
class _Replay:
    """Applies events one by one and notes what it cannot apply or must check."""

    state: State
    allow_unknown: bool
    count: int = 0
    run: int | None = None
    unknown: dict[str, int] = attrs.Factory(dict)
    problems: list[str] = attrs.Factory(list)
    differences: list[str] = attrs.Factory(list)
    params: dict[str, Any] = attrs.Factory(dict)
    stopped: bool = False

    def apply(self, event: dict[str, Any]) -> None:
        kind, payload = event["kind"], event["payload"] or {}
        self.run = event.get("run", self.run)
        self.count += 1
        if kind not in KIND_CODES:
            self.unknown[kind] = self.unknown.get(kind, 0) + 1
            if not self.allow_unknown and self.unknown[kind] == 1:
                self.problems.append(f"event kind {kind!r} (first at seq {event.get('seq')}) is "
                                     "unknown to this planarpy; replay with allow_unknown "
                                     "(--allow-unknown-kinds) to skip such events")
            return
        if kind == "strategy_started":
            self.params = dict(payload.get("params") or {})
            if "cash" in payload:
                self.state.cash = float(payload["cash"])
        elif kind == "strategy_stopped":
            self._check_end(payload)
        try:
            apply_event(self.state, kind, payload)
        except (KeyError, ValueError, TypeError) as e:
            self.problems.append(f"event {self.count - 1} ({kind}) could not be applied: {e}")

    def _check_end(self, payload: dict[str, Any]) -> None:
        """Compare the state with the cash the run recorded when it stopped."""
        self.stopped = True
        for name in ("cash", "committed"):
            recorded = payload.get(name)
            if isinstance(recorded, (int, float)):
                replayed = getattr(self.state, name)
                if not math.isclose(replayed, recorded, rel_tol=1e-12, abs_tol=1e-12):
                    self.differences.append(f"{name} when the run stopped: recorded {recorded!r}, "
                                            f"replayed {replayed!r}")

    def notes(self) -> list[str]:
        out = [f"skipped {n} event(s) of unknown kind {k!r}" for k, n in self.unknown.items()
               if self.allow_unknown]
        if not self.stopped:
            out.append(f"run {self.run} recorded no strategy_stopped event (it did not end "
                       "cleanly, or is still running): its end state was not compared")
        return out


def _identity(strategy: Any, trace: Any, exchange: str | None) -> list[str]:
    """Problems if the trace was recorded by another strategy or on another exchange."""
    _, root = load_root(getattr(trace, "path", trace))
    given = {"strategy": type(strategy).__name__,
             "exchange": exchange if exchange is not None else getattr(strategy, "exchange", None)}
    out = []
    for what, value in given.items():
        recorded = root.get(what)
        if value is not None and recorded != value:
            hint = " (pass exchange= / --exchange if the run used another)" if what == "exchange" else ""
            out.append(f"the trace was recorded by {what} {recorded!r}, not {value!r}{hint}")
    return out


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
                if t != u:  # every field: a short repr could hide the one that differs
                    out.append(f"{sym} trade {k}: replayed {attrs.asdict(t)}, current {attrs.asdict(u)}")
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
