"""The search space: which parameters an optimisation varies, over which values.

It starts from the strategy's `Param` specs; a range given for a search (`--range
fast=5:50:5`, or `ranges={"fast": range(5, 55, 5)}`) narrows one, `fixed` values (`-p`)
take a parameter out of the search, and `where` conditions ("fast < slow") drop points.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import attrs
import numpy as np

from ..params import Param, ParamError, check_range, resolve, specs

MAX_GRID = 1_000_000  # grid points; a larger grid is refused before it is listed

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt}
_COND = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*([A-Za-z_]\w*|[-+]?[\d.]+(?:e[-+]?\d+)?)\s*$")


@attrs.frozen(slots=True)
class Dim:
    """One searched parameter: an int or float range (optional step, log scale) or choices."""

    name: str
    kind: str  # "int", "float" or "choice"
    low: Any = None
    high: Any = None
    step: Any = None
    choices: tuple[Any, ...] | None = None
    log: bool = False

    def size(self) -> int:
        """How many values a grid search tries (found without listing them)."""
        if self.kind == "choice":
            return len(self.choices or ())
        if self.kind == "int":
            return (self.high - self.low) // (self.step or 1) + 1
        if self.step is None:
            raise ParamError(f"parameter {self.name}: a float range needs a step for a grid "
                             f"search; give --range {self.name}=LOW:HIGH:STEP, fix it with "
                             f"-p {self.name}=VALUE, or use --method random or tpe")
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1

    def value(self, k: int) -> Any:
        """The k-th value of the grid."""
        if self.kind == "choice":
            return self.choices[k]  # type: ignore[index]
        if self.kind == "int":
            return self.low + k * (self.step or 1)
        return round(self.low + k * self.step, 12)

    def grid(self) -> list[Any]:
        """Every value a grid search tries, ascending (choices in their order); the last
        is the last whole step within the range."""
        return [self.value(k) for k in range(self.size())]

    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn uniformly (log-uniformly on a log scale) from the range."""
        if self.log:
            edge = 0.5 if self.kind == "int" else 0.0  # each int gets its share of the scale
            v = math.exp(rng.uniform(math.log(self.low - edge), math.log(self.high + edge)))
            return min(max(round(v), self.low), self.high) if self.kind == "int" else float(v)
        if self.kind == "choice" or self.kind == "int" or self.step is not None:
            return self.value(int(rng.integers(self.size())))
        return float(rng.uniform(self.low, self.high))

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension (a stepped range ends on its last step,
        as the grid does)."""
        from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                          IntDistribution)
        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices or ()))
        high = self.high if self.step is None else self.value(self.size() - 1)
        if self.kind == "int":
            return IntDistribution(self.low, high, step=self.step or 1, log=self.log)
        return FloatDistribution(self.low, high, step=self.step, log=self.log)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.name} in {{{', '.join(map(str, self.choices or ()))}}}"
        step = f" step {self.step}" if self.step is not None else ""
        return f"{self.name} {self.low}..{self.high}{step}{' log' if self.log else ''}"


@attrs.frozen(slots=True)
class Condition:
    """`left OP right` between parameters (or a parameter and a number)."""

    text: str
    left: str
    op: str
    right: str | float

    def __call__(self, p: Mapping[str, Any]) -> bool:
        right = p[self.right] if isinstance(self.right, str) else self.right
        return bool(_OPS[self.op](p[self.left], right))


@attrs.frozen(slots=True)
class Space:
    """The searched dimensions, the fixed values, and the conditions a point must meet."""

    strategy: str
    dims: tuple[Dim, ...]
    fixed: Mapping[str, Any]
    where: tuple[Any, ...] = ()

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    def admissible(self, point: Mapping[str, Any]) -> bool:
        full = {**self.fixed, **point}
        return all(cond(full) for cond in self.where)

    def grid_points(self) -> list[dict[str, Any]]:
        """Every admissible point of the grid, in the order of the dimensions (the first
        varies slowest), as itertools.product gives them."""
        sizes = [d.size() for d in self.dims]
        if math.prod(sizes) > MAX_GRID:
            each = ", ".join(f"{d.name}: {n:,} values" for d, n in zip(self.dims, sizes))
            raise ParamError(f"the grid has {math.prod(sizes):,} points ({each}), more than "
                             f"{MAX_GRID:,}; give coarser steps with --range, fix parameters "
                             "with -p, or use --method random or tpe")
        axes = [d.grid() for d in self.dims]
        points = [dict(zip(self.names, combo)) for combo in itertools.product(*axes)]
        out = [p for p in points if self.admissible(p)]
        if not out:
            raise ParamError(f"no admissible point in the grid ({self.describe()}); "
                             "check the ranges and --where conditions")
        return out

    def random_point(self, seed: Sequence[int]) -> dict[str, Any]:
        """An admissible point drawn from `seed`; the same seed gives the same point."""
        rng = np.random.default_rng(list(seed))
        for _ in range(10_000):
            point = {d.name: d.sample(rng) for d in self.dims}
            if self.admissible(point):
                return point
        raise ParamError(f"the --where conditions exclude almost every point of "
                         f"{self.describe()}")

    def distributions(self) -> dict[str, Any]:
        return {d.name: d.distribution() for d in self.dims}

    def full(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """The strategy's parameter values for a point: the point, then the fixed values."""
        return {**point, **self.fixed}

    def describe(self) -> str:
        parts = [d.describe() for d in self.dims]
        parts += [f"{k}={v}" for k, v in self.fixed.items()]
        parts += [c.text if isinstance(c, Condition) else getattr(c, "__name__", "where")
                  for c in self.where]
        return ", ".join(parts)

    def signature(self) -> dict[str, Any]:
        """What identifies this space in a stored study (JSON-able)."""
        return {"dims": [attrs.asdict(d) for d in self.dims],
                "fixed": dict(self.fixed),
                "where": [c.text if isinstance(c, Condition) else getattr(c, "__qualname__", "?")
                          for c in self.where]}


def build_space(cls: type, ranges: Mapping[str, Any] | None = None,
                fixed: Mapping[str, Any] | None = None,
                where: Iterable[str | Callable[[Mapping[str, Any]], bool]] = ()) -> Space:
    """The space of `cls`: every Param not in `fixed`, narrowed by `ranges`."""
    table = specs(cls)
    fixed = dict(fixed or {})
    resolve(cls, fixed)  # unknown names, types and ranges of the fixed values
    ranges = dict(ranges or {})
    for name in ranges:
        if name not in table:
            resolve(cls, {name: None})  # raises: unknown parameter, naming the known ones
        if name in fixed:
            raise ParamError(f"parameter {name} is both fixed (-p) and searched (--range)")
    dims = tuple(_dim(table[name], ranges.get(name)) for name in table if name not in fixed)
    if not dims:
        raise ParamError(f"{cls.__name__} has no parameter left to search "
                         f"(its parameters: {', '.join(table) or 'none'})")
    conds = tuple(parse_condition(w, table) if isinstance(w, str) else w for w in where)
    return Space(cls.__name__, dims, fixed, conds)


def _dim(p: Param, given: Any) -> Dim:
    """A dimension from a Param, optionally narrowed by a range given for the search."""
    if given is None:
        if p.kind == "choice":
            return Dim(p.name, "choice", choices=p.choices)
        return Dim(p.name, p.kind, p.low, p.high, p.step, log=p.log)
    if isinstance(given, str):
        given = parse_range(p, given)
    if isinstance(given, Param):
        given.name, given.owner = p.name, p.owner
        given.check_spec()
        if given.kind != p.kind:
            raise ParamError(f"parameter {p.name} is {_a(p.kind)}; the range given is of "
                             f"{given.kind}s")
        for v in (given.choices or ()) if given.kind == "choice" else (given.low, given.high):
            p.check(v)  # a search stays within the declared range
        return _dim(given, None)
    if isinstance(given, range):
        given = list(given)
    if isinstance(given, (list, tuple)):
        values = tuple(p.check(v) for v in given)
        if not values:
            raise ParamError(f"parameter {p.name}: the range given is empty")
        step = _int_step(values) if p.kind == "int" else None
        if step is not None:  # 5, 10, ..., 50: an ordered range to TPE, not 10 labels
            return Dim(p.name, "int", values[0], values[-1], step)
        return Dim(p.name, "choice", choices=values)
    raise ParamError(f"parameter {p.name}: a range is 'LOW:HIGH[:STEP]', 'V1,V2,...', a list "
                     f"or a Param, not {given!r}")


def _a(kind: str) -> str:
    return "an int" if kind == "int" else f"a {kind}"


def _int_step(values: tuple[int, ...]) -> int | None:
    """The step of ints rising evenly (range(5, 55, 5)), else None."""
    steps = {b - a for a, b in zip(values, values[1:])}
    return steps.pop() if len(steps) == 1 and min(steps) > 0 else None


def parse_range(p: Param, text: str) -> Param | list[Any]:
    """'LOW:HIGH[:STEP]' as a Param within `p`'s own range, or 'V1,V2,...' as values."""
    if ":" not in text:
        return [p.parse(v.strip()) for v in text.split(",") if v.strip()] or \
            _empty(p, text)
    parts = text.split(":")
    if len(parts) not in (2, 3) or p.kind == "choice":
        raise ParamError(f"parameter {p.name}: range {text!r} is not LOW:HIGH[:STEP]"
                         if p.kind != "choice" else
                         f"parameter {p.name} takes choices; give --range {p.name}=A,B,...")
    low, high = p.parse(parts[0].strip()), p.parse(parts[1].strip())
    step = None
    if len(parts) == 3:
        try:
            step = int(parts[2]) if p.kind == "int" else float(parts[2])
        except ValueError:
            raise ParamError(f"parameter {p.name}: step {parts[2]!r} is not "
                             f"{_a(p.kind)}") from None
    check_range(p.name, p.kind, low, high, step)
    return Param(low, low=low, high=high, step=step)


def _empty(p: Param, text: str) -> list[Any]:
    raise ParamError(f"parameter {p.name}: the range {text!r} is empty")


def parse_condition(text: str, table: Mapping[str, Param]) -> Condition:
    """'fast < slow' or 'fast >= 5' as a Condition on known parameters."""
    m = _COND.match(text)
    if not m:
        raise ParamError(f"--where {text!r} is not 'NAME OP NAME' or 'NAME OP NUMBER' "
                         f"(OP one of {', '.join(_OPS)})")
    left, op, right = m.groups()
    names = [left] + ([right] if re.match(r"[A-Za-z_]", right) else [])
    for name in names:
        if name not in table:
            raise ParamError(f"--where {text!r}: unknown parameter {name!r}; known: "
                             f"{', '.join(table) or 'none'}")
    value: str | float = right if len(names) == 2 else float(right)
    return Condition(text.strip(), left, op, value)
