"""The handle a script, REPL or notebook holds on a running strategy.

Its methods block the calling thread only, so they work in a plain REPL and inside a
running Jupyter kernel alike: the engine has its own loop and never touches the caller's.
"""

from __future__ import annotations

from typing import Any, Mapping, Self

from ...config import load_config
from ...core.errors import InvalidArgument
from ...core.risk import RiskRules, rules_for
from ...exchanges import ExchangeConfig, exchange_config
from ...loader import find_strategy
from ...strategy import Strategy
from .session import Session
from .stopping import StopReport, stop_settings


def run_setup(strategy: type[Strategy] | str, mode: str, settings: Mapping[str, Any] | None,
              exchange: str | None, exchange_url: str | None,
              risk: RiskRules | Mapping[str, Any] | None = None,
              **stop: Any) -> tuple[type[Strategy], ExchangeConfig, dict[str, Any]]:
    """What a paper or live run is made of: the strategy class, the exchange config, and
    the session options on_stop and stop_timeout (`stop`: those of `stop_settings`) and
    the risk rules (`risk`, else planar.toml's [risk]), from the arguments and planar.toml
    (`settings`, default: read)."""
    cfg = load_config() if settings is None else settings
    cls = find_strategy(strategy, cfg) if isinstance(strategy, str) else strategy
    rules = rules_for(risk, cfg, cls.__name__)
    xcfg = exchange_config(exchange or cls.exchange, cfg, url=exchange_url)
    on_stop, stop_timeout = stop_settings(cfg, mode, xcfg, cls.__name__, **stop)
    return cls, xcfg, {"on_stop": on_stop, "stop_timeout": stop_timeout, "risk": rules}


class RunHandle:
    """A handle on a strategy running on an engine thread (paper or live)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def strategy(self) -> Any:
        return self.session.s

    def call(self, action: str, *args: Any, **kwargs: Any) -> Any:
        """`planarpy.call` on the running strategy, holding the state lock meanwhile."""
        from ...actions import call
        with self.session.engine.locked():
            return call(self.session.s, action, *args, **kwargs)

    def halt(self, reason: str = "halted by the user", close: bool | None = None) -> bool:
        """The kill switch: trading HALTED (a `trading_state_changed` event, rule
        "kill_switch"; every later order is denied until `call("reset_trading_state")`),
        every open order cancelled, and the positions closed if `close` (default: the risk
        rules' `halt_closes_positions`). Blocks until the cancels are answered; True when
        no order is left open. `planarpy halt STRATEGY` does the same from another
        terminal."""
        if not isinstance(reason, str):
            raise InvalidArgument(f"halt: reason must be a string, got {reason!r}")
        if close not in (None, True, False):
            raise InvalidArgument(f"halt: close must be True, False or None, got {close!r}")
        session = self.session
        with session.engine.locked():
            session.halt_now(reason, close)
            return not any(ai.orders for ai in session.e.assets)

    def state(self) -> dict[str, Any]:
        """A consistent snapshot: cash, committed, balances, positions, open orders, and
        the trading state ("active", "reducing" or "halted")."""
        e = self.session.e
        with self.session.engine.locked():
            return {"cash": e.state.cash, "committed": e.state.committed,
                    "assets": {ai.symbol: {"balance": ai.balance, "committed": ai.committed,
                                           "long": ai.long.amount, "short": ai.short.amount,
                                           "orders": sorted(ai.orders)}
                               for ai in e.assets},
                    "trades": len(e.state.trades), "trading": e.state.risk.trading.value}

    def status(self) -> str:
        with self.session.engine.locked():
            return self.session.status()

    @property
    def running(self) -> bool:
        return self.session.engine.running

    def start(self, timeout: float = 60.0) -> Self:
        """Start the run; return once it is synced and ticking (see `Session.start`)."""
        self.session.start(timeout)
        return self

    def stop(self, timeout: float | None = None) -> StopReport:
        """Stop ticking, cancel or close as `on_stop` says (retried until the stop
        deadline), flush the trace, close the client. The report says what is left open
        and what on_stop could not do (`report.complete` is False then)."""
        return self.session.stop(timeout)

    def __enter__(self) -> "RunHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        s = self.session.s
        return f"<{type(self).__name__} {type(s).__name__ if s else '?'} running={self.running}>"
