"""Tunable strategy parameters: `Param` declares one on a Strategy class.

    class SmaCross(Strategy):
        fast = Param(10, low=2, high=50)              # int
        slow = Param(30, low=5, high=200, step=5)     # int on a grid of 5
        invest = Param(0.99, low=0.1, high=1.0)       # float
        side = Param("long", choices=("long", "short"))

Read on the class, a parameter is its `Param` (the spec the optimizer searches); read on a
strategy, it is the value of this run: the default, or what `-p name=value` (CLI) or
`params={...}` (Python) gave. Every value is type- and range-checked where it enters.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping, Sequence

from .core.errors import ConfigError

KINDS = ("int", "float", "choice")


class ParamError(ConfigError):
    """A bad parameter spec or value; the message names the parameter and what is allowed."""


class Param:
    """A tunable parameter: a default and a range (`low`..`high`, optional `step`, `log`
    scale for floats) or a tuple of `choices`. The kind (int, float, choice) follows from
    the default; a bool default means the choices (False, True)."""

    __slots__ = ("default", "low", "high", "step", "choices", "log", "name", "owner")

    def __init__(self, default: Any, *, low: Any = None, high: Any = None, step: Any = None,
                 choices: Sequence[Any] | None = None, log: bool = False) -> None:
        self.default, self.low, self.high, self.step, self.log = default, low, high, step, log
        if choices is None and isinstance(default, bool):
            choices = (False, True)
        # a string is kept whole, for check_spec to refuse: tuple("long") is not meant
        self.choices = tuple(choices) if choices is not None and not isinstance(choices, str) \
            else choices
        self.name = "?"
        self.owner = "?"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.owner = name, owner.__name__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        # the class gets the spec; an instance normally has its value in its __dict__
        # (set when it is built), which Python reads before this non-data descriptor
        return self if obj is None else self.default

    @property
    def kind(self) -> str:
        if self.choices is not None:
            return "choice"
        return "int" if _is_int(self.default) else "float"

    @property
    def label(self) -> str:
        return f"{self.owner}.{self.name}"

    def allowed(self) -> str:
        """What values the parameter takes, for messages: 'int from 2 to 50 (step 2)'."""
        if self.kind == "choice":
            return "one of " + ", ".join(str(c) for c in self.choices or ())
        text = f"{self.kind} from {self.low} to {self.high}"
        return text + (f" (step {self.step})" if self.step is not None else "") + \
            (" (log scale)" if self.log else "")

    def check_spec(self) -> None:
        """Raise ParamError unless the spec is whole: a range or choices that hold the default."""
        if not isinstance(self.log, bool):
            raise ParamError(f"parameter {self.label}: log={self.log!r} is not True or False")
        if self.kind == "choice":
            self._check_choices()
            return
        if not isinstance(self.default, numbers.Real) or isinstance(self.default, bool):
            raise ParamError(f"parameter {self.label}: default {self.default!r} is not an int, "
                             "a float or a bool; give choices=(...) for other values")
        check_range(self.label, self.kind, self.low, self.high, self.step, self.log)
        # plain Python numbers (not numpy's): values go to JSON and to Optuna as they are
        cast = int if self.kind == "int" else float
        self.default, self.low, self.high = cast(self.default), cast(self.low), cast(self.high)
        self.step = None if self.step is None else cast(self.step)
        if not self.low <= self.default <= self.high:
            raise ParamError(f"parameter {self.label}: default {self.default!r} is out of range; "
                             f"allowed: {self.allowed()}")

    def _check_choices(self) -> None:
        """Choices are distinct plain values (what JSON and Optuna keep), default among them."""
        label = self.label
        if isinstance(self.choices, str):
            raise ParamError(f"parameter {label}: choices={self.choices!r} is a string; give a "
                             f"tuple of values, e.g. choices=({self.choices!r},)")
        if any(v is not None and v is not False for v in (self.low, self.high, self.step)) \
                or self.log:
            raise ParamError(f"parameter {label}: low, high, step and log are for int and "
                             "float parameters; a choice (or bool) parameter takes choices= only")
        if not self.choices:
            raise ParamError(f"parameter {label}: choices are empty")
        self.choices = tuple(_plain(label, c) for c in self.choices)
        for i, a in enumerate(self.choices):
            for b in self.choices[i + 1:]:
                if a == b:
                    raise ParamError(f"parameter {label}: choices {a!r} and {b!r} are equal; "
                                     "each choice must differ from the others")
        default = self._choice(self.default) if _scalar(self.default) else _MISSING
        if default is _MISSING:
            raise ParamError(f"parameter {label}: default {self.default!r} is not "
                             f"among its choices ({', '.join(map(str, self.choices))})")
        self.default = default

    def _choice(self, value: Any) -> Any:
        """The declared choice equal to `value` and of its kind (bool, number, str, None)."""
        for c in self.choices or ():
            if c == value and _kind_of(c) == _kind_of(value):
                return c
        return _MISSING

    def check(self, value: Any) -> Any:
        """`value` as this parameter's type, or ParamError naming it and what is allowed."""
        kind = self.kind
        if kind == "choice":
            choice = self._choice(value) if _scalar(value) else _MISSING
            if choice is not _MISSING:
                return choice
            raise ParamError(f"parameter {self.name}={value!r}: not allowed; {self.allowed()}")
        ok = _is_int(value) if kind == "int" else \
            isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not ok:
            raise ParamError(f"parameter {self.name}={value!r}: the value must be "
                             f"{_a(kind)}; allowed: {self.allowed()}")
        value = int(value) if kind == "int" else float(value)
        if not (self.low <= value <= self.high) or (kind == "float" and not math.isfinite(value)):
            raise ParamError(f"parameter {self.name}={value!r}: out of range; "
                             f"allowed: {self.allowed()}")
        return value

    def parse(self, text: str) -> Any:
        """A command-line value (`-p name=TEXT`) as this parameter's type, checked."""
        kind = self.kind
        if kind == "choice":
            for c in self.choices or ():
                if str(c) == text or (isinstance(c, bool) and text.lower() == str(c).lower()):
                    return c
            try:  # a number written another way: 2.50 for 2.5
                choice = self._choice(float(text))
            except ValueError:
                choice = _MISSING
            if choice is not _MISSING:
                return choice
            raise ParamError(f"parameter {self.name}={text!r}: not allowed; {self.allowed()}")
        try:
            value: Any = int(text) if kind == "int" else float(text)
        except ValueError:
            raise ParamError(f"parameter {self.name}={text!r}: not {_a(kind)}; "
                             f"allowed: {self.allowed()}") from None
        return self.check(value)

    def __repr__(self) -> str:
        if self.kind == "choice":
            return f"Param({self.default!r}, choices={self.choices!r})"
        extra = (f", step={self.step!r}" if self.step is not None else "") + \
            (", log=True" if self.log else "")
        return f"Param({self.default!r}, low={self.low!r}, high={self.high!r}{extra})"


_MISSING = object()
INT_LIMIT = 2**53  # ints beyond this do not survive Optuna's float representation


def _kind_of(v: Any) -> str:
    if v is None or isinstance(v, (bool, str)):
        return type(v).__name__
    return "number" if isinstance(v, numbers.Real) else "other"


def _scalar(v: Any) -> bool:
    return _kind_of(v) != "other"


def _plain(label: str, v: Any) -> Any:
    """A choice as a plain Python value (numpy scalars converted), or ParamError."""
    if hasattr(v, "item") and type(v).__module__ == "numpy":
        v = v.item()
    if not _scalar(v):
        raise ParamError(f"parameter {label}: choice {v!r} is a {type(v).__name__}; a choice is "
                         "None, a bool, an int, a float or a str")
    if isinstance(v, float) and not math.isfinite(v):
        raise ParamError(f"parameter {label}: choice {v!r} is not a finite number")
    return v


def _a(kind: str) -> str:
    return "an int" if kind == "int" else f"a {kind}"


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_range(label: str, kind: str, low: Any, high: Any, step: Any = None,
                log: bool = False) -> None:
    """Raise ParamError unless low..high (and step) make a non-empty range of `kind`."""
    want = _is_int if kind == "int" else (
        lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v))
    for what, v in (("low", low), ("high", high)):
        if v is None:
            raise ParamError(f"parameter {label}: {what} is missing; {_a(kind)} parameter "
                             "needs low= and high=")
        if not want(v):
            raise ParamError(f"parameter {label}: {what}={v!r} is not {_a(kind)}")
    for what, v in (("low", low), ("high", high)):
        if kind == "int" and abs(v) > INT_LIMIT:
            raise ParamError(f"parameter {label}: {what}={v!r} is beyond 2**53 ({INT_LIMIT}), "
                             "where Optuna can no longer tell ints apart")
    if low > high:
        raise ParamError(f"parameter {label}: empty range, low={low!r} is above high={high!r}")
    if step is not None and (not want(step) or step <= 0):
        raise ParamError(f"parameter {label}: step={step!r} must be a positive {kind}")
    if log and (low <= 0 or step is not None):
        raise ParamError(f"parameter {label}: a log scale needs low > 0 and no step")


def specs(cls: type) -> dict[str, Param]:
    """The parameters of a strategy class (inherited ones included), by name, in the order
    they were declared (base classes first)."""
    out: dict[str, Param] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Param):
                out[name] = value
            elif name in out:  # a plain attribute in a subclass replaces the parameter
                del out[name]
    return out


def check_class(cls: type, reserved: Iterable[str]) -> None:
    """Check every Param spec of `cls`; a parameter may not shadow a Strategy attribute."""
    taken = set(reserved)
    for name, p in specs(cls).items():
        if name in taken or name.startswith("_"):
            raise ParamError(f"parameter {p.label}: the name {name!r} is taken by the Strategy "
                             "base class (or private); choose another")
        p.check_spec()


def describe(cls: type) -> str:
    """'fast (int from 2 to 50), slow (...)', or 'none'."""
    return ", ".join(f"{n} ({p.allowed()})" for n, p in specs(cls).items()) or "none"


def resolve(cls: type, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every parameter's value for a run: its default, or the checked value in `given`."""
    table = specs(cls)
    given = dict(given or {})
    unknown = [k for k in given if k not in table]
    if unknown:
        raise ParamError(f"unknown parameter {unknown[0]!r} for {cls.__name__}; "
                         f"its parameters: {describe(cls)}")
    return {name: p.check(given[name]) if name in given else p.default
            for name, p in table.items()}


def parse_items(cls: type, items: Iterable[str]) -> dict[str, Any]:
    """`-p name=value` items as a dict of typed, checked values."""
    table = specs(cls)
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParamError(f"-p takes NAME=VALUE, got {item!r}")
        p = table.get(name)
        if p is None:
            raise ParamError(f"unknown parameter {name!r} for {cls.__name__}; "
                             f"its parameters: {describe(cls)}")
        out[name] = p.parse(text.strip())
    return out


def format_values(values: Mapping[str, Any]) -> str:
    """'fast=10 slow=30' (floats short)."""
    return " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in values.items())
