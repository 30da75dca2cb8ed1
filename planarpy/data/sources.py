"""Where a run finds its markets and candles: explicit CSVs, the local store, bundled samples.

Candles of a market, first found wins: a CSV given for it; the local store's series of the
same market and timeframe; the bundled sample of that market and timeframe; the store's
candles of a smaller timeframe, resampled. An explicit `data_dir` must hold the market
(exactly or resampled): it never falls back to the samples. So a series stored at another
timeframe never replaces a bundled sample, and every run can say what it used
(`DataSource`).

Markets: the bundled ones, then those fetched into the store (`planarpy markets fetch`,
`planarpy fetch`), then planar.toml's `[markets.EXCHANGE."SYMBOL"]`, each overriding the
one before key by key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import attrs
import numpy as np

from ..core.errors import ConfigError, DataError
from ..core.market import Market
from .markets import stored_markets
from .ohlcv import OHLCV, iso, load_csv, resample, timeframe_ms
from .sample import list_samples, sample_markets, sample_path

# the keys of ccxt's unified market structure: a [markets] entry may use these only
CCXT_MARKET_KEYS = frozenset({
    "id", "symbol", "base", "quote", "settle", "baseId", "quoteId", "settleId", "type",
    "subType", "spot", "margin", "swap", "future", "option", "index", "active", "contract",
    "linear", "inverse", "contractSize", "expiry", "expiryDatetime", "strike", "optionType",
    "precision", "limits", "marginModes", "maker", "taker", "percentage", "tierBased",
    "feeSide", "created", "info", "lowercaseId", "maintenanceMarginRate"})


@attrs.frozen(slots=True)
class DataSource:
    """Which candles a run used for one market: `kind` is "csv", "store" or "sample",
    `where` the file, store directory or sample name; `resampled_from` the timeframe they
    were aggregated from, if any; the range and count are of the candles loaded."""

    symbol: str
    kind: str
    where: str
    timeframe: str
    rows: int
    first: int | None
    last: int | None
    resampled_from: str | None = None

    def describe(self, date: Callable[[int | None], str] = iso) -> str:
        what = {"csv": f"CSV {self.where}", "store": f"the store {self.where}",
                "sample": f"the bundled sample {self.where}",
                "given": f"candles given to {self.where}"}.get(self.kind, self.where)
        if self.resampled_from:
            what += f" ({self.resampled_from} resampled to {self.timeframe})"
        return (f"{self.symbol}: {what}, {self.rows} candles from {date(self.first)} to "
                f"{date(self.last)}")

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def markets_for(exchange: str, config: Mapping[str, Any] | None = None,
                data_dir: str | Path | None = None) -> dict[str, Market]:
    """Markets of `exchange`: the bundled ones, updated by those fetched into the store
    (under `data_dir`, default the store's), updated by planar.toml [markets.EXCHANGE]."""
    try:
        known = dict(sample_markets(exchange))
    except KeyError:
        known = {}
    known.update(stored_markets(exchange, data_dir))
    out = {sym: Market.from_ccxt(d) for sym, d in known.items()}
    extra = ((config or {}).get("markets") or {}).get(exchange) or {}
    if not isinstance(extra, Mapping):
        raise ConfigError(f"[markets.{exchange}] must be a table of markets, not {extra!r}")
    for sym, d in extra.items():
        out[sym] = _configured(exchange, sym, d, known.get(sym))
    return out


def _configured(exchange: str, sym: str, d: Any, known: Mapping[str, Any] | None) -> Market:
    """A market of planar.toml's [markets.EXCHANGE."SYM"], over what is known of it."""
    where = f'[markets.{exchange}."{sym}"]'
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where} must be a table in ccxt's market shape, not {d!r}")
    unknown = sorted(set(d) - CCXT_MARKET_KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; known (ccxt's "
                          f"market shape): {', '.join(sorted(CCXT_MARKET_KEYS))}")
    if d.get("symbol", sym) != sym:
        raise ConfigError(f"{where} symbol is {d['symbol']!r}: it must be {sym!r} or left out")
    merged = dict(known or {})
    merged.update(d)
    merged["symbol"] = sym
    if "/" in sym:
        b, q = sym.split("/", 1)
        merged.setdefault("base", b)
        merged.setdefault("quote", q.split(":")[0])
    try:
        return Market.from_ccxt(merged)
    except ConfigError as e:
        raise ConfigError(f"{where}: {str(e).partition(': ')[2] or e}") from None


def find_ohlcv(exchange: str, symbol: str, timeframe: str, *,
               csv: str | Path | None = None,
               data_dir: str | Path | None = None) -> tuple[OHLCV, DataSource]:
    """Candles of one market on `timeframe`, and where they came from (see the module)."""
    if csv is not None:
        return _from_csv(symbol, timeframe, Path(csv))
    if data_dir is not None:
        return _from_store(exchange, symbol, timeframe, Path(data_dir), derive=True, given=True)
    for found in (_from_store(exchange, symbol, timeframe, None, derive=False),
                  _from_sample(exchange, symbol, timeframe),
                  _from_store(exchange, symbol, timeframe, None, derive=True)):
        if found is not None:
            return found
    raise DataError(
        f"no {timeframe} candles for {exchange} {symbol}: pass --data {symbol}=FILE.csv, "
        f"fetch them with `planarpy fetch {exchange} {symbol} {timeframe}`, or use a bundled "
        f"sample ({', '.join(list_samples())})")


def load_ohlcv(exchange: str, symbol: str, timeframe: str, *,
               csv: str | Path | None = None, data_dir: str | Path | None = None) -> OHLCV:
    """Candles of one market (see `find_ohlcv`, which also says where they came from)."""
    return find_ohlcv(exchange, symbol, timeframe, csv=csv, data_dir=data_dir)[0]


def _source(symbol: str, kind: str, where: str, timeframe: str, o: OHLCV,
            resampled_from: str | None = None) -> DataSource:
    first, last = (int(o.timestamp[0]), int(o.timestamp[-1])) if len(o) else (None, None)
    return DataSource(symbol, kind, where, timeframe, len(o), first, last, resampled_from)


def _from_sample(exchange: str, symbol: str, timeframe: str) -> tuple[OHLCV, DataSource] | None:
    path = sample_path(exchange, symbol, timeframe)
    if path is None:
        return None
    o = load_csv(path)
    return o, _source(symbol, "sample", path.name.removesuffix(".csv.gz"), timeframe, o)


def _from_store(exchange: str, symbol: str, timeframe: str, data_dir: Path | None, *,
                derive: bool, given: bool = False) -> tuple[OHLCV, DataSource] | None:
    """The store's candles: with `derive`, only those resampled from a smaller timeframe
    (None if there are none, or if the timeframe itself is stored); without, only the
    timeframe itself. A `given` store must have them, one way or the other."""
    from .store import OHLCVStore  # zarr only when the store is read
    if given and not (data_dir is not None and data_dir.is_dir()):
        raise DataError(f"data directory {data_dir} does not exist (or is not a directory)")
    store = OHLCVStore(data_dir)
    exact = store.info(exchange, symbol, timeframe)
    if not given:
        if not derive and (exact is None or exact.rows == 0):
            return None
        if derive and (exact is not None or not store.can_load(exchange, symbol, timeframe)):
            return None
    o = store.load(exchange, symbol, timeframe)
    want = timeframe_ms(timeframe)
    source = None if exact is not None else next(
        (tf for tf in reversed(store.timeframes(exchange, symbol))
         if timeframe_ms(tf) < want and want % timeframe_ms(tf) == 0), None)
    return o, _source(symbol, "store", str(store.root), timeframe, o, source)


def _from_csv(symbol: str, timeframe: str, path: Path) -> tuple[OHLCV, DataSource]:
    """A CSV's candles on `timeframe`: finer ones that divide it are resampled (whole
    buckets only); coarser ones are refused, never stretched into synthetic candles."""
    o = load_csv(path)
    step = spacing(o)
    tf = timeframe_ms(timeframe)
    if step is None or step == tf:
        return o, _source(symbol, "csv", str(path), timeframe, o)
    name = timeframe_name(step)
    if step > tf or tf % step:
        raise DataError(
            f"{path} holds {name} candles (they are {name} apart, or a multiple), but the "
            f"strategy trades {timeframe} candles: give {timeframe} candles (or finer ones, "
            f"which are resampled), or change the strategy's timeframe")
    out = whole_buckets(resample(o, name, timeframe), o, step, tf)
    return out, _source(symbol, "csv", str(path), timeframe, out, resampled_from=name)


def spacing(o: OHLCV) -> int | None:
    """The step of the candles' grid (the greatest common divisor of their distances), or
    None with fewer than three candles."""
    if len(o) < 3:
        return None
    return int(np.gcd.reduce(np.diff(o.timestamp)))


def whole_buckets(out: OHLCV, raw: OHLCV, step: int, tf: int) -> OHLCV:
    """`out` (resampled from `raw`) without the first and last buckets if `raw` starts or
    ends inside them."""
    if len(out) and raw.timestamp[0] > out.timestamp[0]:
        out = out[1:]
    if len(out) and raw.timestamp[-1] + step < out.timestamp[-1] + tf:
        out = out[:-1]
    return out


def timeframe_name(ms: int) -> str:
    """A timeframe in ccxt's notation for a step in ms (300000 -> '5m')."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
