"""Pre-trade risk rules, circuit breakers and the trading state.

Every rule is a pure function of the strategy's state, its rules and (for the order
rules) one order: it returns why the order may not go (a `Denial`) or why trading must
change state (a `Breach`), or None. Nothing here sends or emits anything: the gate
(`planarpy.actions.gate`) turns a denial into a `risk_denied` event and a breach into a
`trading_state_changed` event, and `core/apply.py` turns those into state, so that a
replay of the trace reproduces the trading state exactly.

Units: notionals are in the strategy's quote currency; `max_daily_loss` and
`max_drawdown` are fractions (0.05 = 5%) of the equity at the start of the UTC day and
of the highest equity seen; rates count events in the last 1 s or 60 s of the strategy's
clock (candle closes in a backtest, so a backtest is deterministic).
"""

from __future__ import annotations

import bisect
import collections
import difflib
import enum
import functools
import logging
import math
import numbers
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import attrs

from .errors import ConfigError, shown
from .orders import Order, Side, Trade, opens_position

if TYPE_CHECKING:  # instances holds a RiskState: import it for the annotations only
    from .instances import AssetInstance, State

log = logging.getLogger(__name__)

RATE_CAP = 10_000  # the largest rate limit a rule may set (the windows keep this many times)
DAY_MS = 86_400_000
MINUTE_MS = 60_000  # the longest span a rate window (throttle, error breaker) looks back


class TradingState(str, enum.Enum):
    """ACTIVE: every order may go. REDUCING: only orders that reduce exposure. HALTED: none."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


_ACTION_STATE = {"halt": TradingState.HALTED, "reduce": TradingState.REDUCING}
# enum members read once: on Python 3.11 `Side.BUY` in a function costs a metaclass
# __getattr__ hook each time (several hundred instructions; 3.12 has none)
_BUY = Side.BUY
_ACTIVE, _HALTED = TradingState.ACTIVE, TradingState.HALTED
_IN_UP, _IN_DOWN = 1.0 + 1e-9, 1.0 - 1e-9  # price_band's room for rounding
_ULPS4 = 2.0 ** -50  # x * _ULPS4 is at least 4 ulps of x (equity_bounds, price_band)

# name: (kind, lowest, highest, lowest allowed itself, what it is)
_LIMITS: dict[str, tuple[type, float, float, bool, str]] = {
    "max_order_notional": (float, 0.0, math.inf, False, "quote value of one order"),
    "max_position_notional": (float, 0.0, math.inf, False, "quote value held in one asset"),
    "max_leverage": (float, 0.0, math.inf, False, "exposure over equity"),
    "max_open_orders": (int, 1, math.inf, True, "open orders at once"),
    "max_orders_per_second": (int, 1, RATE_CAP, True, "orders in any second"),
    "max_orders_per_minute": (int, 1, RATE_CAP, True, "orders in any minute"),
    "max_daily_loss": (float, 0.0, 1.0, False, "fraction of the day's starting equity"),
    "max_daily_loss_quote": (float, 0.0, math.inf, False, "quote currency lost in a UTC day"),
    "max_drawdown": (float, 0.0, 1.0, False, "fraction of the peak equity"),
    "max_errors_per_minute": (int, 1, RATE_CAP, True, "order errors in any minute"),
}
_ORDER_RULES = ("max_order_notional", "max_position_notional", "max_leverage", "max_open_orders",
                "max_orders_per_second", "max_orders_per_minute")
_ACTIONS = ("on_daily_loss", "on_drawdown", "on_errors")
_FLAGS = ("halt_cancels_orders", "halt_closes_positions")
KEYS = (*_LIMITS, *_ACTIONS, *_FLAGS)
# the limits whose breaker each action is the action of
_ACTION_OF = {"on_daily_loss": ("max_daily_loss", "max_daily_loss_quote"),
              "on_drawdown": ("max_drawdown",), "on_errors": ("max_errors_per_minute",)}


def _check(name: str, value: Any, where: str) -> Any:
    """`value` of rule `name` as the rules keep it; ConfigError naming both if it is wrong."""
    if name in _FLAGS:
        if type(value) is not bool:
            raise ConfigError(f"{where} {name} must be true or false, got {shown(value)}")
        return value
    if name in _ACTIONS:
        if not isinstance(value, str) or value not in _ACTION_STATE:
            raise ConfigError(f"{where} {name} must be \"halt\" or \"reduce\", got "
                              f"{shown(value)}")
        return value
    if value is None or value is False:  # off (false lets one strategy turn a global rule off)
        return None
    kind, lo, hi, lo_ok, what = _LIMITS[name]
    # numpy's numbers too (from Python); a bool is never a number
    number = isinstance(value, numbers.Integral if kind is int else numbers.Real) \
        and not isinstance(value, bool)
    if not number:
        raise ConfigError(f"{where} {name} ({what}) must be {'a whole' if kind is int else 'a'} "
                          f"number, or false for none; got {shown(value)}")
    try:
        checked = kind(value)
    except OverflowError:  # an int beyond any float
        checked = math.inf if value > 0 else -math.inf
    if not (checked >= lo if lo_ok else checked > lo) or checked > hi:  # nan fails the first
        bounds = f"{'[' if lo_ok else '('}{lo:g}, {hi:g}]"
        raise ConfigError(f"{where} {name} ({what}) must be in {bounds}, got {shown(value)}")
    return checked


@attrs.frozen(slots=True)
class RiskRules:
    """The risk rules of one strategy; None turns a rule off. See the module docstring.

    Order rules deny one order: `max_order_notional`, `max_position_notional`,
    `max_leverage`, `max_open_orders`, `max_orders_per_second`, `max_orders_per_minute`.
    Breakers change the trading state (`on_*`: "halt" or "reduce"): `max_daily_loss`
    (and `max_daily_loss_quote`), `max_drawdown`, `max_errors_per_minute`. On a halt the
    open orders are cancelled (`halt_cancels_orders`) and the positions closed
    (`halt_closes_positions`) if so configured; a halt that keeps the positions keeps the
    orders that only reduce them (their stop-losses), so a breaker never leaves a
    position it keeps unprotected.
    """

    max_order_notional: float | None = None
    max_position_notional: float | None = None
    max_leverage: float | None = None
    max_open_orders: int | None = None
    max_orders_per_second: int | None = None
    max_orders_per_minute: int | None = None
    max_daily_loss: float | None = None
    max_daily_loss_quote: float | None = None
    max_drawdown: float | None = None
    max_errors_per_minute: int | None = None
    on_daily_loss: str = "halt"
    on_drawdown: str = "halt"
    on_errors: str = "halt"
    halt_cancels_orders: bool = True
    halt_closes_positions: bool = False

    # derived when the rules are made: whether any rule looks at single orders, at the equity
    checks_orders: bool = attrs.field(init=False, default=False, eq=False, repr=False)
    checks_equity: bool = attrs.field(init=False, default=False, eq=False, repr=False)
    rates: tuple[tuple[int, int, str], ...] = attrs.field(init=False, default=(), eq=False,
                                                          repr=False)  # (limit, span ms, name)
    # the fewest orders a rate limit needs before it can bind (more than any window holds
    # without one): the throttle looks no further while fewer orders were made
    rate_floor: int = attrs.field(init=False, default=RATE_CAP + 1, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        for name in KEYS:
            value = getattr(self, name)
            checked = _check(name, value, "RiskRules:")
            if checked is not value:
                object.__setattr__(self, name, checked)
        object.__setattr__(self, "checks_orders", any(
            getattr(self, k) is not None for k in _ORDER_RULES))
        object.__setattr__(self, "checks_equity", self.daily_rules or self.max_drawdown is not None)
        object.__setattr__(self, "rates", tuple(
            (limit, span, name) for limit, span, name in (
                (self.max_orders_per_second, 1000, "max_orders_per_second"),
                (self.max_orders_per_minute, MINUTE_MS, "max_orders_per_minute"))
            if limit is not None))
        object.__setattr__(self, "rate_floor", min((r[0] for r in self.rates),
                                                   default=RATE_CAP + 1))

    def in_force(self) -> dict[str, Any]:
        """The rules and options set otherwise than by default: what a run shows. A
        breaker's action (`on_*`) is shown only with its limit: alone it does nothing."""
        return {k: v for k in KEYS if (v := getattr(self, k)) != _DEFAULTS[k] and not (
            k in _ACTION_OF and all(getattr(self, x) is None for x in _ACTION_OF[k]))}

    @property
    def daily_rules(self) -> bool:
        return self.max_daily_loss is not None or self.max_daily_loss_quote is not None

    @classmethod
    def from_config(cls, table: Any, strategy: str | None = None) -> "RiskRules":
        """The rules of `strategy` from a planar.toml `[risk]` table.

        Keys directly under [risk] hold for every strategy; a sub-table named after a
        strategy's class (`[risk.SmaCross]`) overrides them for that one (`false` turns a
        rule off). Unknown keys and wrong values raise ConfigError naming them.
        """
        if table is None:
            return NO_RULES
        if not isinstance(table, Mapping):
            raise ConfigError(f"[risk] must be a table, got {type(table).__name__}")
        merged = _keys(table, "[risk]")
        own = table.get(strategy) if strategy is not None else None
        for name, value in table.items():
            if isinstance(value, Mapping) and strategy is not None and name != strategy:
                _other_table(name, strategy, own is not None)
        if own is not None:
            merged.update(_keys(own, f"[risk.{strategy}]"))
        return cls(**merged)


def _keys(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table, got {type(table).__name__}")
    out = {}
    for name, value in table.items():
        if isinstance(value, Mapping) and where == "[risk]":
            if name in KEYS:
                raise ConfigError(f"[risk] {name} must be a value, not a table "
                                  f"([risk.{name}]); tables under [risk] are strategies', "
                                  "named after their classes")
            continue  # a strategy's own table
        if name not in KEYS:
            raise _no_rule(where, name)
        out[name] = _check(name, value, where)
    return out


def _no_rule(where: str, name: Any) -> ConfigError:
    near = difflib.get_close_matches(str(name), KEYS, 1)
    return ConfigError(f"{where} has no rule {shown(name)}"
                       + (f" (did you mean {near[0]}?)" if near else "")
                       + f"; rules: {', '.join(KEYS)}")


_WARNED: set[tuple[str, str]] = set()


def _other_table(name: str, strategy: str, has_own: bool) -> None:
    """Check a strategy table of [risk] that is not `strategy`'s. The strategy's module
    name, or its class's in another case, names it surely, and would leave its rules out
    silently: an error. A name close to it may be a misspelling, or another strategy's
    (SmaCross2): a warning, which names the table the rules of `strategy` come from;
    none when `strategy` has its own table (`has_own`): the near one is another's."""
    if _loose(name) == _loose(strategy):
        raise ConfigError(f"[risk.{name}] does not apply to {strategy}: a strategy's "
                          f"table is named after its class exactly, [risk.{strategy}]")
    if not has_own and (name, strategy) not in _WARNED and \
            difflib.SequenceMatcher(None, _loose(name), _loose(strategy)).ratio() >= 0.75:
        _WARNED.add((name, strategy))  # once a process: an optimisation runs many backtests
        log.warning("[risk.%s] does not apply to %s (a strategy's table is named after its "
                    "class exactly): if it was meant for it, name it [risk.%s]", name,
                    strategy, strategy)


def _loose(name: str) -> str:
    return name.replace("_", "").lower()


_DEFAULTS = {f.name: f.default for f in attrs.fields(RiskRules) if f.name in KEYS}
_attrs_init = RiskRules.__init__


@functools.wraps(_attrs_init)
def _init(self: RiskRules, *args: Any, **rules: Any) -> None:
    try:
        _attrs_init(self, *args, **rules)
    except TypeError:  # a misspelt rule: say which, and what the rules are
        unknown = [k for k in rules if k not in KEYS]
        if unknown:
            raise _no_rule("RiskRules", unknown[0]) from None
        raise


RiskRules.__init__ = _init  # type: ignore[method-assign]
NO_RULES = RiskRules()


def _window() -> collections.deque[int]:
    return collections.deque(maxlen=RATE_CAP)


@attrs.define(slots=True, eq=False)
class RiskState:
    """The risk side of a strategy's state.

    Everything here changes only through events (`core/apply.py`), so a replay rebuilds
    it and a live run finds it again after a restart: `trading` and `changes`
    (trading_state_changed), `orders` (creation times, ms: order_created), `errors`
    (order_error, and exchange errors of order requests), `denied` (risk_denied: every
    request refused, of which `denied_leverage` were leverage changes), and
    the loss breakers' measurements `peak_equity`, `day` and `day_start_equity`
    (risk_measured; a reset re-bases them through its own event).
    """

    rules: RiskRules = NO_RULES
    trading: TradingState = TradingState.ACTIVE
    orders: collections.deque[int] = attrs.Factory(_window)
    errors: collections.deque[int] = attrs.Factory(_window)
    denied: int = 0
    denied_leverage: int = 0
    changes: list[dict[str, Any]] = attrs.Factory(list)
    peak_equity: float = math.nan
    day: int | None = None
    day_start_equity: float = math.nan


@attrs.frozen(slots=True)
class Denial:
    """Why one order may not go: the rule and a sentence that quotes the figures."""

    rule: str
    reason: str


@attrs.frozen(slots=True)
class Breach:
    """A breaker that tripped, and the trading state its configured action moves to."""

    rule: str
    reason: str
    to: TradingState


@attrs.frozen(slots=True)
class RiskEvent:
    """What `Strategy.on_risk` receives: an order denied, or the trading state changed.

    `kind` is "denied" or "state_changed"; `rule` names the rule (or "reset");
    `state` is the trading state after the event, `previous` the one before.
    """

    kind: str
    rule: str
    reason: str
    state: TradingState
    previous: TradingState
    time: int
    symbol: str | None = None
    request: Mapping[str, Any] | None = None


# ---- exposure and equity ---------------------------------------------------------------
def held(ai: AssetInstance) -> float:
    """What the strategy holds of `ai`: spot base balance, or open contracts (both sides)."""
    if ai.market.is_derivative:
        return ai.long.amount + ai.short.amount
    return ai.balance


def increases(ai: AssetInstance, order: Order) -> bool:
    """Whether `order` adds to the exposure (a spot buy, or an order opening a position);
    every other order reduces it (`accounting.reduces`)."""
    if not ai.market.is_derivative:
        return order.side is _BUY
    return not order.reduce_only and opens_position(order.side, order.pos)


def pending(ai: AssetInstance) -> float:
    """What the open orders of `ai` that add to the exposure would still add. The orders
    of one group (the legs of an OCO pair, a stop and its replacement) count once: at most
    one of them fills."""
    if not ai.orders:
        return 0.0
    total, groups = _adding(ai)
    return total + sum(groups.values()) if groups else total


def _adding(ai: AssetInstance) -> tuple[float, dict[str, float]]:
    """What the open orders of `ai` that add to the exposure would still add: the orders
    of no group together, and each group's largest (at most one of a group fills)."""
    total = 0.0
    groups: dict[str, float] = {}
    for o in ai.orders.values():
        if increases(ai, o):
            if not o.group:
                total += o.remaining
            elif o.remaining > groups.get(o.group, 0.0):
                groups[o.group] = o.remaining
    return total, groups


def exposure(ai: AssetInstance, price: float) -> float:
    """Quote value of what is held and of what open orders would add, at `price`."""
    return ai.market.value(held(ai) + (pending(ai) if ai.orders else 0.0), price)


def equity(state: State, mark: Callable[[AssetInstance], float]) -> float:
    """Cash plus holdings and positions, each asset valued at `mark(ai)`."""
    k, q = linear_equity(state)
    assets = state.assets
    return k + sum(qty * mark(assets[symbol]) for symbol, qty in q.items())


def linear_equity(state: State) -> tuple[float, dict[str, float]]:
    """The equity as k + sum(q[symbol] * price[symbol]): what stays fixed between fills (k:
    cash, margins, entry values) and how much each price moves it (q: base held, or net
    contracts times the contract size). Assets with q == 0 are left out."""
    k, q = state.cash, {}
    for ai in state.assets.values():
        fixed, qty = asset_terms(ai)
        k += fixed
        if qty:
            q[ai.symbol] = qty
    return k, q


def asset_terms(ai: AssetInstance) -> tuple[float, float]:
    """One asset's share of linear_equity: (what it adds to k, its q)."""
    cs = ai.market.contract_size
    lo, sh = ai.long, ai.short
    fixed = (lo.margin - lo.entry_price * lo.amount * cs
             + sh.margin + sh.entry_price * sh.amount * cs)
    return fixed, ai.balance + (lo.amount - sh.amount) * cs


# ---- order rules -----------------------------------------------------------------------
def state_denial(risk: RiskState, reduces: bool) -> Denial | None:
    """Why the trading state refuses an order (`reduces`: it only lowers the exposure)."""
    trading = risk.trading
    if trading is TradingState.ACTIVE or (trading is TradingState.REDUCING and reduces):
        return None
    why = f" by {risk.changes[-1]['rule']}" if risk.changes else ""
    if trading is TradingState.HALTED:
        return Denial("trading_state", f"trading is halted{why}: no order may go until "
                                       "call(s, 'reset_trading_state')")
    return Denial("trading_state", f"trading is reducing{why}: only orders that reduce "
                                   "the exposure may go")


def order_denial(state: State, ai: AssetInstance, order: Order, reduces: bool, now: int,
                 mark: Callable[[AssetInstance], float], protects: bool = False,
                 moves: bool = False) -> Denial | None:
    """The first rule `order` breaks, or None. Orders that only reduce the exposure pass
    the size rules (notional, position, leverage, open orders) but not the throttle; one
    that reduces and `protects` (a bracket's exit) passes the trading state and the
    throttle too: it protects what an entry the gate admitted filled, and it comes once
    per fill of that entry, so it cannot run away (it still counts in the throttle's
    window). One that `moves` an open stop (its replacement) leaves as many orders open."""
    risk = state.risk
    protective = protects and reduces
    if risk.trading is not _ACTIVE and not protective:
        denial = state_denial(risk, reduces)
        if denial is not None:
            return denial
    rules = risk.rules
    if len(risk.orders) >= rules.rate_floor and not protective:  # else no rate limit binds
        denial = throttle_denial(risk, now)
        if denial is not None:
            return denial
    if reduces:
        return None
    m = ai.market
    notional = order.amount * order.price * m.contract_size
    limit = rules.max_open_orders
    if limit is not None:
        count = -1 if moves else 0  # the stop it replaces goes once it is placed
        for a in state.assets.values():
            count += len(a.orders)
        if count >= limit:
            are = "s are" if count != 1 else " is"  # a limit of 1 reads right too
            return Denial("max_open_orders", f"{count} order{are} open already "
                                             f"(max_open_orders = {limit})")
    limit = rules.max_order_notional
    if limit is not None and notional > limit:
        return Denial("max_order_notional", f"order notional {notional:.8g} {m.quote} is "
                                            f"above max_order_notional = {limit:g}")
    if order.group and (rules.max_position_notional is not None or
                        rules.max_leverage is not None):
        # what it adds beyond its group's open orders (pending counts the group once)
        notional = _beyond_group(ai, order) * order.price * m.contract_size
    limit = rules.max_position_notional
    if limit is not None:
        after = exposure(ai, order.price) + notional
        if after > limit:
            return Denial("max_position_notional",
                          f"{ai.symbol} would reach {after:.8g} {m.quote} (held and ordered, "
                          f"at {order.price:g}), above max_position_notional = {limit:g}")
    limit = rules.max_leverage
    if limit is not None:
        return leverage_denial(state, ai, notional, mark, limit)
    return None


def _beyond_group(ai: AssetInstance, order: Order) -> float:
    """The amount `order` adds beyond the largest open order of its group that adds to
    the exposure (the legs of an OCO pair, a stop and its replacement: one fills)."""
    return max(0.0, order.amount - _adding(ai)[1].get(order.group, 0.0))


def count_order(times: collections.deque[int], date: int) -> None:
    """Put the creation time of an order created before the newest one counted in its
    place: the throttle reads the window as oldest first. Older than all a full window
    keeps, it would leave it at once."""
    at = bisect.bisect_right(times, date)
    if len(times) == times.maxlen:
        if at == 0:
            return
        times.popleft()
        at -= 1
    times.insert(at, date)


def carry_times(times: collections.deque[int], carried: list[int]) -> None:
    """Count the times `carried` (an earlier run's, oldest first) in the window `times`
    as far as it does not count them already: each time as often as the larger of the two
    counts it, so carrying the same times again (a replay of the whole trace, whose
    earlier runs counted them already) changes nothing."""
    have = collections.Counter(times)
    for t in carried:
        if have[t]:
            have[t] -= 1
        else:
            count_order(times, t)


def throttle_denial(risk: RiskState, now: int) -> Denial | None:
    """Why the order throttle refuses an order at `now` (ms): a window holds its limit."""
    times = risk.orders
    n = len(times)
    for limit, span, name in risk.rules.rates:
        if n >= limit and times[-limit] > now - span:
            return Denial(name, f"{limit} order{'s' if limit != 1 else ''} in the last "
                                f"{span // 1000} s already ({name} = {limit})")
    return None


def leverage_denial(state: State, ai: AssetInstance, notional: float,
                    mark: Callable[[AssetInstance], float], limit: float) -> Denial | None:
    """Why adding `notional` to `ai` would take exposure over equity above `limit`."""
    if limit >= 1.0 and 0.0 < notional <= state.cash:
        # every asset spot, with no open order and no negative balance: the walk's sums
        # are exposure V + notional and equity cash + V (the same V to the bit, V >= 0),
        # so exposure <= equity (rounding keeps the order of sums) and equity >= cash > 0:
        # a limit of 1 or more cannot bind, and the walk (once per buy) is skipped
        for a in state.assets.values():
            if a.orders or a.balance < 0.0 or a.market.is_derivative:
                break
        else:
            return None
    # equity(state, mark) and the gross exposure in one pass that marks each asset once,
    # with no dict of linear_equity's (the sums in the same order as linear_equity's and
    # exposure's: the same figures to the bit; a property test pins this)
    k = state.cash
    values = exposures = 0.0
    for a in state.assets.values():
        fixed, qty = asset_terms(a)
        k += fixed
        size = held(a)
        if not qty and not size and not a.orders:
            continue
        price = mark(a)
        if qty:
            values += qty * price
        if size or a.orders:
            exposures += a.market.value(size + pending(a), price)
    eq = k + values
    gross = notional + exposures
    if eq <= 0 or gross > limit * eq:
        ratio = gross / eq if eq > 0 else math.inf
        return Denial("max_leverage", f"exposure {gross:.8g} over equity {eq:.8g} would be "
                                      f"{ratio:.3g}x, above max_leverage = {limit:g}")
    return None


# ---- breakers --------------------------------------------------------------------------
def day_of(ms: int) -> int:
    """The UTC day a candle closing at `ms` belongs to (a close at 00:00 ends the day before)."""
    return (ms - 1) // DAY_MS


def equity_bounds(risk: RiskState) -> tuple[float, float]:
    """(floor, ceiling): the equity below which a loss breaker trips that would move the
    trading state (-inf when none would: see `equity_breach`), and above which it makes a
    new peak (inf without a drawdown rule), each moved inwards by a few ulps of itself for
    `price_band` (x * 2**-50 >= 4 ulps of x): an equity computed at a bound rounds by
    about an ulp of it, to either side."""
    rules, floor, ceiling = risk.rules, -math.inf, math.inf
    trading = risk.trading
    if rules.max_drawdown is not None:
        if _moves(trading, rules.on_drawdown):
            floor = (1.0 - rules.max_drawdown) * risk.peak_equity
        ceiling = risk.peak_equity
    start = risk.day_start_equity
    if _moves(trading, rules.on_daily_loss):
        if rules.max_daily_loss is not None:
            floor = max(floor, _daily_floor(start, rules.max_daily_loss * abs(start)))
        if rules.max_daily_loss_quote is not None:
            floor = max(floor, _daily_floor(start, rules.max_daily_loss_quote))
    if floor > -math.inf:
        floor += abs(floor) * _ULPS4
    if ceiling < math.inf:
        ceiling -= abs(ceiling) * _ULPS4
    return floor, ceiling


def _moves(trading: TradingState, action: str) -> bool:
    """Whether a breaker whose configured action is `action` moves `trading` (`target`)."""
    return trading is not _HALTED and trading is not _ACTION_STATE[action]


def _daily_floor(start: float, limit: float) -> float:
    """start - limit, raised by a few ulps: `equity_breach` tests start - equity > limit,
    whose rounding differs from that of start - limit by up to about an ulp of start (an
    equity exactly on the unraised floor may have lost more than the limit)."""
    return start - limit + 4.0 * math.ulp(max(abs(start), abs(limit)))


def equity_breach(risk: RiskState, equity: float) -> Breach | None:
    """The loss breaker `equity` trips that moves the trading state, or None: of the
    drawdown and the daily loss, one whose action the state has reached already (a
    drawdown that reduced) changes nothing and must not hide the other (a daily loss that
    halts); of two that move it, the halt (else the drawdown)."""
    rules, trading = risk.rules, risk.trading
    found = None
    peak = risk.peak_equity
    if rules.max_drawdown is not None and peak > 0 and equity < (1.0 - rules.max_drawdown) * peak \
            and _moves(trading, rules.on_drawdown):
        found = Breach("max_drawdown", f"equity {equity:.8g} is {1 - equity / peak:.2%} below "
                                       f"its peak {peak:.8g} (max_drawdown = "
                                       f"{rules.max_drawdown:g})", _ACTION_STATE[rules.on_drawdown])
        if found.to is _HALTED or not _moves(trading, rules.on_daily_loss):
            return found
    start = risk.day_start_equity
    loss = start - equity
    for limit, name in ((None if rules.max_daily_loss is None else
                         rules.max_daily_loss * abs(start), "max_daily_loss"),
                        (rules.max_daily_loss_quote, "max_daily_loss_quote")):
        if limit is not None and loss > limit and _moves(trading, rules.on_daily_loss):
            setting = getattr(rules, name)
            daily = Breach(name, f"lost {loss:.8g} since the UTC day began at equity "
                                 f"{start:.8g} ({name} = {setting:g})",
                           _ACTION_STATE[rules.on_daily_loss])
            return daily if found is None or daily.to is _HALTED else found
    return found


def error_breach(risk: RiskState, now: int) -> Breach | None:
    """The error-rate breaker: more than `max_errors_per_minute` order errors in the last
    60 s of the strategy's clock. Every `order_error` event counts (an order or action
    refused by the market rules, the funds check, the fill engine or the exchange), and so
    does an `exchange_error` of an order request (live: a submit or cancel that got no
    answer); errors of the market data or of the account streams do not."""
    limit = risk.rules.max_errors_per_minute
    errors = risk.errors
    if limit is None or len(errors) <= limit or errors[-limit - 1] <= now - MINUTE_MS:
        return None
    return Breach("max_errors_per_minute", f"{limit + 1} order errors within a minute "
                                           f"(max_errors_per_minute = {limit})",
                  _ACTION_STATE[risk.rules.on_errors])


def observe(risk: RiskState, equity: float, now: int,
            before: float | None = None) -> dict[str, Any] | None:
    """What measuring `equity` at `now` changes, as the payload of a `risk_measured` event
    (None when nothing changes): a new UTC day starts from `before` (the equity at the
    last close of the day before, when known), and the peak follows the highest equity.
    The measurements are events so that a restart and a replay find them again."""
    day = day_of(now)
    new_day = day != risk.day
    start = (equity if before is None else before) if new_day else risk.day_start_equity
    peak = equity if not equity <= risk.peak_equity else risk.peak_equity  # NaN: the first
    if not new_day and peak == risk.peak_equity:
        return None
    return {"day": day, "day_start_equity": start, "peak_equity": peak, "ts": now}


def flat_inside(risk: RiskState, equity: float) -> bool:
    """Whether measuring `equity` changes nothing: no loss breaker trips and it is no new
    peak, by the very tests a measurement makes. For an equity that no price moves (nothing
    held), which every close measures alike: `price_band`'s room for rounding would have
    every close of a run flat at its peak measured."""
    return equity <= risk.peak_equity and equity_breach(risk, equity) is None


def price_band(bounds: tuple[float, float], k: float, q: float) -> tuple[float, float]:
    """The prices p for which the equity k + q*p stays within `bounds` (equity_bounds: no
    loss breaker trips, no new peak is made), so a monitor need not measure it: (lo, hi),
    with a little room taken off each end so that float rounding never hides a breach."""
    floor, ceiling = bounds
    if q == 0.0:
        inside = floor <= k <= ceiling
        return (-math.inf, math.inf) if inside else (math.inf, -math.inf)
    # k + q*p also rounds by an ulp of k, which the room in price below does not cover
    # when q*p is small against k: each bound (moved in already by a few ulps of itself,
    # see equity_bounds) moves in by a few ulps of k too
    m = (k if k > 0.0 else -k) * _ULPS4
    if q > 0.0:
        lo, hi = (floor + m - k) / q, (ceiling - m - k) / q
    else:
        lo, hi = (ceiling - m - k) / q, (floor + m - k) / q
    # each end moved inwards by 1e-9 of itself (an infinite end stays infinite)
    return (lo * _IN_UP if lo > 0.0 else lo * _IN_DOWN,
            hi * _IN_DOWN if hi > 0.0 else hi * _IN_UP)


def target(trading: TradingState, breach: Breach) -> TradingState | None:
    """The state a breach moves `trading` to, or None when it is there or beyond already."""
    if trading is TradingState.HALTED or trading is breach.to:
        return None
    return breach.to


def spot_position(ai: AssetInstance, trades: Sequence[Trade]) -> float:
    """What `close_position` sells on a spot market: the base the strategy's own fills
    (`trades`: the executor's `own_trades`) bought and still hold, never more than the
    balance, rounded down to the amount step."""
    m = ai.market
    net = 0.0
    for t in trades:
        fee = t.fee if t.fee_currency == m.base else 0.0
        net += (t.amount - fee) if t.side is Side.BUY else -(t.amount + fee)
    return m.floor_amount(max(0.0, min(ai.balance, net)))


def cancel_targets(ai: AssetInstance, every: bool) -> list[Order]:
    """The open orders a move of the trading state cancels: all of them with `every`,
    else those that add to the exposure (the orders that only reduce it, a position's
    stop-loss and take-profit, stay)."""
    if every:
        return list(ai.orders.values())
    return [o for o in ai.orders.values() if increases(ai, o)]


def rules_for(given: RiskRules | Mapping[str, Any] | None, settings: Mapping[str, Any],
              strategy: str) -> RiskRules:
    """The risk rules of a run of `strategy`: those given (RiskRules, or a table shaped
    like planar.toml's [risk]), else the [risk] table of `settings`."""
    if isinstance(given, RiskRules):
        return given
    return RiskRules.from_config(settings.get("risk") if given is None else given, strategy)
