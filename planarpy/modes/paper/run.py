"""Starting a paper strategy from Python (script, REPL, Jupyter) or the command line.

`start_paper` returns a `PaperRun` at once, the strategy running in the background on live
market data; its methods block the calling thread only, as live mode's handle's do.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...config import load_config
from ...exchanges import exchange_config
from ...core.risk import refuse_unenforced
from ...loader import find_strategy
from ...strategy import Strategy
from ..runtime.handle import RunHandle
from .handlers import HANDLERS
from .session import PaperSession


class PaperRun(RunHandle):
    """A handle on a running paper strategy (`call`, `state`, `status`, `stop`, `market`)."""

    def market(self, symbol: str | None = None) -> dict[str, Any]:
        """What the engine last saw of a market: last price, best bid/ask, trades seen."""
        session = self.session
        with session.engine.locked():
            m = session.markets[symbol or session.s.assets[0].symbol]
            return m.summary()



def start_paper(strategy: type[Strategy] | str, *, exchange_url: str | None = None,
                exchange: str | None = None, settings: Mapping[str, Any] | None = None,
                cash: float | None = None, trace: Any = None, timeout: float = 60.0,
                **options: Any) -> PaperRun:
    """Start `strategy` in paper mode in the background; return its handle once it runs.

    Market data comes from the exchange's public endpoints (no keys); orders are filled by
    planarpy. `cash` overrides the strategy's `initial_cash`. `exchange` names the
    [exchanges.NAME] table (default: the strategy's exchange id); `exchange_url` points every
    endpoint elsewhere (the local exchange). `trace` is an EventTrace (or anything with
    record/close); `options` go to PaperSession (tick_interval, stall_after, candles, depth,
    market_every, waitfor, cancel_on_stop, close_on_stop, observers).
    """
    cfg = load_config() if settings is None else settings
    cls = find_strategy(strategy, cfg) if isinstance(strategy, str) else strategy
    refuse_unenforced(cfg.get("risk"), cls.__name__, "paper")
    xcfg = exchange_config(exchange or cls.exchange, cfg, url=exchange_url)
    session = PaperSession(cls, xcfg, recorder=trace, cash=cash, handlers=HANDLERS, **options)
    session.start(timeout)
    return PaperRun(session)
