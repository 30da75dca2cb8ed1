"""`backtest`: build a strategy on its data, step it through the candles, summarise."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from ...actions import Mode, pipeline
from ...config import load_config
from ...core.errors import ConfigError, DataError, LookAheadError, LookbackError
from ...core.risk import RiskRules, rules_for
from ...data.ohlcv import OHLCV, align, timeframe_ms
from ...data.sources import load_ohlcv, markets_for
from ...strategy import Strategy, check_instance
from .config import SimConfig
from .engine import SimClock, SimEngine
from .executor import SimExecutor
from .guard import EquityGuard
from .results import SimResult, equity_curve


def backtest(strategy: type[Strategy] | Strategy, *,
             data: Mapping[str, OHLCV | str | Path] | None = None,
             cash: float | None = None, start: int | None = None, stop: int | None = None,
             config: SimConfig = SimConfig(), recorder: Any = None, progress: bool = False,
             settings: Mapping[str, Any] | None = None,
             data_dir: str | Path | None = None,
             params: Mapping[str, Any] | None = None,
             risk: RiskRules | Mapping[str, Any] | None = None) -> SimResult:
    """Run a backtest and return its result.

    `data` maps symbols to candles or CSV paths; symbols it does not name are read from
    the local store or the bundled samples. `start`/`stop` (epoch ms) bound the ticks;
    candles before `start` still feed the indicators and the warmup. `params` sets the
    strategy's parameters (`planarpy.Param`) for this run; only with a class. `risk` gives
    the risk rules (RiskRules, or a table shaped like planar.toml's [risk]); by default
    they come from [risk] in the settings.
    """
    cfg = load_config() if settings is None else settings
    if isinstance(strategy, Strategy):
        if params:
            raise ConfigError("backtest(params=...) needs the strategy class; an instance "
                              "has its parameters already (give params= when building it)")
        s = strategy
    else:
        s = strategy(markets_for(strategy.exchange, cfg), mode=Mode.SIM, cash=cash,
                     params=params)
    e = s.engine
    initial_cash = e.state.cash
    series = {}
    for ai in s.assets:
        given = (data or {}).get(ai.symbol)
        if isinstance(given, OHLCV):
            o = given
        else:
            o = load_ohlcv(s.exchange, ai.symbol, s.timeframe, csv=given, data_dir=data_dir)
        if stop is not None:
            o = o.between(None, stop)
        series[ai.symbol] = o
    unknown = set(data or {}) - set(series)
    if unknown:
        raise DataError(f"data given for {', '.join(sorted(unknown))}, which is not in the "
                        f"strategy's universe ({', '.join(series)})")
    timeline, aligned = align(series, s.timeframe)
    if len(timeline) < 2:
        raise DataError("need at least two candles to backtest")
    tf = timeframe_ms(s.timeframe)
    engine = SimEngine(s, config, range(int(timeline[0]), int(timeline[-1]) + tf, tf), tf)
    fees = {k: v for k, v in (("maker", config.maker), ("taker", config.taker),
                              ("fee_side", config.fee_side)) if v is not None}
    for ai in s.assets:
        ai.ohlcv = aligned[ai.symbol]
        if fees:  # overrides change the market itself, so funds checks reserve them too
            ai.market = attrs.evolve(ai.market, **fees)
    e.executor = SimExecutor(s, engine)
    e.dispatch = pipeline.HANDLERS
    e.state.risk.rules = rules_for(risk, cfg, type(s).__name__)
    e.clock = SimClock(s, engine.close_times, engine.timeline[0])
    if e.state.risk.rules.checks_equity:
        engine.guard = EquityGuard(e, engine.close_times)
    e.recorder = recorder
    s.i = -1
    s.reset()
    check_instance(s)
    e.prepare_indicators()
    if config.check_lookahead:
        check_causal(s, len(timeline) // 2)
        check_lookback(s, len(timeline) - min(len(timeline) // 2, LOOKBACK_CHECK))
    first = max(int(s.warmup_period()), 0)
    if start is not None:
        first = max(first, int(np.searchsorted(timeline, start, "left")))
    if first >= len(timeline) - 1:
        raise DataError(f"nothing to backtest: the warmup and start leave no candle "
                        f"({len(timeline)} candles, first tick would be {first})")
    e.emit("strategy_started", {"strategy": type(s).__name__, "mode": "sim",
                                "cash": initial_cash, "seed": config.seed,
                                "universe": [ai.symbol for ai in s.assets],
                                "params": dict(s.params)})
    s.start()
    bar = _progress(len(timeline) - 1 - first) if progress else None
    try:
        engine.run(first, bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    s.stop()
    e.emit("strategy_stopped", {"cash": e.state.cash, "committed": e.state.committed})
    if recorder is not None and hasattr(recorder, "flush"):
        recorder.flush()
    curve = equity_curve(engine, s, first, initial_cash)
    return SimResult(s, timeline[first:], curve, initial_cash, config.seed)


def check_causal(s: Strategy, k: int) -> None:
    """Raise LookAheadError if an indicator's first `k` values change when later candles go."""
    for ai in s.assets:
        if not ai.ind or k < 1:
            continue
        full = ai.ohlcv
        ai.ohlcv = full[:k]
        try:
            prefix = s.indicators(ai) or {}
        finally:
            ai.ohlcv = full
        for name, values in prefix.items():
            a = np.asarray(values, dtype=np.float64)
            b = np.asarray(ai.ind[name][:k], dtype=np.float64)
            differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
            if differs.any():
                j = int(np.flatnonzero(differs)[0])
                raise LookAheadError(
                    f"indicator {name!r} of {ai.symbol} looks ahead: its value at candle {j} "
                    f"({int(full.timestamp[j])}) is {b[j]!r} with all the data but {a[j]!r} with "
                    f"candles up to {k - 1} only; an indicator may use candles <= its own")


LOOKBACK_CHECK = 20_000  # the last candles (at most) the lookback check recomputes


def check_lookback(s: Strategy, k: int) -> None:
    """Raise LookbackError if, with candles from `k` on only, an indicator's values from
    k + lookback - 1 on differ from those over all the candles: then it depends on older
    candles (or on where the candles start), and a live run would not see the same."""
    lookback = s.lookback
    if lookback is None:
        return
    for ai in s.assets:
        if not ai.ind or k < 1 or k + lookback > len(ai.ohlcv):
            continue
        full = ai.ohlcv
        ai.ohlcv = full[k:]
        try:
            suffix = s.indicators(ai) or {}
        finally:
            ai.ohlcv = full
        for name, values in suffix.items():
            a = np.asarray(values, dtype=np.float64)[lookback - 1:]
            b = np.asarray(ai.ind[name][k + lookback - 1:], dtype=np.float64)
            differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
            if differs.any():
                j = k + lookback - 1 + int(np.flatnonzero(differs)[0])
                raise LookbackError(
                    f"indicator {name!r} of {ai.symbol} depends on more than its lookback of "
                    f"{lookback} candles: its value at candle {j} ({int(full.timestamp[j])}) is "
                    f"{b[j - k - lookback + 1]!r} with all the data but "
                    f"{a[j - k - lookback + 1]!r} with the candles from {k} on; raise "
                    f"`lookback`, or compute it from the last {lookback} candles alone")


def _progress(total: int) -> Any:
    """A tqdm bar on stderr for long runs; None when there is no terminal or tqdm."""
    if total < 200_000 or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="candle", unit_scale=True, file=sys.stderr, leave=False)
