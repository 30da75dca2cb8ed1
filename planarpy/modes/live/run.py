"""Starting a live strategy, from the command line or from Python (script, REPL, Jupyter).

`start_live` returns a `LiveRun` at once, the strategy running in the background. Its
methods block the calling thread only, so they work in a plain REPL and inside a running
Jupyter kernel alike: the engine has its own loop and never touches the caller's.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...config import load_config
from ...exchanges import ApiKeys, exchange_config, load_keys
from ...core.risk import refuse_unenforced
from ...loader import find_strategy
from ...strategy import Strategy
from ..runtime.handle import RunHandle
from .handlers import HANDLERS
from .session import LiveSession


class LiveRun(RunHandle):
    """A handle on a running live strategy."""

    def reconcile(self, timeout: float = 30.0) -> list[str]:
        """Compare the local state with the exchange's now; [] when they agree."""
        return self.session.engine.blocking(self.session.reconcile(), timeout)


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
    refuse_unenforced(cfg.get("risk"), cls.__name__, "live")
    xcfg = exchange_config(exchange or cls.exchange, cfg, url=exchange_url)
    session = LiveSession(cls, xcfg, keys if keys is not None else load_keys(xcfg.keys or xcfg.name),
                          recorder=trace, handlers=HANDLERS, **options)
    session.start(timeout)
    return LiveRun(session)
