"""Starting a live strategy, from the command line or from Python (script, REPL, Jupyter).

`start_live` returns a `LiveRun` at once, the strategy running in the background. Its
methods block the calling thread only, so they work in a plain REPL and inside a running
Jupyter kernel alike: the engine has its own loop and never touches the caller's.
"""

from __future__ import annotations

from typing import Any, Mapping

import ccxt

from ...config import load_config
from ...core.errors import ConfigError, ExchangeRequestError
from ...exchanges import ApiKeys, load_keys
from ...core.risk import RiskRules
from ...strategy import Strategy
from ..runtime.handle import RunHandle, run_setup
from ...trace.writer import run_trace
from ..runtime.stopping import mode_tables
from ..runtime.supervision import run_options
from .session import LiveSession


class LiveRun(RunHandle):
    """A handle on a running live strategy."""

    def reconcile(self, timeout: float = 30.0) -> list[str]:
        """Compare the local state with the exchange's now; [] when they agree.

        ExchangeRequestError (credentials and signatures removed) if the exchange could
        not be asked in time: nothing is known then, which is not "no difference"."""
        session = self.session
        try:
            return session.engine.blocking(session.reconcile(), timeout)
        except (ccxt.BaseError, TimeoutError, OSError) as e:  # ccxt's quotes the signed URL
            failure = session.describe(e)
        raise ExchangeRequestError(f"reconcile: could not ask the exchange: {failure}")

    def align(self, timeout: float = 30.0) -> Any:
        """Reconcile now as the periodic reconciliation does, policy included; the
        `Alignment` found (see `planarpy.modes.live.alignment`). ExchangeRequestError if
        the exchange could not be asked in time."""
        session = self.session
        try:
            return session.engine.blocking(session.aligner.run(), timeout)
        except (ccxt.BaseError, TimeoutError, OSError) as e:
            failure = session.describe(e)
        raise ExchangeRequestError(f"align: could not ask the exchange: {failure}")


def live_run(strategy: type[Strategy] | str, *, exchange_url: str | None = None,
             exchange: str | None = None, keys: ApiKeys | None = None,
             settings: Mapping[str, Any] | None = None, trace: Any = "auto",
             on_stop: str | None = None, stop_timeout: float | None = None,
             cancel_on_stop: bool = False, close_on_stop: bool = False,
             risk: RiskRules | Mapping[str, Any] | None = None, **options: Any) -> LiveRun:
    """The handle of a live run of `strategy`, not started yet (`start()` starts it); the
    arguments are those of `start_live`."""
    settings = load_config() if settings is None else settings
    cls, xcfg, stop = run_setup(strategy, "live", settings, exchange, exchange_url,
                                risk=risk, on_stop=on_stop, stop_timeout=stop_timeout,
                                cancel_on_stop=cancel_on_stop, close_on_stop=close_on_stop)
    keys = keys if keys is not None else load_keys(xcfg.keys or xcfg.name)
    general, own = mode_tables(settings, "live", cls.__name__)
    hand = own.get("hand_orders", general.get("hand_orders"))
    if hand is not None:
        options.setdefault("hand_orders", hand)
    options = {**run_options(settings, "live", cls.__name__), **options}
    session = LiveSession(cls, xcfg, keys, **stop, **options)  # checks them
    if not keys:
        raise ConfigError(missing_keys(xcfg.keys or xcfg.name))
    session.recorder = run_trace(trace, cls.__name__, xcfg.id,
                                 redact=[v for v in (keys.api_key, keys.secret, keys.password) if v])
    return LiveRun(session)


def missing_keys(account: str) -> str:
    """What to do when account `account` has no API keys."""
    env = f"PLANARPY_{account.upper().replace('-', '_')}"
    return (f"no API keys for exchange account {account!r}: set {env}_API_KEY and {env}_SECRET, "
            f"or write user/keys/{account}.toml with apiKey and secret, or pass "
            "keys=ApiKeys(api_key, secret) (the local exchange's: `planarpy exchange serve` "
            "prints them)")


def start_live(strategy: type[Strategy] | str, *, timeout: float = 60.0,
               **options: Any) -> LiveRun:
    """Start `strategy` live in the background and return its handle once synced.

    `exchange` names the [exchanges.NAME] table (default: the strategy's exchange id);
    `exchange_url` points every endpoint elsewhere (a testnet, the local exchange);
    `keys` are ApiKeys (default: loaded for the exchange account: PLANARPY_<NAME>_API_KEY
    and _SECRET, else user/keys/<name>.toml; ConfigError saying so when there are none);
    `settings` is planar.toml's content (default: read). `trace`: "auto" (the default)
    records to traces/STRATEGY/EXCHANGE ($PLANARPY_TRACES, else under the current
    directory) as the command line does; an EventTrace (or anything with record/close)
    records there; None records nothing.
    `on_stop` ("keep", "cancel" or "close"; `cancel_on_stop=True` and
    `close_on_stop=True` are older spellings) and `stop_timeout` (seconds) default to
    planar.toml's (see `planarpy.modes.runtime.stopping`). `risk` gives the risk rules
    (RiskRules, or a table shaped like planar.toml's [risk]; default: planar.toml's
    [risk]), enforced as in a backtest. Other options go to
    LiveSession (tick_interval, waitfor, stall_after, idle_stop, history, strategy_id,
    params for the strategy's parameters, hand_orders ("adopt" or "ignore", default
    planar.toml's [live] hand_orders, else "adopt"), clock, backlog, close_delay, candles,
    ...; see `runtime.Session` for how ticks happen).
    """
    return live_run(strategy, **options).start(timeout)
