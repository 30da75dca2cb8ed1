"""The Strategy base class: settings, callbacks, and the state the engine keeps for it.

Subclass it, set the class-level settings and override the callbacks you need. The
engine calls the callbacks; the strategy acts only through `planarpy.call`.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from . import params as _params
from .actions import Dispatch, Mode, pipeline
from .core import apply as _apply
from .core.accounting import PositionChange
from .core.clock import Clock
from .core.errors import ConfigError, UnknownSymbol, UnsupportedMarginMode
from .core.instances import AssetInstance, State
from .core.market import Market
from .core.orders import Trade
from .core.positions import Position
from .core.risk import RiskEvent

log = logging.getLogger(__name__)
_SIM = Mode.SIM
_UNCHANGED = PositionChange.NONE


class Strategy:
    """Base class of every strategy.

    Settings (class attributes): `exchange` (ccxt id), `quote` (the cash currency),
    `timeframe`, `margin` ("none" or "isolated"), `universe` (symbols), `initial_cash`
    (starting cash in sim and paper), `warmup` (candles to skip before the first tick),
    `lookback` (how many candles each indicator value depends on; see `indicators`).
    Tunable parameters are `planarpy.Param` class attributes; `self.params` holds the
    values of this run (defaults, or those given with `params=` / `-p name=value`).
    """

    exchange: str = "binance"
    quote: str = "USDT"
    timeframe: str = "1m"
    margin: str = "none"
    universe: tuple[str, ...] = ()
    initial_cash: float = 100.0
    warmup: int = 0
    lookback: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _params.check_class(cls, _RESERVED)

    # ---- callbacks -------------------------------------------------------------------
    def load(self) -> None:
        """Once, after the assets exist and before any data is read."""

    def reset(self) -> None:
        """Before each run: put the strategy's own variables back to their start."""

    def warmup_period(self) -> int:
        """How many candles the strategy needs before its first tick."""
        return self.warmup

    def indicators(self, ai: AssetInstance) -> Mapping[str, Any] | None:
        """Indicators of `ai.ohlcv`, vectorised: name -> one value per candle.

        The engine stores each as a list in `ai.ind[name]`: read `ai.ind[name][self.i]`.
        An indicator must be a function of the candles alone (nothing else, no state kept
        between calls), and causal: value i uses candles <= i only (a backtest checks
        this). A backtest computes them once over all its candles. Paper and live compute
        them as candles close and append each new candle's values to the lists in place
        (so a strategy may hold on to a list): with `lookback = L`, from the last L
        candles only; without, over every candle since the run began. Either way a value
        equals what the same function gives over the same candles in a backtest, bit for
        bit; with a lookback it also does not depend on where the candles start (a live
        run's history against a backtest's), which holds when value i depends only on
        candles i-L+1..i and is computed from them alone (`indicators.sma` is; a
        cumulative sum or an EMA is not), and which a backtest checks.
        """
        return None

    def start(self) -> None:
        """Just before the first tick."""

    def tick(self, ts: int) -> None:
        """Once for every candle that closes, in order; `self.i` is the index of the candle
        that closed at `ts`. Paper and live tick the same candles a backtest does."""

    def on_interval(self, ts: int) -> None:
        """Paper and live, when the run has a `tick_interval`: every `tick_interval` seconds
        between candle closes (`ts` is the exchange's time, `self.i` the last candle
        ticked). A backtest never calls it. It may `call`."""

    def stop(self) -> None:
        """After the last tick."""

    def on_trade(self, ai: AssetInstance, trade: Trade) -> None:
        """A fill of one of the strategy's orders."""

    def on_position_open(self, ai: AssetInstance, position: Position) -> None: ...
    def on_position_update(self, ai: AssetInstance, position: Position) -> None: ...
    def on_position_close(self, ai: AssetInstance, position: Position) -> None: ...

    def on_order_error(self, ai: AssetInstance | None, reason: str,
                       request: Mapping[str, Any]) -> None:
        """An order or action failed; `call` returned None (or False)."""

    def on_order_update(self, ai: AssetInstance, before: Mapping[str, Any],
                        after: Mapping[str, Any]) -> None:
        """Live: the exchange updated one of the strategy's orders (snapshots before, after)."""

    def on_risk(self, event: RiskEvent) -> None:
        """A risk rule denied an order (`event.kind == "denied"`; `call` returned None or
        False), or the trading state changed (`"state_changed"`: a breaker tripped, or a
        reset). `event.rule` names the rule, `event.reason` quotes the figures."""

    def on_error(self, where: str, message: str) -> None:
        """Live and paper: an exchange or connection error (`where` names the request or
        watcher; the message never holds a credential). Runs on the engine's loop: do not
        `call` from here."""

    # ---- engine side -----------------------------------------------------------------
    def __init__(self, markets: Mapping[str, Market], *, mode: Mode = Mode.SIM,
                 cash: float | None = None, clock: Any = None,
                 params: Mapping[str, Any] | None = None) -> None:
        if self.margin not in ("none", "isolated"):
            raise UnsupportedMarginMode(
                f"{type(self).__name__}: margin mode {self.margin!r} is not supported; "
                "use 'none' (spot) or 'isolated'")
        if not self.universe:
            raise ConfigError(f"{type(self).__name__}: the universe is empty; "
                              "set universe = ('BASE/QUOTE', ...)")
        assets = {}
        for sym in self.universe:
            m = markets.get(sym)
            if m is None:
                raise UnknownSymbol(f"{sym!r} is not in {self.exchange}'s markets; known: "
                                    f"{', '.join(sorted(markets)) or 'none'}")
            want_derivative = self.margin == "isolated"
            if m.is_derivative != want_derivative:
                raise ConfigError(f"{sym} is a {m.kind} market but {type(self).__name__} has "
                                  f"margin={self.margin!r}")
            if m.quote != self.quote and m.settle != self.quote:
                raise ConfigError(f"{sym} is quoted in {m.quote}, not in the strategy's "
                                  f"quote currency {self.quote}")
            assets[sym] = AssetInstance(m)
        self.params: dict[str, Any] = _params.resolve(type(self), params)
        for name, value in self.params.items():  # not __dict__.update: reading __dict__
            setattr(self, name, value)  # would cost every later attribute access its speed
        lookback = self.lookback
        if lookback is not None and (isinstance(lookback, bool) or not isinstance(lookback, int)
                                     or lookback < 1):
            raise ConfigError(f"{type(self).__name__}: lookback must be a whole number of "
                              f"candles >= 1 (or None), got {lookback!r}")
        self.mode = mode
        self.clock = clock if clock is not None else Clock()
        self.state = State(self.quote, float(self.initial_cash if cash is None else cash), assets=assets)
        self.assets: list[AssetInstance] = list(assets.values())
        self.i = -1
        self.engine: Any = None
        self.recorder: Any = None
        # set by the mode when a run starts: its action table and its side of the pipeline
        self.dispatch: Dispatch = {}
        self.executor: pipeline.Executor | None = None
        self.load()

    def asset(self, symbol: str | AssetInstance) -> AssetInstance:
        """The asset instance of `symbol` (UnknownSymbol if it is not in the universe)."""
        if isinstance(symbol, AssetInstance):
            return symbol
        try:
            return self.state.assets[symbol]
        except KeyError:
            raise UnknownSymbol(f"{symbol!r} is not in {type(self).__name__}'s universe "
                                f"({', '.join(self.state.assets)})") from None

    @property
    def cash(self) -> float:
        return self.state.cash

    @property
    def free_cash(self) -> float:
        return self.state.free_cash

    @property
    def committed(self) -> float:
        return self.state.committed

    @property
    def trades(self) -> list[Trade]:
        return self.state.trades

    def now(self) -> int:
        return self.clock.now()

    def emit(self, kind: str, payload: Any, symbol: str | None = None,
             note: Mapping[str, Any] | None = None) -> _apply.Effect:
        """Record an event (if a recorder is attached), apply it, and tell the callbacks.

        `payload` is a JSON-able dict, or an Order or Trade for order and trade events;
        `note` adds fields to the trace's copy only (what a fill came from).
        """
        if self.recorder is not None:
            data = dict(_apply.as_payload(payload))
            if note:
                data.update(note)
            self.recorder.record(kind, data, symbol=symbol, ts=self.clock.now_ns())
        effect = _apply.apply_event(self.state, kind, payload)
        if effect.symbol is not None:
            ai = self.state.assets[effect.symbol]
            if effect.trade is not None:
                if self.mode is _SIM:  # invoke's first case, without its call: once a fill
                    self.on_trade(ai, effect.trade)
                else:
                    self.invoke(self.on_trade, ai, effect.trade)
            change = effect.position
            if change is not _UNCHANGED:
                pos = ai.position(effect.side)
                if change is PositionChange.OPENED:
                    self.invoke(self.on_position_open, ai, pos)
                elif change is PositionChange.UPDATED:
                    self.invoke(self.on_position_update, ai, pos)
                else:
                    self.invoke(self.on_position_close, ai, pos)
        elif effect.risk is not None:
            self.invoke(self.on_risk, effect.risk)
        return effect

    def reject(self, ai: AssetInstance | None, reason: str, request: Mapping[str, Any]) -> None:
        """Report a failed action: an order-error event and the on_order_error callback;
        then the error-rate breaker looks at it."""
        payload = {"reason": reason, "request": dict(request), "ts": self.clock.now()}
        self.emit("order_error", payload, symbol=ai.symbol if ai else None)
        self.invoke(self.on_order_error, ai, reason, request)
        if self.state.risk.rules.max_errors_per_minute is not None:
            pipeline.watch_errors(self)

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
            log.exception("%s.%s raised", type(self).__name__, name)
            if name != "on_error":
                self.invoke(self.on_error, "callback", f"{name} raised {type(e).__name__}: {e}")

    def prepare_indicators(self, assets: Iterable[AssetInstance] | None = None) -> None:
        """Compute `indicators()` for each asset and store them as lists in `ai.ind`."""
        for ai in self.assets if assets is None else assets:
            out = self.indicators(ai)
            if out is None:
                continue
            n = len(ai.ohlcv) if ai.ohlcv is not None else None
            for name, values in out.items():
                arr = np.asarray(values)
                if n is not None and arr.shape != (n,):
                    raise ValueError(f"indicator {name!r} of {ai.symbol} has shape {arr.shape}, "
                                     f"expected ({n},): one value per candle")
                values = arr.tolist()
                current = ai.ind.get(name)
                if current is None:
                    ai.ind[name] = values
                else:  # in place: a strategy may hold on to the list
                    current[:] = values

    def update_indicators(self, ai: AssetInstance, known: int) -> None:
        """Append to `ai.ind` the values of the candles of `ai.ohlcv` from index `known` on
        (the lists must hold `known` values): computed over the last `lookback` candles,
        or over all of them without a lookback (see `indicators`)."""
        if known == 0 or not ai.ind or any(len(v) != known for v in ai.ind.values()):
            self.prepare_indicators([ai])
            return
        full = ai.ohlcv
        start = 0 if self.lookback is None else max(0, known - self.lookback + 1)
        ai.ohlcv = full[start:]
        try:
            out = self.indicators(ai) or {}
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
        return (f"<{type(self).__name__} {self.mode.value} {self.exchange} "
                f"cash={self.state.cash:.8g} {self.quote} assets={len(self.assets)}>")


# names a Param may not take: the base class's own attributes and what __init__ sets
_RESERVED = frozenset(dir(Strategy)) | {"params", "mode", "clock", "state", "assets", "i",
                                        "engine", "recorder"}
