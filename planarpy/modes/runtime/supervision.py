"""What watches over a paper or live run while it runs: checkpoints, alerts, and the
health checks that raise them.

- **Checkpoints.** A strategy may define `checkpoint() -> dict` (JSON-able: its own
  variables) and `restore(dict)`. Every `checkpoint_every` seconds, and at stop, the run
  records a `checkpoint` event with what `checkpoint()` returned. A live run started on
  the trace of an earlier run of the same strategy (after a crash too: a SIGKILL loses
  only what the trace had not flushed) calls `restore` with the newest checkpoint before
  anything else reaches the strategy (live/resume.py); the exchange sync then brings what
  happened meanwhile. A paper run starts afresh.
- **Alerts** (see alerts.py): a trading state that moves (a risk trip, a halt), a stream
  down for longer than `[alerts] disconnect_after`, and a trace that failed to write are
  each raised once, when they begin (looked for every second).
- **Shutdown metrics**: at stop, one log line says how the run went.

The keys: `[live]`/`[paper]` (and `[live.NAME]`/`[paper.NAME]`) `checkpoint_every`
(seconds, default 60); `[alerts]` (see alerts.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Mapping

from ... import validate as V
from ...core.errors import ConfigError
from .alerts import AlertConfig, Alerts

if TYPE_CHECKING:  # for the annotations only: the session imports this module
    from ...strategy import Strategy
    from .session import Session

log = logging.getLogger(__name__)

KEYS = {"checkpoint_every": V.positive("seconds")}
DEFAULT_CHECKPOINT_EVERY = 60.0
WATCH_EVERY = 1.0  # seconds between health checks


def checkpoint_of(s: Strategy) -> dict[str, Any] | None:
    """The strategy's `checkpoint()`, checked: a JSON-able dict, or None if it keeps none.
    ConfigError naming the strategy if it returns anything else."""
    fn = getattr(s, "checkpoint", None)
    if fn is None:
        return None
    value = fn()
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{type(s).__name__}.checkpoint() must return a dict, not "
                          f"{type(value).__name__}")
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{type(s).__name__}.checkpoint() must return JSON-able values "
                          f"(numbers, text, lists, dicts): {e}") from None


def run_options(settings: Mapping[str, Any], mode: str, strategy: str) -> dict[str, Any]:
    """The supervision options of a run from planar.toml: `[mode]`/`[mode.NAME]` keys
    (checkpoint_every; for live also reconcile_every and reconcile_policy), `[alerts]`
    and `[shadow]` (each checked where the run reads it)."""
    from .stopping import mode_tables
    general, own = mode_tables(settings, mode, strategy)
    keys = ("checkpoint_every", "reconcile_every", "reconcile_policy")
    out = {k: own.get(k, general.get(k)) for k in keys}
    return {**{k: v for k, v in out.items() if v is not None},
            "alerts": settings.get("alerts"), "shadow": settings.get("shadow")}


class Supervisor:
    """A session's checkpoints, alerts and health checks (see the module docstring)."""

    def __init__(self, session: Session, checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY,
                 alerts: AlertConfig | Mapping[str, Any] | None = None) -> None:
        self.session = session
        self.checkpoint_every = KEYS["checkpoint_every"].value(checkpoint_every,
                                                               "checkpoint_every")
        self.config = alerts if isinstance(alerts, AlertConfig) else \
            AlertConfig.from_config(alerts)
        self.alerts: Alerts | None = None
        self.checkpoints = 0
        self.restored: dict[str, Any] | None = None  # the checkpoint the run resumed from
        self.started = time.monotonic()
        self._down: set[str] = set()  # watchers told as down
        self._trace_failures = 0
        self._risk_seen = 0  # moves of the trading state alerted so far

    def begin(self, s: Strategy) -> None:
        """The strategy is built: alerts name it from now on."""
        session = self.session
        self.alerts = Alerts(self.config, {"strategy": type(s).__name__, "mode": s.mode.value,
                                           "exchange": session.exchange.id},
                             record=self._record,
                             secrets=(session.keys.api_key, session.keys.secret,
                                      session.keys.password))

    def _record(self, kind: str, payload: dict[str, Any]) -> None:
        recorder, s = self.session.recorder, self.session.s
        if recorder is not None and s is not None:
            recorder.record(kind, payload, symbol=None, ts=s.clock.now_ns())

    def alert(self, kind: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        if self.alerts is not None:
            s = self.session.s
            self.alerts.send(kind, message, details, ts=s.clock.now() if s is not None else None)

    # ---- checkpoints -----------------------------------------------------------------
    async def restore(self, found: Mapping[str, Any] | None) -> None:
        """The strategy's variables from checkpoint event `found` (the newest of the trace
        of the earlier runs, which the mode reads), before anything else reaches it."""
        s = self.session.s
        vars_ = (found.get("payload") or {}).get("vars") if found is not None else None
        if getattr(s, "restore", None) is None or not isinstance(vars_, dict):
            return
        self.restored = vars_
        await self.session.engine.run_strategy(lambda: s.restore(dict(vars_)))
        await self.session.record("checkpoint_restored", {"from_run": found.get("run"),
                                                          "ts": found.get("ts")})

    async def checkpoint(self, why: str) -> bool:
        """Record the strategy's checkpoint now (it runs as strategy code); whether one was."""
        session = self.session
        vars_ = await session.engine.run_strategy(lambda: checkpoint_of(session.s))
        if vars_ is None:
            return False
        await session.emit("checkpoint", {"vars": vars_, "why": why,
                                          "ts": session.s.clock.now(), "ticks": session.ticks})
        self.checkpoints += 1
        return True

    # ---- the loop --------------------------------------------------------------------
    async def loop(self) -> None:
        """Checkpoints on their interval, and the health checks, until cancelled."""
        due = time.monotonic() + self.checkpoint_every
        while True:
            await asyncio.sleep(max(0.0, min(WATCH_EVERY, due - time.monotonic())))
            try:
                self.watch()
                if time.monotonic() >= due:
                    due = time.monotonic() + self.checkpoint_every
                    await self.checkpoint("interval")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self.session.report_error(e, where="supervision")

    def watch(self) -> None:
        """Alert once when the trading state moved, a stream has been down too long, or
        the trace failed to write."""
        self.watch_risk()
        now = asyncio.get_running_loop().time()
        for name, w in list(self.session.watchers.items()):
            down = not w.connected and now - w.last_message >= self.config.disconnect_after
            if down and name not in self._down:
                self._down.add(name)
                self.alert("disconnect", f"the {name} stream has been down for "
                           f"{now - w.last_message:.0f} s", {"watcher": name})
            elif w.connected:
                self._down.discard(name)
        health = getattr(self.session.recorder, "health", None)
        if health is not None:
            h = health()
            if h.failed_flushes > self._trace_failures:
                self._trace_failures = h.failed_flushes
                self.alert("trace", f"the trace could not be written: {h.last_error}",
                           {"failed_flushes": h.failed_flushes, "pending": h.pending})

    def watch_risk(self) -> None:
        """Alert once for each move of the trading state since the last look (a breaker,
        the kill switch, a halt by the reconciliation or the shadow: every path records
        one in the risk state's changes)."""
        changes = self.session.e.state.risk.changes
        for c in changes[self._risk_seen:]:
            state = str(c.get("state"))
            what = "halt" if state == "halted" else "risk"
            self.alert(what, f"trading {state.upper()} ({c.get('rule')}): {c.get('reason')}",
                       {"rule": c.get("rule"), "state": state, "previous": c.get("previous")})
        self._risk_seen = len(changes)

    # ---- the end ---------------------------------------------------------------------
    async def final(self) -> None:
        """At stop, after on_stop: the last checkpoint and the shutdown metrics."""
        session = self.session
        if session.strategy_started:
            await self.checkpoint("stop")
        log.info("%s stopped: %s", session.cls.__name__,
                 ", ".join(f"{k} {v}" for k, v in self.metrics().items()))

    def metrics(self) -> dict[str, Any]:
        session = self.session
        out = {"ran_s": round(time.monotonic() - self.started, 1), "ticks": session.ticks,
               "checkpoints": self.checkpoints, "errors": len(session.errors),
               "alerts": self.alerts.raised if self.alerts else 0,
               "open_orders": sum(len(ai.orders) for ai in session.s.assets)}
        return {**out, **session.supervision_metrics()}

    def close(self) -> None:
        if self.alerts is not None:
            self.alerts.close()
