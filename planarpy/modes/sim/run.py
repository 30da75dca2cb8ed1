"""`backtest`: build a strategy on its data, step it through the candles, summarise."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from ...actions import Mode, pipeline
from ...config import load_config
from ...core.errors import ConfigError, DataError, LookAheadError, LookbackError, UnknownSymbol
from ...core.risk import RiskRules, rules_for
from ...data.ohlcv import OHLCV, align, timeframe_ms
from ...data.sources import DataSource, find_ohlcv, markets_for
from ...strategy import Strategy, check_instance
from .config import SimConfig
from .engine import SimClock, SimEngine
from .data import DataUsed
from .executor import SimExecutor
from .guard import EquityGuard
from .lookahead import blind, check_tick, cut_time
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
        s = strategy(markets_for(strategy.exchange, cfg, data_dir), mode=Mode.SIM, cash=cash,
                     params=params)
    e = s.engine
    initial_cash = e.state.cash
    series, sources = load_universe(s.exchange, s.timeframe, list(e.state.assets), data,
                                    data_dir, stop)
    timeline, aligned = align(series, s.timeframe, config.gaps)
    if len(timeline) < 2:
        raise DataError("need at least two candles to backtest")
    tf = timeframe_ms(s.timeframe)
    used = DataUsed.of(sources, config.gaps, series, timeline, tf)
    engine = SimEngine(s, config, range(int(timeline[0]), int(timeline[-1]) + tf, tf)
                       if config.gaps == "fill" else timeline.tolist(), tf)
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
    computed = e.prepare_indicators()
    if config.check_lookahead:
        check_causal(s, min(len(timeline) // 2, CAUSAL_CHECK), computed)
        check_lookback(s, len(timeline) - min(len(timeline) // 2, LOOKBACK_CHECK))
    del computed  # the run reads the lists in ai.ind: the arrays need not stay
    first = max(int(s.warmup_period()), 0)
    if start is not None:
        first = max(first, int(np.searchsorted(timeline, start, "left")))
    if first >= len(timeline) - 1:
        raise DataError(f"nothing to backtest: the warmup and start leave no candle "
                        f"({len(timeline)} candles, first tick would be {first})")
    e.emit("strategy_started", {"strategy": type(s).__name__, "mode": "sim",
                                "cash": initial_cash, "seed": config.seed,
                                "universe": [ai.symbol for ai in s.assets],
                                "params": dict(s.params), "data": used.to_dict()})
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
    result = SimResult(s, timeline[first:], curve, initial_cash, config.seed, data=used)
    cut = cut_time(timeline, first) if config.check_lookahead else None
    if cut is not None:
        markets = {ai.symbol: ai.market for ai in s.assets}
        check_tick(result, cut, lambda until: backtest(
            blind(type(s)(markets, mode=Mode.SIM, cash=initial_cash, params=dict(s.params))),
            data=data, start=start, stop=until, settings=cfg,
            config=attrs.evolve(config, check_lookahead=False), data_dir=data_dir,
            risk=e.state.risk.rules))
    return result


def load_universe(exchange: str, timeframe: str, symbols: Sequence[str],
                  data: Mapping[str, OHLCV | str | Path] | None, data_dir: str | Path | None,
                  stop: int | None) -> tuple[dict[str, OHLCV], list[DataSource]]:
    """Each market's candles (up to `stop`) and where they came from: given to `backtest`
    (candles or a CSV), else found by `find_ohlcv`."""
    unknown = [sym for sym in data or {} if sym not in symbols]
    if unknown:
        e = UnknownSymbol.among(unknown[0], symbols, "the strategy's universe")
        raise DataError(f"data given for a market the strategy does not trade: {e}")
    series, sources = {}, []
    for sym in symbols:
        given = (data or {}).get(sym)
        if isinstance(given, OHLCV):
            o, src = given, DataSource(sym, "given", "backtest(data=...)", timeframe,
                                       len(given), *_span(given))
        else:
            o, src = find_ohlcv(exchange, sym, timeframe, csv=given, data_dir=data_dir)
        series[sym] = o if stop is None else o.between(None, stop)
        sources.append(src)
    return series, sources


def _span(o: OHLCV) -> tuple[int | None, int | None]:
    return (int(o.timestamp[0]), int(o.timestamp[-1])) if len(o) else (None, None)


def check_causal(s: Strategy, k: int, computed: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Raise LookAheadError if an indicator's first `k` values change when later candles go
    (`computed`: their values over all the candles, as `prepare_indicators` returned them)."""
    for ai in s.assets:
        if not ai.ind or k < 1:
            continue
        full = computed.get(ai.symbol, {})
        for name, values in _indicators_over(s, ai, slice(0, k)).items():
            if name not in full:
                raise LookAheadError(f"indicator {name!r} of {ai.symbol} is returned over the "
                                     f"first {k} candles but not over all of them")
            a = np.asarray(values, dtype=np.float64)
            b = np.asarray(full[name][:k], dtype=np.float64)
            j = _first_difference(a, b)
            if j is not None:
                raise LookAheadError(
                    f"indicator {name!r} of {ai.symbol} looks ahead: its value at candle {j} "
                    f"({int(ai.ohlcv.timestamp[j])}) is {b[j]!r} with all the data but "
                    f"{a[j]!r} with candles up to {k - 1} only; an indicator may use "
                    f"candles <= its own")


def _indicators_over(s: Strategy, ai: Any, candles: slice) -> Mapping[str, Any]:
    """The strategy's indicators of `ai` computed over those of its candles only."""
    full = ai.ohlcv
    ai.ohlcv = full[candles]
    try:
        return s.indicators(ai) or {}
    finally:
        ai.ohlcv = full


def _first_difference(a: np.ndarray, b: np.ndarray) -> int | None:
    """The first index where `a` and `b` differ (NaN equals NaN), or None."""
    differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return int(np.flatnonzero(differs)[0]) if differs.any() else None


# the first candles (at most) the causal check recomputes the indicators over: a value
# that reads a later candle differs at the end of any prefix, so more candles find nothing
# more and only cost (half a million more on a million candles)
CAUSAL_CHECK = 100_000
LOOKBACK_CHECK = 20_000  # the last candles (at most) the lookback check recomputes
LOOKBACK_TILE = 32  # candles checked per recomputation, at least
LOOKBACK_TILES = 200  # recomputations at most (longer tiles on more data)


def check_lookback(s: Strategy, k: int) -> None:
    """Raise LookbackError if an indicator's values from candle k + lookback - 1 on differ
    when computed from a few candles more than their lookback: then they depend on older
    candles (or on where the candles start), and a live run would not see the same.

    The candles from k on are cut in tiles (`lookback` candles long, 32 at least, 200
    tiles at most), each recomputed from the `lookback` - 1 candles before it: every value
    is checked from its last `lookback` candles and at most a tile more (a live run
    computes each from its last `lookback`), not only the first values after one cut,
    so a recursive indicator whose lookback is too short is caught wherever a value it
    feeds (a cross) changes.
    """
    lookback = s.lookback
    if lookback is None:
        return
    for ai in s.assets:
        if not ai.ind or k < 1 or k + lookback > len(ai.ohlcv):
            continue
        step = max(lookback, LOOKBACK_TILE, -(-(len(ai.ohlcv) - k) // LOOKBACK_TILES))
        for start in range(k, len(ai.ohlcv) - lookback + 1, step):
            _check_tile(s, ai, start, min(start + lookback - 1 + step, len(ai.ohlcv)))


def _check_tile(s: Strategy, ai: Any, start: int, stop: int) -> None:
    """Compare the values from start + lookback - 1 to stop - 1 computed over the candles
    start..stop-1 alone with those over all the candles."""
    lookback = s.lookback
    first = start + lookback - 1
    for name, values in _indicators_over(s, ai, slice(start, stop)).items():
        a = np.asarray(values, dtype=np.float64)[lookback - 1:]
        b = np.asarray(ai.ind[name][first:stop], dtype=np.float64)
        j = _first_difference(a, b)
        if j is not None:
            raise LookbackError(
                f"indicator {name!r} of {ai.symbol} depends on more than its lookback of "
                f"{lookback} candles: its value at candle {first + j} "
                f"({int(ai.ohlcv.timestamp[first + j])}) is {b[j]!r} with all the data but "
                f"{a[j]!r} with the candles from {start} on only; raise `lookback` (a "
                f"recursive indicator needs the one its docstring gives, such as 60 * n "
                f"for rsi(n)), or compute it from the last {lookback} candles alone (a "
                f"running total never does: obv without a window, TA-Lib's SMA, BBANDS or "
                f"STOCH; planarpy.indicators has windowed ones)")


def _progress(total: int) -> Any:
    """A tqdm bar on stderr for long runs; None when there is no terminal or tqdm."""
    if total < 200_000 or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="candle", unit_scale=True, file=sys.stderr, leave=False)
