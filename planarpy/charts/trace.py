"""A recorded run (sim --record, paper, live) as a SimResult, so it charts like a backtest.

The run's events go through `apply_event`, as in `replay_from_trace`; after each fill the
state is noted, and the equity at every candle close follows from those notes and the
candles, as the sim computes it. The strategy is built with the parameters of the run
header, so its indicators are the ones the run saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import attrs
import numpy as np

from ..actions import Mode
from ..config import load_config
from ..core.apply import apply_event
from ..core.errors import ConfigError, DataError
from ..data.ohlcv import OHLCV, align, iso, timeframe_ms
from ..data.sources import load_ohlcv, markets_for
from ..loader import find_strategy
from ..modes.sim.results import Ledger, SimResult, equity_curve
from ..params import resolve
from ..strategy import Strategy
from ..trace import iter_events
from ..trace.replay import run_header
from .backtest import chart
from .page import Chart

_FILLS = frozenset({"trade_created", "trade_emulated", "liquidation"})


@attrs.define(slots=True)
class _Ledger:
    """What `equity_curve` reads of a sim engine: candles, and the state after each fill."""

    n: int
    ledger: Ledger


def result_from_trace(trace: str | Path | Any, strategy: type[Strategy] | str, *,
                      run: int | Literal["last"] = "last",
                      data: Mapping[str, OHLCV | str | Path] | None = None,
                      settings: Mapping[str, Any] | None = None,
                      data_dir: str | Path | None = None) -> SimResult:
    """A SimResult of a recorded run: its fills, its equity at each candle close."""
    cfg = load_config() if settings is None else settings
    cls = find_strategy(strategy, cfg) if isinstance(strategy, str) else strategy
    events = list(iter_events(trace, run=run))
    if not events:
        raise DataError(f"{trace} has no events for run {run!r}")
    header = run_header(trace, events[0]["run"])
    made_by = header.get("strategy", cls.__name__)
    if made_by != cls.__name__:
        raise ConfigError(f"run {events[0]['run']} of {trace} was recorded by {made_by}, not "
                          f"{cls.__name__}; give --strategy the strategy that made it")
    s = cls(markets_for(cls.exchange, cfg, data_dir), mode=Mode.SIM, cash=header.get("cash"),
            params=resolve(cls, header.get("params")))
    t0, t1 = events[0]["ts"] // 1_000_000, events[-1]["ts"] // 1_000_000
    timeline = _candles(s, data, data_dir, t0, t1, (header.get("data") or {}).get("gaps", "fill"))
    first = max(int(np.searchsorted(timeline, t0, "right")) - 1, 0)
    initial = float(header.get("cash", s.engine.state.cash))
    s.engine.state.cash = initial
    ledger = _replay(s, events, timeline)
    curve = equity_curve(_Ledger(len(timeline), ledger), s, first, initial)
    s.i = len(timeline) - 1
    return SimResult(s, timeline[first:], curve, initial, int(header.get("seed", 0) or 0))


def _candles(s: Strategy, data: Mapping[str, Any] | None, data_dir: Any, start: int,
             end: int, gaps: str = "fill") -> np.ndarray:
    """The universe's candles up to the run's end, gaps handled as the run had them;
    DataError unless they cover the run (a paper or live run needs its own candles: the
    bundled samples are from other years)."""
    series = {}
    for ai in s.assets:
        given = (data or {}).get(ai.symbol)
        o = given if isinstance(given, OHLCV) else \
            load_ohlcv(s.exchange, ai.symbol, s.timeframe, csv=given, data_dir=data_dir)
        series[ai.symbol] = o.between(None, end + 1)
        tf = timeframe_ms(s.timeframe)
        have = (int(o.timestamp[0]), int(o.timestamp[-1]) + tf) if len(o) else None
        if have is None or have[0] > start or have[1] + tf <= end:
            held = f"{iso(have[0])} to {iso(have[1])}" if have else "none"
            raise DataError(f"the {ai.symbol} candles at hand ({held}) do not cover the run "
                            f"({iso(start)} to {iso(end)}); give them with --data "
                            f"{ai.symbol}=CSV (data= in Python) or --data-dir")
    timeline, aligned = align(series, s.timeframe, gaps)
    for ai in s.assets:
        ai.ohlcv = aligned[ai.symbol]
    s.engine.prepare_indicators()
    return timeline


def _replay(s: Strategy, events: Sequence[Mapping[str, Any]], timeline: np.ndarray) -> Ledger:
    """Apply the run's events to the strategy's state; the ledger of the state after each
    fill."""
    st = s.engine.state
    ledger = Ledger(len(s.assets))
    for e in events:
        kind, payload = e["kind"], e["payload"] or {}
        if kind == "strategy_started" and "cash" in payload:
            st.cash = float(payload["cash"])
        try:
            apply_event(st, kind, payload)
        except (KeyError, ValueError, TypeError):
            continue  # replay_from_trace reports such events; a chart skips them
        if kind in _FILLS:
            at = int(np.searchsorted(timeline, int(payload.get("date", 0)), "right")) - 1
            ledger.add(s.engine, max(at, 0))
    return ledger


def chart_trace(trace: str | Path | Any, strategy: type[Strategy] | str, *,
                run: int | Literal["last"] = "last", indicators: Sequence[str] | None = None,
                data: Mapping[str, OHLCV | str | Path] | None = None,
                settings: Mapping[str, Any] | None = None,
                data_dir: str | Path | None = None) -> Chart:
    """The chart of a recorded run (see `chart`)."""
    result = result_from_trace(trace, strategy, run=run, data=data, settings=settings,
                               data_dir=data_dir)
    return chart(result, indicators=indicators)
