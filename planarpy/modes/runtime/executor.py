"""What the paper and live executors share (`planarpy.actions.pipeline.Executor`).

The pipeline's steps before execution (parse, build the Order, the gate) run in the
caller's context, holding the state lock: strategy code on the engine's loop, or a script
calling from another thread. An executor's own steps that wait for the exchange or for
the streams run on the engine's loop, and the caller waits for them (`block`): as the
sim does, a `call` returns what it did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

import ccxt

from ...core.instances import AssetInstance
from ...core.orders import Order, Trade
from ...core.risk import TradingState

if TYPE_CHECKING:  # the session holds its executor: imported for the annotations only
    from .session import Session

GRACE = 10.0  # seconds beyond `waitfor` that a blocked call waits for the engine


class SessionExecutor:
    """The base of the paper and live executors: prices, waiting, deferred actions."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def mark(self, ai: AssetInstance) -> float:
        """The close of the candle the strategy last ticked (the newest before any), as a
        backtest marks it: the loss breakers and the risk rules see what the sim sees."""
        o = ai.ohlcv
        if o is None or not len(o):
            return float("nan")
        i = self.session.s.i
        return o.close.item(i if 0 <= i < len(o) else -1)

    def last_close(self, ai: AssetInstance) -> float:
        """The newest close known (0 when there is none yet)."""
        o = ai.ohlcv
        return o.close.item(-1) if o is not None and len(o) else 0.0

    def own_trades(self, ai: AssetInstance) -> Sequence[Trade]:
        return ai.trades  # a paper account starts with no trades

    def settle(self, ai: AssetInstance, order: Order, then: Callable[[], None]) -> None:
        """Nothing to settle: a paper order's outcome is always known (live overrides)."""

    def on_trading_state(self, state: TradingState) -> None:
        """Nothing to do: the tick loop reads the risk state at every close."""

    def soon(self, fn: Callable[[], None], order: Order | None = None) -> None:
        # a call waiting for `order` runs it before it returns (engine.soon)
        caller = self.session.callers.get(order.id) if order is not None else None
        self.session.engine.soon(fn, caller)

    def block(self, coro: Awaitable[Any], timeout: float, late: Any, what: str) -> Any:
        """Run an action on the engine's loop and wait up to `timeout` for it. Past that
        the action goes on in the background (it is never cut off halfway), on_error hears
        of it, and the call returns `late`: `missing` for an order (it exists locally and
        is open until the exchange says more), False for the others. An exchange error
        that the action let through is told to on_error (credentials removed), never
        raised: the call returns `late` then too."""
        session = self.session
        try:
            return session.engine.blocking(coro, timeout)
        except TimeoutError:
            error: Exception = TimeoutError(f"no answer within {timeout:g} s; it goes on in "
                                            "the background")
        except ccxt.BaseError as e:
            error = e
        session.engine.fire(session.report_error(error, where=what))
        return late

    def wait(self, waitfor: float | None) -> float:
        """The seconds an action waits: its own `waitfor`, else the run's."""
        return self.session.waitfor if waitfor is None else waitfor
