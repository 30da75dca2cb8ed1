"""Type and range checks of what a user gives: command-line flags and planar.toml keys.

A `Rule` says what a value may be. `flag(rule)` makes it an argparse `type=` (it parses
the text), `Rule.value` checks a value read from a config file (TOML has typed it
already: a number, a boolean, a string), and `read_table` checks a whole table. Every
message names the option, its value and what is allowed; nan and infinities are never
numbers here, and a boolean is only `true` or `false`, never the string "false".
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import attrs

from .core.clock import MAX_WAIT
from .core.errors import ConfigError


@attrs.frozen(slots=True)
class Rule:
    """What a value may be: `allowed` says it in words, `test` decides, `parse` reads it
    from command-line text, `cast` normalises an accepted value (an int to a float)."""

    allowed: str
    test: Callable[[Any], bool]
    parse: Callable[[str], Any] = str
    cast: Callable[[Any], Any] = attrs.field(default=lambda v: v)

    def value(self, value: Any, name: str) -> Any:
        """`value` as accepted; ConfigError naming `name`, the value and what is allowed."""
        if not _passes(self.test, value):
            raise ConfigError(f"{name} must be {self.allowed}, not {value!r}")
        return self.cast(value)

    def text(self, text: str) -> Any:
        """A value from command-line `text`; ValueError saying what is allowed."""
        try:
            value = self.parse(text)
        except ValueError:
            value = _INVALID
        if value is _INVALID or not _passes(self.test, value):
            raise ValueError(f"must be {self.allowed}, not {text!r}")
        return self.cast(value)


_INVALID = object()


def _passes(test: Callable[[Any], bool], value: Any) -> bool:
    try:
        return bool(test(value))
    except (TypeError, ValueError):
        return False


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


def positive(unit: str = "", below: float = math.inf) -> Rule:
    """A finite number > 0 (a duration, an interval, an amount of cash), and < `below`."""
    less = f" and < {below:g}" if below < math.inf else ""
    return Rule(f"a number > 0{less}{_unit(unit)}",
                lambda v: _is_number(v) and 0 < v < below, float, float)


def non_negative(unit: str = "") -> Rule:
    """A finite number >= 0 (a wait that may be none)."""
    return Rule(f"a number >= 0{_unit(unit)}", lambda v: _is_number(v) and v >= 0, float, float)


def wait() -> Rule:
    """Seconds to wait for an answer: from 0 to a day (`core.clock.MAX_WAIT`)."""
    return number(0.0, MAX_WAIT, "seconds")


def count(unit: str = "") -> Rule:
    """A whole number >= 1."""
    return Rule(f"a whole number >= 1{_unit(unit)}",
                lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, int, int)


def whole(low: int = 0, high: int | None = None, unit: str = "") -> Rule:
    """A whole number from `low` (to `high`, if given)."""
    span = f"from {low} to {high}" if high is not None else f">= {low}"
    return Rule(f"a whole number {span}{_unit(unit)}",
                lambda v: (isinstance(v, int) and not isinstance(v, bool) and v >= low
                           and (high is None or v <= high)), int, int)


def number(low: float, high: float, unit: str = "") -> Rule:
    """A finite number from `low` to `high` (a rate, a share)."""
    return Rule(f"a number from {low:g} to {high:g}{_unit(unit)}",
                lambda v: _is_number(v) and low <= v <= high, float, float)


def port() -> Rule:
    """A TCP port: 0 to 65535 (0: any free port)."""
    return whole(0, 65535, "0: any free port")


def boolean() -> Rule:
    """true or false (TOML's booleans; the strings "true" and "false" are not)."""
    return Rule("true or false", lambda v: isinstance(v, bool), _bool_text)


def one_of(*choices: str) -> Rule:
    return Rule(f"one of {', '.join(choices)}", lambda v: isinstance(v, str) and v in choices)


def nonempty() -> Rule:
    """A non-empty string."""
    return Rule("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")


def table() -> Rule:
    return Rule("a table", lambda v: isinstance(v, Mapping), cast=dict)


def url() -> Rule:
    """An http(s) base URL: scheme, host, optional port and path; no query or fragment."""
    return Rule("an http(s) URL like http://host:port or https://host/prefix (a base: no "
                "query, no fragment)", _is_url)


def _is_url(v: Any) -> bool:
    parts = urlsplit(v) if isinstance(v, str) else None
    return (parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)
            and not parts.query and not parts.fragment and not v.endswith(("?", "#"))
            and (parts.port is None or parts.port > 0))  # .port raises on 99999: refused


def out_file(*suffixes: str) -> Rule:
    """A file to write: not a directory, in a directory that exists, with one of
    `suffixes` (any, if none given)."""
    ends = f" ending in {', '.join(suffixes[:-1])} or {suffixes[-1]}" if len(suffixes) > 1 \
        else f" ending in {suffixes[0]}" if suffixes else ""
    return Rule(f"a file{ends} in an existing directory",
                lambda v: _writable(v, suffixes))


def _writable(v: Any, suffixes: tuple[str, ...]) -> bool:
    if not isinstance(v, str) or not v.strip():
        return False
    p = Path(v)
    return (not p.is_dir() and p.parent.is_dir()
            and (not suffixes or p.suffix.lower() in suffixes))


def existing_dir() -> Rule:
    """A directory that exists."""
    return Rule("an existing directory", lambda v: isinstance(v, str) and Path(v).is_dir())


def _bool_text(text: str) -> bool:
    word = text.strip().lower()
    if word not in ("true", "false"):
        raise ValueError(text)
    return word == "true"


def flag(rule: Rule) -> Callable[[str], Any]:
    """An argparse `type=` applying `rule`: a bad value is a one-line usage error that
    names the flag (argparse adds it), the value and what is allowed."""
    def parse(text: str) -> Any:
        try:
            return rule.text(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = rule.allowed  # what argparse would call the type
    return parse


def read_table(values: Any, rules: Mapping[str, Rule], where: str) -> dict[str, Any]:
    """Check every key of config table `where` (e.g. "[live]"): unknown keys are refused,
    each known one is checked by its rule. A missing table is an empty one."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a table, not {values!r}")
    unknown = sorted(set(values) - set(rules))
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(rules))}")
    return {k: rules[k].value(v, f"{where} {k}") for k, v in values.items()}
