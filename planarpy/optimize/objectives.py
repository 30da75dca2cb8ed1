"""What an optimisation maximises or minimises, and which results it accepts.

An objective is a summary statistic of the backtest ("sharpe", "return", "max_drawdown"
... with its natural direction, or "name:max"/"name:min"), or a function of the
`SimResult`. A constraint is "STAT OP NUMBER" ("trades >= 10") or a function of the
summary returning True when the trial is acceptable.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping

import attrs

from ..core.errors import ConfigError

STATS = ("return", "final_equity", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
         "max_drawdown_duration", "win_rate", "profit_factor", "exposure", "exposure_time",
         "fees", "trades", "round_trips", "buy_and_hold", "orders", "partial_fills")
LOWER_IS_BETTER = frozenset({"volatility", "max_drawdown", "max_drawdown_duration", "fees",
                             "exposure", "exposure_time", "partial_fills"})
_DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize",
               "minimize": "minimize"}
_CONSTRAINT = re.compile(r"^\s*(\w+)\s*(<=|>=|<|>)\s*([-+]?[\d.]+(?:e[-+]?\d+)?)\s*$")


@attrs.frozen(slots=True)
class Objective:
    """One figure of merit: a statistic's name, or a function of the SimResult."""

    name: str
    direction: str  # "maximize" or "minimize"
    fn: Callable[[Any], float] | None = None

    def value(self, result: Any, summary: Mapping[str, Any]) -> float:
        """The figure for one backtest; NaN where it is undefined."""
        v = self.fn(result) if self.fn is not None else summary.get(self.name)
        try:
            v = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan
        return v

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


def objective(spec: Any) -> Objective:
    """An Objective from 'stat', 'stat:min', a function, or (function, 'min')."""
    if isinstance(spec, Objective):
        return spec
    if callable(spec):
        return Objective(getattr(spec, "__name__", "objective"), "maximize", spec)
    if isinstance(spec, tuple) and len(spec) == 2 and callable(spec[0]):
        return Objective(getattr(spec[0], "__name__", "objective"), _direction(spec[1], "?"),
                         spec[0])
    if not isinstance(spec, str):
        raise ConfigError(f"objective {spec!r} is not a statistic name or a function")
    name, _, way = spec.strip().partition(":")
    if name not in STATS:
        raise ConfigError(f"objective {name!r} is not a summary statistic; "
                          f"known: {', '.join(STATS)}")
    default = "minimize" if name in LOWER_IS_BETTER else "maximize"
    return Objective(name, _direction(way, name) if way else default)


def _direction(way: str, name: str) -> str:
    try:
        return _DIRECTIONS[way.strip().lower()]
    except KeyError:
        raise ConfigError(f"objective {name}: direction {way!r} is not max or min") from None


def objectives(specs: Any) -> tuple[Objective, ...]:
    """One or several objectives (a single spec or a list), names unique."""
    items = [specs] if isinstance(specs, (str, Objective)) or callable(specs) or \
        (isinstance(specs, tuple) and len(specs) == 2 and callable(specs[0])) else list(specs)
    out = tuple(objective(s) for s in items)
    if not out:
        raise ConfigError("give at least one objective")
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives repeat a name: {', '.join(names)}")
    return out


@attrs.frozen(slots=True)
class Constraint:
    """A condition a trial must meet to count ("trades >= 10"), and how far it misses."""

    text: str
    stat: str | None = None
    op: str = ">="
    bound: float = 0.0
    fn: Callable[[Mapping[str, Any]], bool] | None = None

    def violation(self, summary: Mapping[str, Any]) -> float:
        """0 when met, else how far it misses (Optuna's convention: > 0 is infeasible)."""
        if self.fn is not None:
            return 0.0 if self.fn(summary) else 1.0
        v = summary.get(self.stat or "")
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return 1.0
        v = float(v)
        miss = {">=": self.bound - v, ">": self.bound - v, "<=": v - self.bound,
                "<": v - self.bound}[self.op]
        strict = self.op in (">", "<") and miss == 0
        return max(miss, 0.0) + (1e-12 if strict else 0.0)


def constraint(spec: Any) -> Constraint:
    if isinstance(spec, Constraint):
        return spec
    if callable(spec):
        return Constraint(getattr(spec, "__name__", "constraint"), fn=spec)
    m = _CONSTRAINT.match(spec) if isinstance(spec, str) else None
    if not m:
        raise ConfigError(f"constraint {spec!r} is not 'STAT OP NUMBER' (e.g. 'trades >= 10'; "
                          "OP one of >=, >, <=, <) or a function of the summary")
    stat, op, bound = m.groups()
    if stat not in STATS:
        raise ConfigError(f"constraint {spec!r}: {stat!r} is not a summary statistic; "
                          f"known: {', '.join(STATS)}")
    return Constraint(spec.strip(), stat, op, float(bound))


def constraints(specs: Iterable[Any] | None) -> tuple[Constraint, ...]:
    if specs is None:
        return ()
    if isinstance(specs, str) or callable(specs):
        specs = [specs]
    return tuple(constraint(s) for s in specs)
