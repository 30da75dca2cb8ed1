"""The handle a script, REPL or notebook holds on a running strategy.

Its methods block the calling thread only, so they work in a plain REPL and inside a
running Jupyter kernel alike: the engine has its own loop and never touches the caller's.
"""

from __future__ import annotations

from typing import Any, Mapping, Self

from ...config import load_config
from ...core.display import html_table, num, trading_rows, word
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
        rules' `halt_closes_positions`). Blocks until the cancels are answered and the
        halt is committed to the trace; True when no order is left open and, with a close,
        nothing is left to close (it goes on once the orders are cancelled). `planarpy
        halt STRATEGY` does the same from another terminal."""
        if not isinstance(reason, str):
            raise InvalidArgument(f"halt: reason must be a string, got {reason!r}")
        if close is not None and close is not True and close is not False:  # 1 == True
            raise InvalidArgument(f"halt: close must be True, False or None, got {close!r}")
        session = self.session
        with session.engine.locked():
            session.halt_now(reason, close)
            done = not any(ai.orders for ai in session.e.assets) and not session.e.close_due
        unrecorded = session.commit_trace()
        if unrecorded is not None:
            session.tell_error("halt", f"the halt is not in the trace yet: {unrecorded}")
        return done

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

    def _figures(self) -> tuple[float, int, float]:
        st = self.session.e.state
        with self.session.engine.locked():
            return (st.equity(self.session.prices()), len(st.trades), st.fees)

    def summary(self) -> dict[str, Any]:
        """What the run did since it started, as sim's summary says it: the equity then and
        now (at the last closes), the PnL, the fills and fees of this run, and what is
        open. Plain numbers; `format_summary` shows them."""
        from .stopping import open_items
        s = self.session.s
        start = getattr(self.session, "baseline", None) or self._figures()
        equity, fills, fees = self._figures()
        risk = self.session.e.state.risk
        with self.session.engine.locked():
            still = open_items(self.session.e)
            changes = [dict(c) for c in risk.changes]
        return {"strategy": type(s).__name__, "mode": self.session.e.mode.value, "quote": s.quote,
                "start_equity": start[0], "equity": equity, "pnl": equity - start[0],
                "return": (equity - start[0]) / start[0] if start[0] else None,
                "fills": fills - start[1], "fees": fees - start[2], "open": still,
                "risk_rules": risk.rules.in_force(), "trading": risk.trading.value,
                "risk_denied": risk.denied, "risk_denied_leverage": risk.denied_leverage,
                "trading_changes": changes}

    def format_summary(self) -> str:
        """The summary as sim's is printed: one `name  value` line each."""
        d = self.summary()
        q = d["quote"]
        ret = "" if d["return"] is None else f" ({d['return'] * 100:+.2f}%)"
        rows = [("strategy", f"{d['strategy']} ({d['mode']})"),
                ("equity", f"{num(d['start_equity'])} {q} at start, {num(d['equity'])} {q} now"),
                ("pnl", f"{'+' if d['pnl'] >= 0 else ''}{num(d['pnl'])} {q}{ret}"),
                ("fills", str(d["fills"])), ("fees paid", f"{num(d['fees'])} {q}"),
                ("open", "; ".join(d["open"]) if d["open"] else "nothing"),
                *trading_rows(d["risk_rules"], d["trading_changes"], d["risk_denied"],
                              leverage=d["risk_denied_leverage"])]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

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

    def _repr_html_(self) -> str:
        """The status line, then each asset as the strategy holds it (at market precision)."""
        s = self.session.s
        name = f"{type(self).__name__} {type(s).__name__ if s else '?'}"
        if s is None:
            return html_table(name, [("running", str(self.running))])
        st = self.session.e.state
        with self.session.engine.locked():
            rows = [("running", str(self.running)), ("status", self.session.status()),
                    ("cash", f"{num(st.cash)} {s.quote} (committed {num(st.committed)})"),
                    ("trades", str(len(st.trades)))]
            rows += [(ai.symbol, repr(ai)[1:-1].split(" ", 2)[2]) for ai in st.assets.values()]
            orders = [o for ai in st.assets.values() for o in ai.orders.values()]
            table = [["id", "symbol", "status", "side", "amount", "price", "filled"]] + [
                [o.id, o.symbol, word(o.status), word(o.side), num(o.amount), num(o.price),
                 num(o.filled)] for o in orders]
        return html_table(name, rows, table if orders else None)
