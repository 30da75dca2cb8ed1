"""How values are shown to a person: ISO dates, enum words, numbers at market precision,
and the small HTML tables notebooks render (`_repr_html_`).

Shown values are rounded for reading only; the values themselves are never changed. A
number with no market at hand gets ten significant digits, which removes float noise
(0.08804497999999998 -> 0.08804498) and keeps every digit a tick of 1e-8 can carry.
"""

from __future__ import annotations

import datetime as _dt
import enum
import html
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

from .precision import step_decimals


def iso(ms: int | float | None) -> str:
    """Epoch milliseconds as ISO 8601 UTC ('2024-01-05T12:00:00Z'; milliseconds when any)."""
    if ms is None or (isinstance(ms, float) and not math.isfinite(ms)):
        return "-"
    t = _dt.datetime.fromtimestamp(int(ms) / 1000, _dt.timezone.utc)
    return t.isoformat(timespec="milliseconds" if int(ms) % 1000 else "seconds")[:-6] + "Z"


def num(x: Any, step: float | None = None) -> str:
    """`x` at ten significant digits (float noise gone, every digit a tick of 1e-8 carries
    kept); with a market's `step` (tick or amount step), at the step's decimals plus four
    (a fee taken in the base leaves a balance finer than the step), and dust below a
    millionth of the step shown as 0."""
    if isinstance(x, enum.Enum):
        return str(x.value)
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return str(x)
    if not math.isfinite(x):
        return str(x)
    if step:
        if abs(x) < step * 1e-6:
            return "0"
        x = round(x, step_decimals(step) + 4)
    text = f"{x:.10g}"
    return "0" if text in ("-0", "0") else text


def word(x: Any) -> str:
    """An enum as its word ('buy', 'open'), anything else as str."""
    return str(x.value) if isinstance(x, enum.Enum) else str(x)


def rules_text(rules: Mapping[str, Any]) -> str:
    """Risk rules (`RiskRules.in_force`) as 'max_drawdown=0.1 on_drawdown=reduce'."""
    return " ".join(f"{k}={num(v)}" for k, v in rules.items())


def trading_rows(rules: Mapping[str, Any], changes: Sequence[Mapping[str, Any]], denied: int,
                 date: Callable[[Any], str] = iso, leverage: int = 0) -> list[tuple[str, str]]:
    """A run's risk rows: the rules in force (`RiskRules.in_force`), when and why they
    halted or reduced trading, and how many orders (of the `denied` requests, those that
    were not one of the `leverage` changes) they denied; none without rules or anything
    they did."""
    if not (rules or changes or denied):
        return []
    rows = [("risk rules", rules_text(rules))] if rules else []
    rows += [("trading", f"{c['state']} at {date(c.get('ts'))} by {c['rule']}: {c['reason']}")
             for c in changes] or [("trading", "active throughout: no risk rule tripped")]
    orders = denied - leverage
    text = f"{orders} order{'s' if orders != 1 else ''}"
    if leverage:
        text += f", {leverage} leverage change{'s' if leverage != 1 else ''}"
    rows.append(("risk denied", text))
    return rows


def html_table(title: str, rows: Iterable[tuple[str, Any]],
               table: list[list[Any]] | None = None) -> str:
    """A titled two-column table of (name, value) rows, then an optional table whose first
    row is the header: what a notebook shows for an object."""
    e = html.escape
    out = [f"<div class='planarpy'><strong>{e(title)}</strong>",
           "<table><tbody>"]
    out += [f"<tr><th style='text-align:left'>{e(str(k))}</th><td style='text-align:left'>"
            f"{e(str(v))}</td></tr>" for k, v in rows]
    out.append("</tbody></table>")
    if table:
        head, *body = table
        out.append("<table><thead><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in head)
                   + "</tr></thead><tbody>")
        out += ["<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in r) + "</tr>" for r in body]
        out.append("</tbody></table>")
    out.append("</div>")
    return "\n".join(out)
