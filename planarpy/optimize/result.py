"""What an optimisation returns: every trial, the best parameters, and the per-fold report
of in-sample against out-of-sample results.

Tables are plain rows (lists of dicts) and text; `frame()` gives a pandas DataFrame when
the `pandas` extra is installed, and says how to install it when it is not.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs

from ..core.errors import ConfigError
from ..modes.sim.results import _pandas, _pct
from ..params import format_values
from .objectives import Constraint, Objective
from .splits import Window

STAT_COLUMNS = ("return", "sharpe", "max_drawdown", "trades", "win_rate", "exposure")
SHARES = frozenset({"return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure",
                    "buy_and_hold", "partial_fills"})  # fractions, shown as percentages


@attrs.frozen(slots=True, eq=False)
class FoldResult:
    """One study: its trials, its best (or Pareto) trials, and their out-of-sample runs."""

    index: int
    study: str
    train: Window
    test: Window | None
    trials: list[dict[str, Any]]
    best: list[Mapping[str, Any]]
    out_of_sample: list[dict[str, Any]]  # per best trial: its summary on the test window


@attrs.frozen(slots=True, eq=False)
class OptimizeResult:
    """The outcome of `optimize`: folds (one without a split), each with all its trials."""

    strategy: str
    method: str
    objectives: tuple[Objective, ...]
    names: tuple[str, ...]  # searched parameter names
    fixed: Mapping[str, Any]
    folds: list[FoldResult]
    storage: str
    workers: list[dict[str, Any]] = attrs.Factory(list)
    constraints: tuple[Constraint, ...] = ()
    data: Any = None  # the DataUsed of the candles every trial ran on

    @property
    def trials(self) -> list[dict[str, Any]]:
        """Every trial of every fold, in order."""
        return [t for f in self.folds for t in f.trials]

    @property
    def best(self) -> Mapping[str, Any] | None:
        """The best trial of the last fold (for walk-forward: the most recent data); with
        several objectives, the first trial of its Pareto front."""
        best = self.folds[-1].best
        return best[0] if best else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The strategy's parameter values of `best`, fixed ones included."""
        b = self.best
        return None if b is None else {**b["params"], **self.fixed}

    @property
    def pareto(self) -> list[Mapping[str, Any]]:
        """The Pareto front of the last fold (the best trial alone for one objective)."""
        return list(self.folds[-1].best)

    # ---- tables ----------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per trial: fold, trial, parameters, objectives, state, key stats."""
        out = []
        several = len(self.folds) > 1
        for f in self.folds:
            chosen = {b["number"] for b in f.best}
            for t in f.trials:
                row: dict[str, Any] = {"fold": f.index} if several else {}
                row["trial"] = t["number"]
                row.update({n: t["params"].get(n) for n in self.names})
                row.update({o.name: _clean(v) for o, v in zip(self.objectives, t["values"])})
                row["state"] = t["state"]
                row["feasible"] = t["feasible"]
                row["best"] = t["number"] in chosen
                summary = t["summary"] or {}
                row.update({f"stat_{k}" if k in row else k: summary.get(k)
                            for k in STAT_COLUMNS})
                out.append(row)
        return out

    def frame(self) -> Any:
        """All trials as a pandas DataFrame (needs the `pandas` extra)."""
        return _pandas().DataFrame(self.rows())

    def to_csv(self, path: str | Path) -> Path:
        """Write every trial to a CSV file (no pandas needed)."""
        rows = self.rows()
        path = Path(path)
        try:
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["trial"])
                w.writeheader()
                w.writerows(rows)
        except OSError as e:
            raise ConfigError(f"--csv {path}: cannot write it ({e.strerror or e})") from None
        return path

    def table(self, top: int = 10) -> str:
        """The `top` feasible trials of the last fold, best first, as text."""
        fold = self.folds[-1]
        o = self.objectives[0]
        ok = [t for t in fold.trials if t["feasible"]]
        ok.sort(key=lambda t: (-t["values"][0] if o.maximize else t["values"][0], t["number"]))
        names = [x.name for x in self.objectives]
        extra = [k for k in ("return", "max_drawdown", "trades") if k not in names]
        head = ["trial", *self.names, *names, *extra]
        body = [[str(t["number"]), *(_fmt(t["params"].get(n)) for n in self.names),
                 *(_figure(t, k, self.objectives) for k in names + extra)] for t in ok[:top]]
        return _grid(head, body)

    def report(self) -> str:
        """Per fold: the chosen trials, each objective and key figure in-sample (IS) beside
        out-of-sample (OOS) when the fold has a test window."""
        lines = []
        for f in self.folds:
            span = f"train {_window(f.train)}" + (f", test {_window(f.test)}" if f.test else "")
            done = sum(t["state"] != "running" for t in f.trials)
            feasible = sum(t["feasible"] for t in f.trials)
            lines.append(f"fold {f.index} ({f.study}): {span}; {done} trials, {feasible} feasible")
            if not f.best:
                lines.append("  no feasible trial" + self._why_none(f))
                continue
            lines += ["  " + line for line in self._fold_table(f).splitlines()]
        return "\n".join(lines)

    def _why_none(self, f: FoldResult) -> str:
        """': constraint 'trades >= 50' met by 0 of 9 trials, 3 with an undefined sharpe'."""
        ran = [t for t in f.trials if t["summary"] is not None]
        parts = [f"constraint {c.text!r} met by "
                 f"{sum(c.violation(t['summary']) <= 0 for t in ran)} of {len(ran)} trials"
                 for c in self.constraints]
        undefined = sum(t["state"] == "undefined" for t in f.trials)
        if undefined:
            names = " or ".join(o.name for o in self.objectives)
            parts.append(f"{undefined} with an undefined {names}")
        return ": " + ", ".join(parts) if parts else ""

    def _fold_table(self, f: FoldResult) -> str:
        sides = ["IS", "OOS"] if f.test is not None else ["IS"]
        figures = [o.name for o in self.objectives] + \
            [k for k in ("return", "trades") if k not in {o.name for o in self.objectives}]
        head = ["trial", "params", *(f"{k} {side}" for k in figures for side in sides)]
        oos = {r["number"]: r for r in f.out_of_sample}
        body = []
        for b in f.best:
            runs = [b] + ([oos.get(b["number"]) or {}] if f.test is not None else [])
            row = [str(b["number"]), format_values(b["params"])]
            for k in figures:
                row += [_figure(run, k, self.objectives) for run in runs]
            body.append(row)
        return _grid(head, body)

    def heatmap(self, x: str | None = None, y: str | None = None, value: str | None = None,
                path: str | Path | None = None) -> Any:
        """An interactive heatmap of an objective over two parameters (needs `charts`)."""
        from ..charts import heatmap
        return heatmap(self, x, y, value, path=path)

    def pareto_plot(self, path: str | Path | None = None) -> Any:
        """An interactive scatter of two objectives with the Pareto front (needs `charts`)."""
        from ..charts import pareto_plot
        return pareto_plot(self, path=path)

    def __repr__(self) -> str:
        best = self.best
        text = format_values(self.best_params or {}) if best else "none"
        return (f"<OptimizeResult {self.strategy} {self.method}: {len(self.trials)} trials, "
                f"{len(self.folds)} fold(s), best {text}>")


def _figure(run: Mapping[str, Any], key: str, objectives: Sequence[Objective]) -> str:
    """An objective's value (or a summary figure) of one run, for the report."""
    names = [o.name for o in objectives]
    if key in names and run.get("values"):
        v = _clean(run["values"][names.index(key)])
    else:
        v = (run.get("summary") or {}).get(key)
    if key in SHARES and v is not None:
        return _pct(v, "+" if key in ("return", "cagr", "buy_and_hold") else "")
    return _fmt(v)


def _clean(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _window(w: Window | None) -> str:
    return "-" if w is None else str(w)


def _grid(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths))
                     for r in [list(head), *body])
