"""Starting a live strategy, from the command line or from Python (script, REPL, Jupyter).

`start_live` returns a `LiveRun` at once, the strategy running in the background. Its
methods block the calling thread only, so they work in a plain REPL and inside a running
Jupyter kernel alike: the engine has its own loop and never touches the caller's.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...config import load_config
from ...exchanges import ApiKeys, exchange_config, load_keys
from ...loader import find_strategy
from ...strategy import Strategy
from .session import LiveSession


class LiveRun:
    """A handle on a running live strategy."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session

    @property
    def strategy(self) -> Any:
        return self.session.s

    def call(self, action: str, *args: Any, **kwargs: Any) -> Any:
        """`planarpy.call` on the running strategy, holding the state lock meanwhile."""
        from ...actions import call
        with self.session.engine.locked():
            return call(self.session.s, action, *args, **kwargs)

    def state(self) -> dict[str, Any]:
        """A consistent snapshot: cash, committed, balances, positions, open orders."""
        s = self.session.s
        with self.session.engine.locked():
            return {"cash": s.state.cash, "committed": s.state.committed,
                    "assets": {ai.symbol: {"balance": ai.balance, "committed": ai.committed,
                                           "long": ai.long.amount, "short": ai.short.amount,
                                           "orders": sorted(ai.orders)}
                               for ai in s.assets},
                    "trades": len(s.state.trades)}

    def reconcile(self, timeout: float = 30.0) -> list[str]:
        """Compare the local state with the exchange's now; [] when they agree."""
        return self.session.engine.blocking(self.session.reconcile(), timeout)

    def status(self) -> str:
        with self.session.engine.locked():
            return self.session.status()

    @property
    def running(self) -> bool:
        return self.session.engine.running

    def stop(self, timeout: float = 60.0) -> None:
        """Stop ticking, cancel/close as configured, flush the trace, close the client."""
        self.session.stop(timeout)

    def __enter__(self) -> "LiveRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        s = self.session.s
        return f"<LiveRun {type(s).__name__ if s else '?'} running={self.running}>"


def start_live(strategy: type[Strategy] | str, *, exchange_url: str | None = None,
               exchange: str | None = None, keys: ApiKeys | None = None,
               settings: Mapping[str, Any] | None = None, trace: Any = None,
               timeout: float = 60.0, **options: Any) -> LiveRun:
    """Start `strategy` live in the background and return its handle once synced.

    `exchange` names the [exchanges.NAME] table (default: the strategy's exchange id);
    `exchange_url` points every endpoint elsewhere (a testnet, the local exchange).
    `trace` is an EventTrace (or anything with record/close); `options` go to LiveSession
    (tick_interval, waitfor, stall_after, idle_stop, cancel_on_stop, close_on_stop, ...).
    """
    cfg = load_config() if settings is None else settings
    cls = find_strategy(strategy, cfg) if isinstance(strategy, str) else strategy
    xcfg = exchange_config(exchange or cls.exchange, cfg, url=exchange_url)
    session = LiveSession(cls, xcfg, keys if keys is not None else load_keys(xcfg.keys or xcfg.name),
                          recorder=trace, **options)
    session.start(timeout)
    return LiveRun(session)
