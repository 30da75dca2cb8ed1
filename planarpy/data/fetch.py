"""Download candles through ccxt into the OHLCV store: paged, retried, resumable."""

from __future__ import annotations

import difflib
import sys
import time
from typing import Any, Callable, Mapping, TypeVar

import attrs
import ccxt
from tqdm import tqdm

from ..core.errors import DataError, PlanarError, UnknownSymbol
from ..core.market import Market
from ..exchanges.client import rewrite_urls  # the one URL override, shared with live
from .markets import store_markets
from .ohlcv import OHLCV, Gap, concat, iso, timeframe_ms
from .store import OHLCVStore, SeriesKey

T = TypeVar("T")

# RequestTimeout, ExchangeNotAvailable, DDoSProtection and RateLimitExceeded are NetworkErrors
TRANSIENT: tuple[type[Exception], ...] = (ccxt.NetworkError,)


class FetchFailed(PlanarError, RuntimeError):
    """The exchange kept failing or refused a request, so the download stopped."""


@attrs.frozen(slots=True)
class FetchReport:
    """What a download added to the store."""

    key: SeriesKey
    since: int | None
    until: int
    added: int
    requests: int
    retries: int
    gaps: tuple[Gap, ...]
    rows: int
    first: int | None
    last: int | None
    markets_file: Any = None  # where the market's rules were stored

    def __str__(self) -> str:
        if not self.added:
            text = f"{self.key}: up to date"
        else:
            text = f"{self.key}: {self.added} candles added in {self.requests} request(s)"
        if self.retries:
            text += f", {self.retries} retried"
        if self.gaps:
            missing = sum(g.missing for g in self.gaps)
            text += f", {len(self.gaps)} gap(s) with {missing} candle(s) missing"
        text += f"; stored {self.rows} from {iso(self.first)} to {iso(self.last)}"
        return text + (f"; its market rules are in {self.markets_file}" if self.markets_file
                       else "")


def open_exchange(exchange_id: str, *, url: str | None = None, rate_limit: bool = True,
                  options: Mapping[str, Any] | None = None, timeout_ms: int | None = None,
                  sandbox: bool = False) -> ccxt.Exchange:
    """A sync ccxt client; with `url`, every REST URL points at that host instead (its
    path, if any, in front of each endpoint's); `sandbox` uses ccxt's testnet URLs."""
    cls = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
    if cls is None:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownSymbol(f"unknown exchange {exchange_id!r}{hint}")
    exchange = cls({"enableRateLimit": rate_limit})
    if timeout_ms is not None:
        exchange.timeout = timeout_ms
    if sandbox:
        exchange.set_sandbox_mode(True)  # before a URL override, which it would replace
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise DataError(f"exchange URL {url!r} must start with http:// or https://")
        exchange.urls["api"] = rewrite_urls(exchange.urls["api"], url)
        exchange.options["fetchCurrencies"] = False
        exchange.options["fetchMargins"] = False
    if options:
        exchange.options.update(options)
    return exchange


def narrow_market_types(exchange: ccxt.Exchange, symbol: str) -> None:
    """Load only the market types `symbol` can be (spot or contracts), when the exchange
    takes a `fetchMarkets` types option; fewer requests, and no request to APIs unused."""
    current = exchange.options.get("fetchMarkets")
    types = current.get("types") if isinstance(current, dict) else current
    if not isinstance(types, list):
        return
    if ":" not in symbol:
        keep = [t for t in types if t == "spot"]
    elif symbol.count("-") >= 3:
        keep = [t for t in types if t == "option"]
    else:
        keep = [t for t in types if t not in ("spot", "option")]
    if not keep:
        return
    if isinstance(current, dict):
        exchange.options["fetchMarkets"] = {**current, "types": keep}
    else:
        exchange.options["fetchMarkets"] = keep


def retrying(fn: Callable[[], T], what: str, *, retries: int, backoff: float,
             sleep: Callable[[float], None] = time.sleep,
             on_retry: Callable[[Exception], None] | None = None) -> T:
    """Call `fn`, retrying transient exchange errors with exponential backoff.

    Other ccxt errors, and a transient one that outlasts `retries`, raise FetchFailed.
    """
    for attempt in range(retries + 1):
        try:
            return fn()
        except TRANSIENT as e:
            if attempt == retries:
                raise FetchFailed(f"{what}: still failing after {retries} retries: "
                                  f"{type(e).__name__}: {_short(e)}") from None
            if on_retry is not None:
                on_retry(e)
            sleep(min(backoff * 2 ** attempt, 60.0))
        except ccxt.BaseError as e:
            raise FetchFailed(f"{what}: {type(e).__name__}: {_short(e)}") from None
    raise AssertionError("unreachable")


def _short(e: Exception, limit: int = 300) -> str:
    text = str(e)
    return text if len(text) <= limit else text[:limit] + "..."


def check_timeframe(exchange: ccxt.Exchange, symbol: str, timeframe: str) -> None:
    """Raise DataError unless the exchange has candles of `timeframe`."""
    timeframes = exchange.timeframes or {}
    if timeframe not in timeframes:
        raise DataError(f"{exchange.id} has no timeframe {timeframe!r} for {symbol}; it has: "
                        f"{', '.join(timeframes) or 'none (no OHLCV)'}")


def check_symbol(exchange: ccxt.Exchange, symbol: str) -> None:
    """Raise UnknownSymbol unless `symbol` is among the exchange's loaded markets."""
    if symbol not in (exchange.markets or {}):
        raise UnknownSymbol.among(symbol, exchange.markets or {}, f"{exchange.id}'s markets")


def page_limit(exchange: ccxt.Exchange, symbol: str) -> int | None:
    """The most candles one fetch_ohlcv may return for this market, if ccxt knows it."""
    market = exchange.markets.get(symbol, {}) if exchange.markets else {}
    features = getattr(exchange, "features", None) or {}
    node = features.get(market.get("type") or "spot") or {}
    if "fetchOHLCV" not in node:  # contracts are keyed by subtype: swap/linear, future/inverse
        node = node.get(market.get("subType") or "linear") or {}
    value = (node.get("fetchOHLCV") or {}).get("limit")
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


@attrs.define(slots=True)
class _Download:
    """State of one download: the client, the target series and the counters."""

    exchange: ccxt.Exchange
    target: OHLCVStore
    key: SeriesKey
    limit: int | None
    retries: int
    backoff: float
    sleep: Callable[[float], None]
    now: int
    bar: Any
    requests: int = 0
    retried: int = 0
    added: int = 0
    gaps: list[Gap] = attrs.Factory(list)

    def call(self, fn: Callable[[], T], what: str) -> T:
        def count(_: Exception) -> None:
            self.retried += 1
        return retrying(fn, what, retries=self.retries, backoff=self.backoff,
                        sleep=self.sleep, on_retry=count)

    def pages(self, lo: int, hi: int) -> Any:
        """Closed candles with open times in [lo, hi), one OHLCV per request, in order."""
        tf = timeframe_ms(self.key.timeframe)
        cursor = lo
        while cursor < hi:
            params = {"until": hi - 1}
            rows = self.call(lambda: self.exchange.fetch_ohlcv(
                self.key.symbol, self.key.timeframe, since=cursor, limit=self.limit,
                params=params), f"{self.key}: fetching candles from {iso(cursor)}")
            self.requests += 1
            rows = [r for r in rows or [] if cursor <= r[0] < hi and r[0] + tf <= self.now]
            if not rows:
                return
            rows.sort(key=lambda r: r[0])
            try:
                page = OHLCV.from_rows([[float("nan") if x is None else x for x in r[:6]]
                                        for r in rows])
            except (TypeError, ValueError) as e:
                raise DataError(f"{self.key}: the exchange sent malformed candles ({e})") from None
            self.bar.update(max(0, min(hi, int(page.timestamp[-1]) + tf) - cursor) // tf)
            cursor = int(page.timestamp[-1]) + tf
            yield page

    def store(self, page: OHLCV) -> None:
        """Commit downloaded candles to the series (appended, or prepended in one rewrite);
        a write the file system refuses (a full disk, a read-only store) commits nothing."""
        k = self.key
        try:
            report = self.target.append(k.exchange, k.symbol, k.timeframe, page,
                                        source=f"{k} (downloaded)")
        except OSError as e:
            raise DataError(f"{k}: cannot write to the data store {self.target.root}: "
                            f"{e.strerror or e}; these {len(page)} candles were not "
                            "stored") from None
        self.gaps.extend(report.gaps)
        self.added += report.added


def fetch_candles(exchange: ccxt.Exchange, store: OHLCVStore, symbol: str, timeframe: str, *,
                  since: int | None = None, until: int | None = None, limit: int | None = None,
                  retries: int = 5, backoff: float = 1.0, progress: bool | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> FetchReport:
    """Download closed candles of one market into `store` and report what was added.

    Resumes after the last stored candle; with `since` before the first stored one, the
    earlier candles are fetched too and prepended. Each page is committed as it arrives,
    so an interrupted download keeps what it stored. `until` (exclusive, default now)
    bounds the open times. A market, timeframe or range the exchange does not have
    raises a PlanarError naming it, and nothing stored changes.
    """
    key = SeriesKey(exchange.id, symbol, timeframe)
    tf = timeframe_ms(timeframe)
    if since is not None and until is not None and until <= since:
        raise DataError(f"{key}: --until {iso(until)} is not after --since {iso(since)}")
    if exchange.timeframes:  # known before loading markets on most exchanges
        check_timeframe(exchange, symbol, timeframe)
    if exchange.markets is None:
        narrow_market_types(exchange, symbol)
        retrying(exchange.load_markets, f"{exchange.id}: loading markets", retries=retries,
                 backoff=backoff, sleep=sleep)
    check_timeframe(exchange, symbol, timeframe)
    check_symbol(exchange, symbol)
    now = int(exchange.milliseconds())
    rules = save_markets(exchange, [symbol], store.root, now)
    end = now if until is None else min(until, now)
    info = store.info(exchange.id, symbol, timeframe)
    before: tuple[int, int] | None = None
    if info is None or info.rows == 0:
        if since is None:
            raise DataError(f"{key}: nothing stored yet, so give a start time "
                            "(--since 2024-01-01, or --since 0 for the whole history)")
        after = (since, end)
    else:
        assert info.first is not None and info.last is not None
        if since is not None and since < info.first:
            before = (since, min(info.first, end))
        after = (max(info.last + tf, since or 0), end)
    total = sum(max(0, hi - lo) // tf for lo, hi in filter(None, (before, after)))
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=total, unit="candle", desc=str(key), disable=not show, file=sys.stderr,
              unit_scale=True, leave=False) as bar:
        job = _Download(exchange, store, key, limit or page_limit(exchange, symbol), retries,
                        backoff, sleep, now, bar)
        try:
            if before is not None:
                pages = list(job.pages(*before))  # prepending rewrites the series: once
                if pages:
                    job.store(concat(*pages))
            for page in job.pages(*after):
                job.store(page)
        except PlanarError as e:
            if job.added:
                raise type(e)(f"{e}; the {job.added} candles stored before this are kept: "
                              "run the same fetch again to resume") from None
            raise
    stored = store.info(exchange.id, symbol, timeframe)
    if stored is None or stored.rows == 0 or (job.added == 0 and not _overlaps(stored, since, end)):
        held = "" if stored is None else f" (stored: {iso(stored.first)} to {iso(stored.last)})"
        raise DataError(f"{key}: the exchange has no candles from {iso(since)} to {iso(end)}"
                        f"{held}; nothing was stored")
    return FetchReport(key, since, end, job.added, job.requests, job.retried,
                       tuple(job.gaps), stored.rows, stored.first, stored.last, rules)


def save_markets(exchange: ccxt.Exchange, symbols: list[str], root: Any, now: int) -> Any:
    """Store the rules (precision, limits, fees, type) of loaded markets `symbols` in the
    data store's markets file of the exchange; the file's path."""
    markets = []
    for sym in symbols:
        check_symbol(exchange, sym)
        try:
            markets.append(Market.from_ccxt(exchange.markets[sym], exchange.precisionMode))
        except PlanarError as e:
            raise DataError(f"{exchange.id} {sym}: its market rules cannot be used: {e}") from None
    try:
        return store_markets(exchange.id, markets, now, root)
    except OSError as e:
        raise DataError(f"cannot write the market rules of {exchange.id} to {root}: "
                        f"{e.strerror or e}; nothing was stored") from None


def _overlaps(info: Any, since: int | None, end: int) -> bool:
    """Whether the stored range meets [since, end): then an empty fetch just means up to date."""
    if since is None:
        return True
    return info.first < end and info.last >= since


__all__ = ["FetchFailed", "FetchReport", "TRANSIENT", "check_symbol", "check_timeframe",
           "fetch_candles", "save_markets",
           "narrow_market_types", "open_exchange", "page_limit", "retrying"]
