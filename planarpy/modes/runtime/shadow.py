"""A shadow backtest beside a paper or live run: does the run do what its model says?

A second instance of the strategy's class runs in sim mode, driven by the run's own
closed candles and filled by the sim's fill model (next open plus slippage, limits on
the candle's range, the same fees). The shadow of candle j is ticked when the run ticks
candle j + 1, so that, as in a backtest, its orders fill at the open of the candle after
the decision, never at a price not yet known. It starts from the run's cash and spot
holdings at the start and keeps nothing across a restart.

After each shadow tick it compares, at the same decision (candle j):

- signals: the order requests (market, limit, cancel, close) each made from its own tick,
  as (action, symbol, side, amount, limit price); the match rate is the share of the
  decisions at which either acted where both asked for the same;
- fill slippage: the price of each order filled at once in both, the run's against the
  shadow's, in basis points against the trader (positive: the run filled worse);
- PnL and position divergence: each one's PnL since the start, valued at the same close,
  and each asset's holding (spot) or net position.

Each comparison is a `shadow_metrics` event in the trace (with the shadow's cash, equity
and holdings), the status line shows the match rate and the PnL difference, and a
threshold breached (`[shadow]` min_match_rate, max_pnl_divergence as a fraction of the
starting equity, max_slippage_bps) raises a "shadow" alert once (again after it
recovers) and, with `halt = true`, halts trading.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

import attrs

from ... import validate as V
from ...actions import Action, Mode, pipeline
from ...core.orders import Side, Trade
from ..sim.config import SimConfig
from ..sim.engine import SimClock, SimEngine
from ..sim.executor import SimExecutor

if TYPE_CHECKING:  # for the annotations only: the session imports this module
    from .session import Session

KEYS = {"enabled": V.boolean(), "min_match_rate": V.number(0.0, 1.0),
        "max_pnl_divergence": V.positive("of the starting equity"),
        "max_slippage_bps": V.positive("basis points"), "halt": V.boolean(),
        "slippage": V.non_negative()}
_SIGNALS = {Action.MARKET_ORDER, Action.LIMIT_ORDER, Action.CANCEL_ORDERS,
            Action.CLOSE_POSITION}


@attrs.frozen(slots=True)
class ShadowConfig:
    """`[shadow]` of planar.toml (or `shadow=` of start_live/start_paper)."""

    enabled: bool = False
    min_match_rate: float = 1.0  # share of decisions that must match
    max_pnl_divergence: float = 0.01  # |run PnL - shadow PnL| / starting equity
    max_slippage_bps: float = 50.0  # mean slippage of the run's fills against the shadow's
    halt: bool = False  # a breach halts trading (else it only alerts)
    slippage: float = 1.0  # the sim's slippage scale for the shadow's market orders

    @classmethod
    def of(cls, given: Any) -> "ShadowConfig":
        """From a table (checked: ConfigError names the key), True/False, or None."""
        if isinstance(given, ShadowConfig):
            return given
        if given is None or isinstance(given, bool):
            return cls(enabled=bool(given))
        table = V.read_table(given, KEYS, "[shadow]")
        return cls(**{"enabled": True, **table})


def signal(action: Action, req: Any) -> tuple[Any, ...]:
    """What a request asks, comparable between the run and its shadow."""
    ai = getattr(req, "ai", None)
    side = getattr(req, "side", None)
    return (action.value, ai.symbol if ai is not None else None,
            side.value if isinstance(side, Side) else None,
            round(float(getattr(req, "amount", 0.0) or 0.0), 12),
            getattr(req, "price", None))


class Signals:
    """The requests one strategy made from its tick, by decision (the candle index)."""

    def __init__(self, open: bool = False) -> None:
        self.open = open  # whether requests are recorded now (while the tick runs)
        self.by_candle: dict[int, list[tuple[Any, ...]]] = {}
        self.fills: dict[int, list[tuple[tuple[Any, ...], float]]] = {}

    def wrap(self, e: Any) -> None:
        """Record every order request of engine side `e`'s strategy from now on (its
        `call` table wrapped)."""
        e.dispatch = {a: self._recording(a, h) if a in _SIGNALS else h
                      for a, h in e.dispatch.items()}

    def _recording(self, action: Action, handler: Callable[..., Any]) -> Callable[..., Any]:
        def handle(e: Any, req: Any) -> Any:
            if not self.open:  # from on_interval, a script: not a decision of the tick
                return handler(e, req)
            key, i = signal(action, req), e.strategy.i
            self.by_candle.setdefault(i, []).append(key)
            out = handler(e, req)
            if isinstance(out, Trade):
                self.fills.setdefault(i, []).append((key, out.price))
            return out
        return handle


class ShadowEngine(SimEngine):
    """The sim engine over candles that grow."""

    def grew(self, timestamps: Any, tf: int) -> None:
        """New candles: on the timeline, and the column caches made anew."""
        for t in timestamps:
            self.timeline.append(int(t))  # type: ignore[union-attr]
            self.close_times.append(int(t) + tf)  # type: ignore[union-attr]
        self._cols.clear()
        self._views.clear()


class Shadow:
    """A session's shadow backtest and its alignment metrics (see the module docstring)."""

    def __init__(self, session: Session, config: ShadowConfig) -> None:
        self.session = session
        self.config = config
        self.s: Any = None  # the shadow strategy
        self.engine: ShadowEngine | None = None
        self.live = Signals()
        self.mine = Signals(open=True)
        self.next = -1  # the next candle the shadow ticks
        self.decisions = self.matched = 0
        self.slippages: list[float] = []
        self.equity0 = self.live_equity0 = 0.0
        self.last: dict[str, Any] = {}
        self.breached: set[str] = set()
        self.seconds = 0.0  # time spent in the shadow, over `steps`
        self.steps = 0

    def attach(self) -> None:
        """Build the shadow from the run's strategy, candles and account (holding the
        state lock, before the run's start())."""
        live = self.session.s
        s = type(live)({ai.symbol: ai.market for ai in live.assets}, mode=Mode.SIM,
                       cash=live.state.cash, params=dict(live.params))
        o = live.assets[0].ohlcv
        tf = self.session.tf
        engine = ShadowEngine(s, SimConfig(slippage=self.config.slippage, volume_cap=False,
                                           check_lookahead=False),
                              [int(t) for t in o.timestamp], tf)
        for mine, theirs in zip(s.assets, live.assets):
            mine.ohlcv = theirs.ohlcv
            if not mine.market.is_derivative:
                mine.balance = theirs.balance
        e = s.engine
        e.executor, e.dispatch = SimExecutor(s, engine), pipeline.HANDLERS
        e.clock = SimClock(s, engine.close_times, int(o.timestamp[0]))
        e.state.risk.rules = live.state.risk.rules
        s.i = -1
        s.reset()
        e.prepare_indicators()
        s.start()
        self.s, self.engine = s, engine
        self.mine.wrap(e)
        self.live.wrap(live.engine)
        prices = self.session.prices()
        self.equity0 = s.state.equity(prices)
        self.live_equity0 = live.state.equity(prices)

    def beside(self, i: int, ts: int) -> None:
        """The run's tick of candle `i` (its requests recorded), then the shadow's step."""
        self.live.open = True
        try:
            self.session.s.tick(ts)
        finally:
            self.live.open = False
        self.step(i)

    def step(self, i: int) -> None:
        """The run ticked candle `i`: tick the shadow up to candle i - 1 (holding the state
        lock), then compare."""
        if self.s is None:
            return
        began = time.perf_counter()
        if self.next < 0:
            self.next = i  # the run's first tick: the shadow's first decision
        self._follow()
        done = []
        s, engine = self.s, self.engine
        while self.next <= i - 1:
            j = self.next
            if s.state.active:
                engine.match(j)
            s.i = j
            s.tick(engine.close_times[j])
            done.append(j)
            self.next += 1
        for j in done:
            self._compare(j)
        self.seconds += time.perf_counter() - began
        self.steps += 1
        if done:
            self._report(done[-1])

    def _follow(self) -> None:
        """The run's candles grew: the shadow reads the same ones, and its indicators."""
        live, s, engine = self.session.s, self.s, self.engine
        o = live.assets[0].ohlcv
        known = len(s.assets[0].ohlcv)
        for mine, theirs in zip(s.assets, live.assets):
            mine.ohlcv = theirs.ohlcv
        if len(o) > known:
            engine.grew(o.timestamp[known:], self.session.tf)
            for ai in s.assets:
                s.engine.update_indicators(ai, known)

    def _compare(self, j: int) -> None:
        theirs, mine = self.live.by_candle.get(j, []), self.mine.by_candle.get(j, [])
        if theirs or mine:
            self.decisions += 1
            self.matched += sorted(map(repr, theirs)) == sorted(map(repr, mine))
        paired = zip(self.live.fills.get(j, []), self.mine.fills.get(j, []))
        for (a, live_price), (b, sim_price) in paired:
            if a == b and sim_price > 0:
                against = 1.0 if a[2] == "buy" else -1.0
                self.slippages.append(against * (live_price - sim_price) / sim_price * 1e4)

    # ---- metrics ---------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        live, s = self.session.s, self.s
        prices = self.session.prices()
        live_pnl = live.state.equity(prices) - self.live_equity0
        shadow_equity = s.state.equity(prices)
        shadow_pnl = shadow_equity - self.equity0
        base = max(abs(self.live_equity0), 1e-12)
        return {
            "decisions": self.decisions,
            "match_rate": self.matched / self.decisions if self.decisions else None,
            "slippage_bps": sum(self.slippages) / len(self.slippages) if self.slippages
            else None,
            "live_pnl": live_pnl, "shadow_pnl": shadow_pnl,
            "pnl_divergence": (live_pnl - shadow_pnl) / base,
            "positions": {a.symbol: {"live": _held(a), "shadow": _held(b)}
                          for a, b in zip(live.assets, s.assets)},
            "shadow_cash": s.state.cash, "shadow_equity": shadow_equity,
            "shadow_trades": len(s.state.trades),
            "overhead_ms": self.seconds / self.steps * 1000 if self.steps else 0.0}

    def _report(self, j: int) -> None:
        m = self.metrics()
        self.last = m
        self.session.apply_now("shadow_metrics", {**m, "candle": j,
                                                  "ts": self.session.s.clock.now()})
        for name, why in self._breaches(m).items():
            if name not in self.breached:
                self.breached.add(name)
                self.session.supervisor.alert("shadow", why, {"metric": name, **m})
                if self.config.halt:
                    self.session.trip_halt("shadow", why)
        self.breached &= set(self._breaches(m))

    def _breaches(self, m: Mapping[str, Any]) -> dict[str, str]:
        c, out = self.config, {}
        if m["match_rate"] is not None and m["match_rate"] < c.min_match_rate:
            out["match_rate"] = (f"the shadow's signals match {m['match_rate']:.0%} of the run's "
                                 f"decisions (at least {c.min_match_rate:.0%} asked)")
        if abs(m["pnl_divergence"]) > c.max_pnl_divergence:
            out["pnl_divergence"] = (f"the run's PnL differs from the shadow's by "
                                     f"{m['pnl_divergence']:+.2%} of the starting equity "
                                     f"(at most {c.max_pnl_divergence:.2%} asked)")
        if m["slippage_bps"] is not None and m["slippage_bps"] > c.max_slippage_bps:
            out["slippage"] = (f"the run fills {m['slippage_bps']:.1f} bps worse than the "
                               f"shadow (at most {c.max_slippage_bps:g} asked)")
        return out

    def status(self) -> str:
        m = self.last
        if not m:
            return ""
        rate = "-" if m["match_rate"] is None else f"{m['match_rate']:.0%}"
        return f"shadow match {rate} pnl {m['pnl_divergence']:+.2%}"


def _held(ai: Any) -> float:
    return ai.balance if not ai.market.is_derivative else ai.long.amount - ai.short.amount
