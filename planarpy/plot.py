"""Charts of a backtest: price with entries and exits, equity with its drawdowns.

Needs matplotlib (the `plot` extra). Draws on an Agg canvas of its own, so it never
touches pyplot's global state or needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .core.orders import PositionSide, Side, Trade
from .modes.sim.results import MissingExtra, SimResult, drawdown

MAX_POINTS = 20_000  # longer series are thinned to a min/max envelope of this many points


def plot_backtest(result: SimResult, path: str | Path, *, symbols: list[str] | None = None,
                  width: float = 12.0, dpi: int = 100) -> Path:
    """Write a PNG (or any format matplotlib knows from the suffix) of `result` to `path`.

    One price panel per asset (or per symbol in `symbols`) with its fills: entries as
    triangles (up for long, down for short), exits as crosses; below, the equity with
    each drawdown shaded down from its running peak.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    s = result.strategy
    assets = [s.asset(sym) for sym in symbols] if symbols else list(s.assets)
    fig = Figure(figsize=(width, 2.6 * len(assets) + 3.0), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(assets) + 1, 1, sharex=True,
                        height_ratios=[2.0] * len(assets) + [1.6], squeeze=False)[:, 0]
    lo = int(result.times[0]) if len(result.times) else None
    for ax, ai in zip(axes, assets):
        _price_panel(ax, ai, s, lo)
    _equity_panel(axes[-1], result)
    axes[-1].set_xlabel("time (UTC)")
    fig.suptitle(f"{type(s).__name__}: return {result.total_return * 100:+.2f}%, "
                 f"max drawdown {result.max_drawdown * 100:.2f}%, {len(result.trades)} fills")
    path = Path(path)
    fig.savefig(path)
    return path


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtra("plots need matplotlib: pip install planarpy[plot]") from None
    return Figure, FigureCanvasAgg


def _price_panel(ax: Any, ai: Any, s: Any, lo: int | None) -> None:
    o = ai.ohlcv
    k = 0 if lo is None else int(np.searchsorted(o.timestamp, lo))
    x, y = thin(o.timestamp[k:], o.close[k:], MAX_POINTS)
    ax.plot(_dates(x), y, color="0.35", lw=0.8, label=f"{ai.symbol} close")
    kinds = [(t.date, t.price, fill_kind(t, ai.market.is_derivative))
             for t in s.engine.state.trades if t.symbol == ai.symbol]
    for kind, marker, color in (("long entry", "^", "tab:green"),
                                ("short entry", "v", "tab:purple"), ("exit", "x", "tab:red")):
        pts = [(d, p) for d, p, k in kinds if k == kind]
        if pts:
            d, p = zip(*pts)
            ax.scatter(_dates(np.asarray(d)), p, marker=marker, color=color, s=36, zorder=3,
                       label=f"{kind} ({len(pts)})")
    ax.set_ylabel(f"price ({ai.market.quote})")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)


def fill_kind(t: Trade, derivative: bool) -> str:
    """'long entry' or 'short entry' for a fill that opens or grows a position, else 'exit'."""
    short = derivative and t.pos is PositionSide.SHORT
    if (t.side is Side.BUY) != short:
        return "short entry" if short else "long entry"
    return "exit"


def _equity_panel(ax: Any, result: SimResult) -> None:
    e = np.asarray(result.equity, dtype=np.float64)
    peak = np.maximum.accumulate(e) if len(e) else e
    x, ye = thin(result.times, e, MAX_POINTS)
    _, yp = thin(result.times, peak, MAX_POINTS, like=e)
    t = _dates(x)
    ax.plot(t, ye, color="tab:blue", lw=1.0, label="equity")
    ax.fill_between(t, ye, yp, where=ye < yp, color="tab:red", alpha=0.3, lw=0,
                    label=f"drawdown (max {drawdown(e).max(initial=0.0) * 100:.2f}%)")
    ax.axhline(result.initial_cash, color="0.5", lw=0.6, ls="--")
    ax.set_ylabel(f"equity ({result.strategy.quote})")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)


def thin(x: np.ndarray, y: np.ndarray, points: int,
         like: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """At most about `points` points of (x, y) keeping each bucket's extremes.

    Buckets take the points where `like` (default `y`) is lowest and highest, so two
    series thinned alike stay aligned and no spike disappears from the chart.
    """
    n = len(x)
    if n <= points:
        return np.asarray(x), np.asarray(y)
    ref = np.asarray(y if like is None else like)
    size = -(-2 * n // points)
    m = n // size * size
    b = ref[:m].reshape(-1, size)
    base = np.arange(0, m, size)
    lo, hi = base + b.argmin(axis=1), base + b.argmax(axis=1)
    idx = np.sort(np.r_[np.minimum(lo, hi), np.maximum(lo, hi), np.arange(m, n)])
    return np.asarray(x)[idx], np.asarray(y)[idx]


def _dates(ms: np.ndarray) -> np.ndarray:
    return np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")
