"""The engine's side of a strategy: what planarpy keeps and does for it, in every mode.

A `Strategy` holds the user's settings, callbacks and variables; everything planarpy
itself reads and changes lives here, on `strategy.engine`: the state (cash, orders,
positions, the trading state), the clock, the mode, the trace recorder, the mode's
executor and its action table, and `emit`, the one way state changes. It is one type in
sim, paper and live, so that the pipeline and the modes never read a name a strategy
could have taken for itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from ..core import apply as _apply
from ..core.accounting import PositionChange
from ..core.instances import AssetInstance, State
from . import Dispatch, Mode
from .contingent import follow
from .pipeline import watch_errors

if TYPE_CHECKING:  # the strategy holds its engine: imported for the annotations only
    from ..strategy import Strategy
    from .pipeline import Executor

log = logging.getLogger("planarpy.strategy")
_SIM = Mode.SIM
_APPLY, _NOTHING = _apply.APPLY, _apply._nothing
_UNCHANGED = PositionChange.NONE
_OPENED, _UPDATED = PositionChange.OPENED, PositionChange.UPDATED


class Engine:
    """The engine's side of one strategy (see the module docstring).

    `state`: its State; `assets`: its asset instances (the list `strategy.assets` is);
    `clock`: the strategy's clock (`now()`, ms); `recorder`: the trace, if any;
    `executor` and `dispatch`: what the mode attached when the run started;
    `close_due`: a halt's close that is not done yet (`pipeline.close_again`).
    """

    __slots__ = ("strategy", "name", "mode", "state", "assets", "clock", "recorder", "executor",
                 "dispatch", "close_due")

    def __init__(self, strategy: Strategy, mode: Mode, state: State, clock: Any) -> None:
        self.strategy = strategy
        self.name = type(strategy).__name__
        self.mode = mode
        self.state = state
        self.assets: list[AssetInstance] = list(state.assets.values())
        self.clock = clock
        self.recorder: Any = None
        # set by the mode when a run starts: its side of the pipeline and its action table
        self.executor: Executor | None = None
        self.dispatch: Dispatch = {}
        self.close_due = False

    def now(self) -> int:
        return self.clock.now()

    def emit(self, kind: str, payload: Any, symbol: str | None = None,
             note: Mapping[str, Any] | None = None) -> _apply.Effect:
        """Record an event (if a recorder is attached), apply it, and tell the callbacks.

        `payload` is a JSON-able dict, or an Order or Trade for order and trade events
        (turned into a dict only for the trace); `note` adds fields to the trace's copy
        only (what a fill came from).
        """
        if self.recorder is not None:
            data = dict(_apply.as_payload(payload))
            if note:
                data.update(note)
            self.recorder.record(kind, data, symbol=symbol, ts=self.clock.now_ns())
        effect = _APPLY.get(kind, _NOTHING)(self.state, payload)  # apply_event, one call less
        if effect.symbol is not None:
            s = self.strategy
            ai = self.state.assets[effect.symbol]
            if effect.trade is not None:
                if self.mode is _SIM:  # invoke's first case, without its call: once a fill
                    s.on_trade(ai, effect.trade)
                else:
                    self.invoke(s.on_trade, ai, effect.trade)
            change = effect.position
            if change is not _UNCHANGED:
                pos = ai.position(effect.side)
                if change is _OPENED:
                    self.invoke(s.on_position_open, ai, pos)
                elif change is _UPDATED:
                    self.invoke(s.on_position_update, ai, pos)
                else:
                    self.invoke(s.on_position_close, ai, pos)
        elif effect.risk is not None:
            self.invoke(self.strategy.on_risk, effect.risk)
        order = effect.order
        if order is not None and (order.group or order.legs) and self.executor is not None:
            follow(self, kind, order)  # an OCO group settles, a bracket places its exits
        return effect

    def reject(self, ai: AssetInstance | None, reason: str, request: Mapping[str, Any],
               counted: bool = False) -> None:
        """Report a failed action: an order-error event, then the error-rate breaker looks
        at it, then the on_order_error callback (after the breaker: an order it places
        meets the state the error left). `counted`: the breaker counted this
        failure already (live: the exchange error of a submit that got no answer, now
        found never placed; what became of an OCO pair one of whose legs was refused), so
        it is not counted twice."""
        payload = {"reason": reason, "request": dict(request), "ts": self.clock.now()}
        if counted:
            payload["counted"] = True
        self.emit("order_error", payload, symbol=ai.symbol if ai else None)
        if self.state.risk.rules.max_errors_per_minute is not None and not counted:
            watch_errors(self)
        self.invoke(self.strategy.on_order_error, ai, reason, request)

    def invoke(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run one of the strategy's callbacks. In a backtest its error stops the run; in
        paper and live it is logged and passed to `on_error`, so that a bug in a callback
        cannot stop the watcher that delivered the event (the event is applied already)."""
        if self.mode is _SIM:
            callback(*args)
            return
        try:
            callback(*args)
        except Exception as e:
            name = getattr(callback, "__name__", "callback")
            log.exception("%s.%s raised", self.name, name)
            if name != "on_error":
                self.invoke(self.strategy.on_error, "callback",
                            f"{name} raised {type(e).__name__}: {e}")

    # ---- indicators -------------------------------------------------------------------
    def prepare_indicators(self, assets: Iterable[AssetInstance] | None = None
                           ) -> dict[str, dict[str, np.ndarray]]:
        """Compute the strategy's `indicators()` for each asset and store them as lists in
        `ai.ind`; return them as arrays too, by symbol and name (the sim's look-ahead checks
        compare with those rather than convert the lists back)."""
        s = self.strategy
        arrays: dict[str, dict[str, np.ndarray]] = {}
        for ai in self.assets if assets is None else assets:
            out = s.indicators(ai)
            if out is None:
                continue
            n = len(ai.ohlcv) if ai.ohlcv is not None else None
            mine = arrays[ai.symbol] = {}
            for name, values in out.items():
                arr = mine[name] = np.asarray(values)
                if n is not None and arr.shape != (n,):
                    raise ValueError(f"indicator {name!r} of {ai.symbol} has shape {arr.shape}, "
                                     f"expected ({n},): one value per candle")
                values = arr.tolist()
                current = ai.ind.get(name)
                if current is None:
                    ai.ind[name] = values
                else:  # in place: a strategy may hold on to the list
                    current[:] = values
        return arrays

    def update_indicators(self, ai: AssetInstance, known: int) -> None:
        """Append to `ai.ind` the values of the candles of `ai.ohlcv` from index `known` on
        (the lists must hold `known` values): computed over the last `lookback` candles,
        or over all of them without a lookback (see `Strategy.indicators`)."""
        if known == 0 or not ai.ind or any(len(v) != known for v in ai.ind.values()):
            self.prepare_indicators([ai])
            return
        s = self.strategy
        full = ai.ohlcv
        start = 0 if s.lookback is None else max(0, known - s.lookback + 1)
        ai.ohlcv = full[start:]
        try:
            out = s.indicators(ai) or {}
        finally:
            ai.ohlcv = full
        if set(out) != set(ai.ind):
            raise ValueError(f"indicators of {ai.symbol} changed names: {sorted(ai.ind)} "
                             f"became {sorted(out)}")
        for name, values in out.items():
            arr = np.asarray(values)
            if arr.shape != (len(full) - start,):
                raise ValueError(f"indicator {name!r} of {ai.symbol} has shape {arr.shape}, "
                                 f"expected ({len(full) - start},): one value per candle")
            ai.ind[name].extend(arr[known - start:].tolist())

    def __repr__(self) -> str:
        return f"<Engine of {self.name} {self.mode.value}>"
