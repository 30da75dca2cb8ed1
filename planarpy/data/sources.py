"""Where a run finds its markets and candles: explicit CSVs, the local store, bundled samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..core.errors import ConfigError, DataError
from ..core.market import Market
from .ohlcv import OHLCV, load_csv
from .sample import list_samples, sample_markets, sample_path


def markets_for(exchange: str, config: Mapping[str, Any] | None = None) -> dict[str, Market]:
    """Markets of `exchange`: the bundled ones, updated by planar.toml [markets.EXCHANGE]."""
    out: dict[str, Market] = {}
    try:
        bundled = sample_markets(exchange)
    except KeyError:
        bundled = {}
    for sym, d in bundled.items():
        out[sym] = Market.from_ccxt(d)
    extra = ((config or {}).get("markets") or {}).get(exchange) or {}
    if not isinstance(extra, Mapping):
        raise ConfigError(f"[markets.{exchange}] must be a table of markets")
    for sym, d in extra.items():
        if not isinstance(d, Mapping):
            raise ConfigError(f"[markets.{exchange}.\"{sym}\"] must be a table")
        base = dict(bundled.get(sym) or {})
        base.update(d)
        base.setdefault("symbol", sym)
        if "/" in sym:
            b, q = sym.split("/", 1)
            base.setdefault("base", b)
            base.setdefault("quote", q.split(":")[0])
        out[sym] = Market.from_ccxt(base)
    return out


def load_ohlcv(exchange: str, symbol: str, timeframe: str, *,
               csv: str | Path | None = None, data_dir: str | Path | None = None) -> OHLCV:
    """Candles of one market: from `csv` if given, else the local store, else the samples.

    A `data_dir` given explicitly must hold the market: it never falls back to the samples.
    """
    if csv is not None:
        return load_csv(csv)
    if data_dir is not None:
        return _from_given_store(exchange, symbol, timeframe, Path(data_dir))
    stored = _from_store(exchange, symbol, timeframe, data_dir)
    if stored is not None:
        return stored
    path = sample_path(exchange, symbol, timeframe)
    if path is not None:
        return load_csv(path)
    raise DataError(
        f"no {timeframe} candles for {exchange} {symbol}: pass --data {symbol}=FILE.csv, "
        f"fetch them with `planarpy fetch {exchange} {symbol} {timeframe}`, or use a bundled "
        f"sample ({', '.join(list_samples())})")


def _from_store(exchange: str, symbol: str, timeframe: str,
                data_dir: str | Path | None) -> OHLCV | None:
    try:
        from .store import OHLCVStore
    except ImportError:
        return None
    store = OHLCVStore(data_dir) if data_dir is not None else OHLCVStore()
    if not store.can_load(exchange, symbol, timeframe):
        return None
    return store.load(exchange, symbol, timeframe)


def _from_given_store(exchange: str, symbol: str, timeframe: str, data_dir: Path) -> OHLCV:
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist (or is not a directory)")
    from .store import OHLCVStore
    return OHLCVStore(data_dir).load(exchange, symbol, timeframe)
