"""The chart of one run: candles, indicators, fills and positions per asset; equity against
buy-and-hold; drawdown. Every panel shares the time axis."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..data.ohlcv import OHLCV, resample, timeframe_ms
from ..modes.sim.results import SimResult, drawdown, walk_trades
from ..plot import fill_kind, thin
from .page import Chart, bokeh

MAX_CANDLES = 2_500  # longer runs are drawn on a coarser timeframe (stated on the price axis)
MAX_POINTS = 8_000  # equity and indicator lines are thinned to about this many points
# the coarser timeframe: the smallest of these that keeps the candles under MAX_CANDLES
CHART_TIMEFRAMES = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")
WIDTH = 1100
COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
UP, DOWN = "#26a69a", "#ef5350"
ENTRY, SHORT_ENTRY, EXIT = "#00a000", "#8e24aa", "#d50000"


def chart(result: SimResult, *, symbols: Sequence[str] | None = None,
          indicators: Sequence[str] | None = None, title: str | None = None) -> Chart:
    """An interactive chart of a backtest (or of `result_from_trace`).

    One price panel per asset (or per symbol in `symbols`): candles, the indicators in
    `indicators` (default: those on the price's scale), entries (triangles) and exits
    (crosses), and the time a position was held shaded; then the equity beside holding
    the universe, and the drawdown.
    """
    bokeh()
    from bokeh.layouts import column
    s = result.strategy
    assets = [s.asset(sym) for sym in symbols] if symbols else list(s.assets)
    lo = int(result.times[0]) if len(result.times) else 0
    trips, still_open = walk_trades(result.trades, s)
    first = None
    panels = []
    for ai in assets:
        fig = _price_panel(ai, result, lo, trips, still_open, indicators, first)
        first = first or fig
        panels.append(fig)
    panels.append(_equity_panel(result, first))
    panels.append(_drawdown_panel(result, first))
    head = title or (f"{type(s).__name__} {result.strategy.timeframe}: return "
                     f"{result.total_return * 100:+.2f}%, max drawdown "
                     f"{result.max_drawdown * 100:.2f}%, {len(result.trades)} fills")
    panels[0].title.text = head
    return Chart(column(*panels, sizing_mode="stretch_width"), head)


def _figure(height: int, x_range: Any, ylabel: str) -> Any:
    from bokeh.plotting import figure
    fig = figure(height=height, width=WIDTH, x_axis_type="datetime", sizing_mode="stretch_width",
                 tools="xpan,xwheel_zoom,box_zoom,reset,save,crosshair",
                 active_scroll="xwheel_zoom", **({"x_range": x_range.x_range} if x_range else {}))
    fig.yaxis.axis_label = ylabel
    fig.toolbar.logo = None
    return fig


def candles_for_chart(o: OHLCV, timeframe: str) -> tuple[OHLCV, int]:
    """The candles to draw and their width (ms). A run of more than MAX_CANDLES candles is
    drawn on the smallest of CHART_TIMEFRAMES (a multiple of its own) that keeps it under;
    fills, equity and indicators keep their own times."""
    tf = timeframe_ms(timeframe)
    need = tf * max(1, math.ceil(len(o) / MAX_CANDLES))
    if need == tf:
        return o, tf
    width = next((w for w in map(timeframe_ms, CHART_TIMEFRAMES) if w >= need and w % tf == 0),
                 need)
    return resample(o, timeframe, f"{width // 1000}s"), width


def span(ms: int) -> str:
    """A timeframe in ms as text: 900000 -> '15m', 28800000 -> '8h'."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms // 1000}s"


def _price_panel(ai: Any, result: SimResult, lo: int, trips: list[Any], still_open: Any,
                 indicators: Sequence[str] | None, x_range: Any) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool
    o = ai.ohlcv.between(lo, None)
    c, width = candles_for_chart(o, result.strategy.timeframe)
    label = f"{ai.symbol} ({ai.market.quote})"
    if width != timeframe_ms(result.strategy.timeframe):
        label += f", {span(width)} candles (run on {result.strategy.timeframe})"
    fig = _figure(380, x_range, label)
    _positions(fig, ai.symbol, trips, still_open, c, result)
    inc = c.close >= c.open
    src = ColumnDataSource({"t": c.timestamp + width / 2, "open": c.open, "high": c.high,
                            "low": c.low, "close": c.close, "volume": c.volume,
                            "color": np.where(inc, UP, DOWN)})
    fig.segment("t", "high", "t", "low", source=src, color="color", name="wicks")
    bars = fig.vbar("t", width * 0.8, "open", "close", source=src, fill_color="color",
                    line_color="color", name="candles")
    fig.add_tools(HoverTool(renderers=[bars], tooltips=[
        ("time", "@t{%F %H:%M}"), ("open", "@open{0.0[0000000]}"), ("high", "@high{0.0[0000000]}"),
        ("low", "@low{0.0[0000000]}"), ("close", "@close{0.0[0000000]}"), ("volume", "@volume{0.[00]}")],
        formatters={"@t": "datetime"}))
    for k, name in enumerate(_indicators(ai, indicators)):
        x, y = thin(ai.ohlcv.timestamp, np.asarray(ai.ind[name], dtype=np.float64), MAX_POINTS)
        keep = x >= lo
        fig.line(x[keep], y[keep], color=COLORS[k % len(COLORS)], line_width=1.3,
                 legend_label=name, name=f"ind:{name}")
    _fills(fig, ai, result)
    if fig.legend:
        fig.legend.location = "top_left"
        fig.legend.click_policy = "hide"
    return fig


def _indicators(ai: Any, chosen: Sequence[str] | None) -> list[str]:
    """The indicators to overlay: those named, else those on the price's own scale."""
    if chosen is not None:
        missing = [n for n in chosen if n not in ai.ind]
        if missing:
            from ..core.errors import ConfigError
            raise ConfigError(f"indicator {missing[0]!r} is not among {ai.symbol}'s "
                              f"({', '.join(ai.ind) or 'none'})")
        return list(chosen)
    close = float(np.median(ai.ohlcv.close)) if len(ai.ohlcv) else 0.0
    out = []
    for name, values in ai.ind.items():
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) and close > 0 and 0.5 < float(np.median(v)) / close < 2.0:
            out.append(name)
    return out


def _fills(fig: Any, ai: Any, result: SimResult) -> None:
    from bokeh.models import ColumnDataSource, HoverTool
    rows = [(t.date, t.price, t.amount, t.side.value, fill_kind(t, ai.market.is_derivative))
            for t in result.trades if t.symbol == ai.symbol]
    glyphs = []
    for kind, name, marker, color in (("long entry", "entries", "triangle", ENTRY),
                                      ("short entry", "short_entries", "inverted_triangle",
                                       SHORT_ENTRY), ("exit", "exits", "x", EXIT)):
        pts = [r for r in rows if r[4] == kind]
        if not pts and kind != "long entry":
            continue
        src = ColumnDataSource({"x": [r[0] for r in pts], "y": [r[1] for r in pts],
                                "amount": [r[2] for r in pts], "side": [r[3] for r in pts]})
        glyphs.append(fig.scatter("x", "y", source=src, marker=marker, size=11,
                                  fill_color=color, line_color=color, line_width=2,
                                  legend_label=f"{kind} ({len(pts)})", name=name))
    fig.add_tools(HoverTool(renderers=glyphs, tooltips=[
        ("time", "@x{%F %H:%M}"), ("side", "@side"), ("price", "@y{0.0[0000000]}"),
        ("amount", "@amount{0.[00000000]}")], formatters={"@x": "datetime"}))


def _positions(fig: Any, symbol: str, trips: list[Any], still_open: Any, c: OHLCV,
               result: SimResult) -> None:
    """Shade the time each position was held (green long, purple short)."""
    spans = [(t.entry_time, t.exit_time, t.side) for t in trips if t.symbol == symbol]
    if symbol in still_open:
        end = int(result.times[-1]) + result.timeframe_ms
        spans.append((still_open[symbol], end, "long"))  # side of an open one: see below
        ai = result.strategy.asset(symbol)
        if ai.short.amount > 0:
            spans[-1] = (spans[-1][0], end, "short")
    lo = float(c.low.min()) if len(c) else 0.0
    hi = float(c.high.max()) if len(c) else 1.0
    fig.quad(left=[a for a, _, _ in spans], right=[b for _, b, _ in spans],
             bottom=lo, top=hi, fill_color=[ENTRY if k == "long" else SHORT_ENTRY
                                            for _, _, k in spans],
             fill_alpha=0.08, line_alpha=0, name="positions")


def _equity_panel(result: SimResult, x_range: Any) -> Any:
    fig = _figure(260, x_range, f"equity ({result.strategy.quote})")
    t, e = thin(result.times, np.asarray(result.equity, dtype=np.float64), MAX_POINTS)
    tb, b = thin(result.times, result.buy_and_hold(), MAX_POINTS)
    fig.line(t, e, color="#1565c0", line_width=1.5, legend_label="equity", name="equity")
    fig.line(tb, b, color="#757575", line_width=1.2, line_dash="dashed",
             legend_label="buy and hold", name="buy_and_hold")
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    return fig


def _drawdown_panel(result: SimResult, x_range: Any) -> Any:
    fig = _figure(150, x_range, "drawdown (%)")
    t, d = thin(result.times, -100.0 * drawdown(result.equity), MAX_POINTS)
    fig.varea(x=t, y1=d, y2=0.0, fill_color=EXIT, fill_alpha=0.35, name="drawdown")
    return fig
