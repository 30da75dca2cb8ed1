"""Starting a paper strategy from Python (script, REPL, Jupyter) or the command line.

`start_paper` returns a `PaperRun` at once, the strategy running in the background on live
market data; its methods block the calling thread only, as live mode's handle's do.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...core.risk import RiskRules
from ...strategy import Strategy
from ...config import load_config
from ..runtime.handle import RunHandle, run_setup
from ...trace.writer import run_trace
from ..runtime.supervision import run_options
from .session import PaperSession


class PaperRun(RunHandle):
    """A handle on a running paper strategy (`call`, `state`, `status`, `stop`, `market`)."""

    def market(self, symbol: str | None = None) -> dict[str, Any]:
        """What the engine last saw of a market: last price, best bid/ask, trades seen."""
        session = self.session
        with session.engine.locked():
            m = session.markets[symbol or session.e.assets[0].symbol]
            return m.summary()



def paper_run(strategy: type[Strategy] | str, *, exchange_url: str | None = None,
              exchange: str | None = None, settings: Mapping[str, Any] | None = None,
              cash: float | None = None, trace: Any = "auto", on_stop: str | None = None,
              stop_timeout: float | None = None, cancel_on_stop: bool = False,
              close_on_stop: bool = False, risk: RiskRules | Mapping[str, Any] | None = None,
              **options: Any) -> PaperRun:
    """The handle of a paper run of `strategy`, not started yet (`start()` starts it); the
    arguments are those of `start_paper`."""
    settings = load_config() if settings is None else settings
    cls, xcfg, stop = run_setup(strategy, "paper", settings, exchange, exchange_url,
                                risk=risk, on_stop=on_stop, stop_timeout=stop_timeout,
                                cancel_on_stop=cancel_on_stop, close_on_stop=close_on_stop)
    options = {**run_options(settings, "paper", cls.__name__), **options}
    session = PaperSession(cls, xcfg, cash=cash, **stop, **options)
    session.recorder = run_trace(trace, cls.__name__, xcfg.id)
    return PaperRun(session)


def start_paper(strategy: type[Strategy] | str, *, timeout: float = 60.0,
                **options: Any) -> PaperRun:
    """Start `strategy` in paper mode in the background; return its handle once it runs.

    Market data comes from the exchange's public endpoints (no keys); orders are filled by
    planarpy. `cash` overrides the strategy's `initial_cash`. `exchange` names the
    [exchanges.NAME] table (default: the strategy's exchange id); `exchange_url` points every
    endpoint elsewhere (the local exchange). `trace` is as for `start_live`: "auto" (the
    default) records to traces/STRATEGY/EXCHANGE, None records nothing. `on_stop`,
    `stop_timeout` and `risk` are as for `start_live`. Other options go
    to PaperSession (tick_interval, stall_after, candles, depth, market_every, waitfor,
    observers, params, clock, backlog, close_delay; see `runtime.Session` for how ticks
    happen).
    """
    return paper_run(strategy, **options).start(timeout)
