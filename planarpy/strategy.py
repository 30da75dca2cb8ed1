"""The Strategy base class: settings and callbacks.

Subclass it, set the class-level settings and override the callbacks you need. The
engine calls the callbacks; the strategy acts only through `planarpy.call`. What the
engine keeps for a strategy (its state, clock, trace, the mode's executor) lives on
`strategy.engine` (`planarpy.actions.engine.Engine`), never among the strategy's own
names: a setting or attribute of the strategy cannot break the run.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import params as _params
from .actions import Mode
from .actions.engine import Engine
from .core.clock import Clock
from .core.errors import ConfigError, UnknownSymbol, UnsupportedMarginMode
from .core.instances import AssetInstance, State
from .core.market import Market
from .core.orders import Trade
from .core.positions import Position
from .core.risk import RiskEvent


class _View:
    """A read-only view of one of the engine's attributes on the strategy, which an
    assignment in the strategy's own code replaces for that strategy alone (a non-data
    descriptor: the instance's own attribute wins)."""

    def __init__(self, path: str | tuple[str, ...], doc: str) -> None:
        self.path = (path,) if isinstance(path, str) else path
        self.__doc__ = doc

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self
        value = obj._engine
        for name in self.path:
            value = getattr(value, name)
        return value


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
        check_names(cls)
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
        run's history against a backtest's), which holds when value i computed from
        candles i-L+1..i alone is the one over all candles: for the window indicators of
        `planarpy.indicators`, and for its recursive ones (ema, rsi...) once L is the
        lookback their docstrings give; never for a running total. A backtest checks it.
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

    def on_reconcile(self, alignment: Any) -> None:
        """Live: a periodic reconciliation found the exchange differs from the local state
        (`alignment.lines()` says how; see `planarpy.modes.live.alignment`). A strategy
        may also define `checkpoint() -> dict` and `restore(dict)`: its own variables,
        recorded in the trace and given back after a restart."""

    # ---- what a strategy reads ---------------------------------------------------------
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
                e = UnknownSymbol.among(sym, markets, f"{self.exchange}'s markets")
                raise UnknownSymbol(f"{e}. Fetch its rules with `planarpy markets fetch "
                                    f"{self.exchange} {sym}`, or describe it under "
                                    f"[markets.{self.exchange}] in planar.toml")
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
        start_cash = self.initial_cash if cash is None else cash
        if isinstance(start_cash, bool) or not isinstance(start_cash, (int, float)) \
                or not 0 < start_cash < 1e15:
            raise ConfigError(f"{type(self).__name__}: starting cash must be a number > 0 "
                              f"and < 1e15, not {start_cash!r} (initial_cash, or --cash)")
        state = State(self.quote, float(start_cash), assets=assets)
        self._engine = Engine(self, mode, state, clock if clock is not None else Clock())
        self.assets: list[AssetInstance] = self._engine.assets
        self.i = -1  # the index of the candle the tick is on (set by the engine)
        self.load()

    @property
    def engine(self) -> Engine:
        """The engine's side of this strategy: its state, clock, trace and the mode's
        executor (see `planarpy.actions.engine`)."""
        return self._engine

    @engine.setter
    def engine(self, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__}.engine is planarpy's engine-side object "
                             "and cannot be replaced; name your attribute otherwise")

    def asset(self, symbol: str | AssetInstance) -> AssetInstance:
        """The asset instance of `symbol` (UnknownSymbol if it is not in the universe)."""
        if isinstance(symbol, AssetInstance):
            return symbol
        try:
            return self._engine.state.assets[symbol]
        except KeyError:
            raise UnknownSymbol.among(symbol, self._engine.state.assets,
                                      f"{type(self).__name__}'s universe") from None

    @property
    def cash(self) -> float:
        """Cash in the quote currency, what open orders hold included."""
        return self._engine.state.cash

    @property
    def free_cash(self) -> float:
        """Cash that new orders may use."""
        return self._engine.state.free_cash

    @property
    def committed(self) -> float:
        """Cash that open orders hold."""
        return self._engine.state.committed

    def now(self) -> int:
        """The strategy's time, epoch ms (in a backtest, the close of the candle ticked)."""
        return self._engine.clock.now()

    # read-only views of the engine, which the strategy may take over as names of its own:
    # `self.state = "long"` makes `self.state` the strategy's variable, and nothing else
    state = _View("state", "the engine's State: cash, orders, positions, the trading state")
    trades = _View(("state", "trades"), "every trade of the run, oldest first")
    mode = _View("mode", "the mode the strategy runs in (Mode.SIM, PAPER or LIVE)")
    clock = _View("clock", "the strategy's clock (now() in epoch ms)")

    def __repr__(self) -> str:
        e = self._engine
        return (f"<{type(self).__name__} {e.mode.value} {self.exchange} "
                f"cash={e.state.cash:.8g} {self.quote} assets={len(e.assets)}>")


# the callbacks planarpy calls, and the names it sets or reads on a strategy: a subclass
# may override a callback with a method, never with a value; it may not define the others
CALLBACKS = ("load", "reset", "warmup_period", "indicators", "start", "tick", "on_interval",
             "stop", "on_trade", "on_position_open", "on_position_update", "on_position_close",
             "on_order_error", "on_order_update", "on_risk", "on_error", "on_reconcile")
ENGINE_NAMES = {"engine": "planarpy's engine-side object", "_engine": "the engine-side object",
                "i": "the index of the candle the tick is on", "assets": "the asset instances",
                "params": "the values of the parameters of the run", "cash": "the cash",
                "free_cash": "the cash new orders may use",
                "committed": "the cash open orders hold", "asset": "the method asset(symbol)",
                "now": "the method now()"}


def check_names(cls: type) -> None:
    """Refuse a subclass whose setting or attribute shadows a callback or an engine name,
    naming both (a parameter `stop = 0.03` would replace the stop() callback)."""
    for name, value in vars(cls).items():
        what = "parameter" if isinstance(value, _params.Param) else "setting"
        if name in CALLBACKS and (not callable(value) or isinstance(value, _params.Param)):
            raise ConfigError(f"{cls.__name__}.{name} = {value!r} shadows the callback "
                              f"Strategy.{name}() that planarpy calls; give the {what} "
                              "another name")
        if name in ENGINE_NAMES:
            raise ConfigError(f"{cls.__name__}.{name} shadows the engine's {name!r} "
                              f"({ENGINE_NAMES[name]}); give it another name")


def check_instance(s: Strategy) -> None:
    """Refuse a strategy whose own attributes (set in load or reset) shadow a callback."""
    for name in CALLBACKS:  # getattr, not vars(s): reading an instance's __dict__ turns
        # it into a dict for good, and every attribute access of the run gets slower (the
        # tick's self.i, self.x: ~50 ns a candle on 3.11 and 3.12); the class's own are
        # callables (check_names), so a value that is not comes from the instance
        value = getattr(s, name, None)
        if value is not None and not callable(value):
            raise ConfigError(f"{type(s).__name__}: self.{name} = {value!r} shadows the "
                              f"callback {name}() that planarpy calls; give the attribute "
                              "another name")


# names a Param may not take: the base class's own attributes and what __init__ sets
_RESERVED = frozenset(dir(Strategy)) | set(ENGINE_NAMES)
