"""Charts of an optimisation: an objective over two parameters, and objectives against
each other with the Pareto front."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ConfigError
from .page import Chart, bokeh

MAX_CELLS = 20  # per axis of a heatmap; more numeric values are put in equal bins


def heatmap(result: Any, x: str | None = None, y: str | None = None, value: str | None = None,
            path: str | Path | None = None) -> Chart:
    """An objective (default the first) over two searched parameters (default the first
    two); where several trials share a cell (other parameters varied, or one bin of a
    numeric axis of more than 20 values), the best shows."""
    bokeh()
    from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure
    names = list(result.names)
    x, y = x or (names[0] if names else None), y or (names[1] if len(names) > 1 else None)
    for axis in (x, y):
        if axis not in names:
            raise ConfigError(f"heatmap axis {axis!r} is not a searched parameter "
                              f"({', '.join(names) or 'none'})")
    o = _objective(result, value)
    k = [ob.name for ob in result.objectives].index(o.name)
    trials = [t for t in result.folds[-1].trials
              if t["feasible"] and math.isfinite(t["values"][k])]
    if not trials:
        raise ConfigError("no feasible trial to draw")
    bx, by = _binner([t["params"][x] for t in trials]), _binner([t["params"][y] for t in trials])
    cells: dict[tuple[Any, Any], float] = {}
    for t in trials:
        v = t["values"][k]
        key = (bx(t["params"][x]), by(t["params"][y]))
        old = cells.get(key)
        if old is None or (v > old if o.maximize else v < old):
            cells[key] = v
    xs, ys = sorted({a for a, _ in cells}, key=_order), sorted({b for _, b in cells}, key=_order)
    src = ColumnDataSource({"x": [_label(a) for a, _ in cells], "y": [_label(b) for _, b in cells],
                            "v": list(cells.values())})
    vals = np.asarray(list(cells.values()))
    mapper = LinearColorMapper(palette=Viridis256 if o.maximize else Viridis256[::-1],
                               low=float(vals.min()), high=float(vals.max()))
    fig = figure(x_range=[_label(a) for a in xs], y_range=[_label(b) for b in ys], height=520,
                 width=760, title=f"{result.strategy}: {o.name} ({o.direction}) over {x} and {y}",
                 tools="hover,save,reset", toolbar_location="right")
    fig.rect("x", "y", 1, 1, source=src, fill_color={"field": "v", "transform": mapper},
             line_color=None, name="cells")
    fig.select_one(HoverTool).tooltips = [(x, "@x"), (y, "@y"), (o.name, "@v{0.0[0000]}")]
    fig.add_layout(ColorBar(color_mapper=mapper, title=o.name), "right")
    fig.xaxis.axis_label, fig.yaxis.axis_label = x, y
    fig.toolbar.logo = None
    return _done(Chart(fig, fig.title.text), path)


def pareto_plot(result: Any, x: str | None = None, y: str | None = None,
                path: str | Path | None = None) -> Chart:
    """Every feasible trial by two objectives (default the first two), the Pareto front
    joined and highlighted."""
    bokeh()
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure
    objs = [o.name for o in result.objectives]
    if len(objs) < 2:
        raise ConfigError("a Pareto plot needs two objectives; this study has one")
    x, y = x or objs[0], y or objs[1]
    for axis in (x, y):
        if axis not in objs:
            raise ConfigError(f"{axis!r} is not an objective ({', '.join(objs)})")
    i, j = objs.index(x), objs.index(y)
    fold = result.folds[-1]
    front = {t["number"] for t in fold.best}

    def source(rows: list[dict[str, Any]]) -> Any:
        return ColumnDataSource({"x": [t["values"][i] for t in rows],
                                 "y": [t["values"][j] for t in rows],
                                 "trial": [t["number"] for t in rows],
                                 "params": [_params(t["params"]) for t in rows]})
    ok = [t for t in fold.trials if t["feasible"]]
    on = sorted((t for t in ok if t["number"] in front), key=lambda t: t["values"][i])
    fig = figure(height=520, width=760, tools="pan,wheel_zoom,box_zoom,reset,save",
                 title=f"{result.strategy}: {len(ok)} trials, {len(on)} on the Pareto front")
    fig.scatter("x", "y", source=source([t for t in ok if t["number"] not in front]), size=7,
                color="#90a4ae", alpha=0.7, legend_label="trials", name="trials")
    pts = fig.scatter("x", "y", source=source(on), size=10, color="#d84315",
                      legend_label="Pareto front", name="front")
    fig.line("x", "y", source=source(on), color="#d84315", line_width=1.5)
    fig.add_tools(HoverTool(renderers=[pts], tooltips=[("trial", "@trial"), ("params", "@params"),
                                                       (x, "@x{0.0[0000]}"), (y, "@y{0.0[0000]}")]))
    fig.xaxis.axis_label = f"{x} ({result.objectives[i].direction})"
    fig.yaxis.axis_label = f"{y} ({result.objectives[j].direction})"
    fig.toolbar.logo = None
    return _done(Chart(fig, fig.title.text), path)


def _objective(result: Any, name: str | None) -> Any:
    if name is None:
        return result.objectives[0]
    for o in result.objectives:
        if o.name == name:
            return o
    raise ConfigError(f"{name!r} is not an objective of this study "
                      f"({', '.join(o.name for o in result.objectives)})")


def _binner(values: list[Any]) -> Any:
    """Each value as itself, or, for a numeric axis of more than MAX_CELLS values (a random
    or TPE search), as one of MAX_CELLS equal bins (lo, hi) of the range searched."""
    distinct = set(values)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct)
    if not numeric or len(distinct) <= MAX_CELLS:
        return lambda v: v
    lo, hi = min(distinct), max(distinct)
    step = (hi - lo) / MAX_CELLS
    if all(isinstance(v, int) for v in distinct):
        step = math.ceil(step)  # whole-number bins of ints
    def bin_of(v: Any) -> tuple[float, float]:
        i = min(int((v - lo) // step), MAX_CELLS - 1)
        return (lo + i * step, lo + (i + 1) * step)
    return bin_of


def _label(v: Any) -> str:
    if isinstance(v, tuple):  # a bin: its range, the upper end open
        return f"{v[0]:.4g}–{v[1]:.4g}"
    return str(v)


def _order(v: Any) -> Any:
    if isinstance(v, tuple):
        return (0, v[0], "")
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def _params(p: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in p.items())


def _done(c: Chart, path: str | Path | None) -> Chart:
    if path is not None:
        c.save(path)
    return c
