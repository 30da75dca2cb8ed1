"""What a backtest leaves: the equity curve, the trades and the statistics.

Everything here runs after the backtest, vectorised over the candles (the round trips
walk the fills, not the candles), so the sim loop pays nothing for it.
"""

from __future__ import annotations

import array
import math
import struct
from typing import TYPE_CHECKING, Any, Iterable

import attrs
import numpy as np

from ...core.accounting import fee_parts
from ...core.display import html_table, iso, num, trading_rows
from ...core.errors import PlanarError
from ...core.orders import PositionSide, Side, Trade
from ...actions.engine import Engine
from ...data.ohlcv import timeframe_ms
from ...params import format_values
from .data import DataUsed

if TYPE_CHECKING:  # for the annotations only: the sim's run and engine use this module
    from ...strategy import Strategy
    from .engine import SimEngine

YEAR_MS = 365 * 86_400_000  # the sim's timeline has every step of every day


class MissingExtra(PlanarError, ImportError):
    """An optional dependency (a planarpy extra such as pandas or matplotlib) is not installed."""


@attrs.frozen(slots=True)
class RoundTrip:
    """A position on one asset from flat back to flat.

    Times are the open times (epoch ms) of the candles whose open the first and last
    fills happened at; prices are amount-weighted averages of the fills that opened and
    closed it; `pnl` is in the quote currency, both fees included.
    """

    symbol: str
    side: str  # "long" or "short" (spot holdings are long)
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    amount: float
    pnl: float
    fees: float
    entry_cost: float  # quote value of the fills that opened it

    @property
    def return_(self) -> float:
        """Profit as a fraction of the value that opened the position."""
        return self.pnl / self.entry_cost if self.entry_cost else 0.0

    @property
    def duration(self) -> int:
        return self.exit_time - self.entry_time


@attrs.frozen(slots=True)
class Stats:
    """Summary figures of a backtest; NaN where a figure is undefined (e.g. no trades).

    Returns are fractions (0.25 = 25%). Volatility, Sharpe and Sortino are annualised
    from the candle returns of the equity (365-day years, risk-free rate 0);
    `max_drawdown_duration` is the longest time (ms) from an equity peak back to it (or
    to the end); `exposure` the share of candles closing with a holding or position and
    `exposure_time` their time (ms). `buy_and_hold` is the return of holding the universe
    in equal parts from the first close to the last (fees aside). `partial_fills` is the
    share of the orders placed that ended (or are still open) partly filled.
    """

    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration: int
    win_rate: float
    profit_factor: float
    exposure: float
    fees: float
    trades: int
    round_trips: int
    buy_and_hold: float
    exposure_time: int
    orders: int
    partial_fills: float

    def rows(self) -> list[tuple[str, str]]:
        """(name, shown value): fractions as percentages, durations in days and hours."""
        pct = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure",
               "buy_and_hold", "partial_fills"}
        out = []
        for f in attrs.fields(Stats):
            v = getattr(self, f.name)
            shown = (_pct(_finite(v)) if f.name in pct else
                     _span(v) if f.name in ("max_drawdown_duration", "exposure_time") else
                     str(v) if isinstance(v, int) else _num(_finite(v)) if f.name != "fees"
                     else num(v))
            out.append((f.name.replace("_", " "), shown))
        return out

    def __repr__(self) -> str:
        return (f"<Stats return {_pct(_finite(self.total_return), '+')}, sharpe "
                f"{_num(_finite(self.sharpe))}, max drawdown {_pct(_finite(self.max_drawdown))}, "
                f"{self.trades} trades>")

    def _repr_html_(self) -> str:
        return html_table("Stats", self.rows())


@attrs.frozen(slots=True, eq=False)
class SimResult:
    """A finished backtest. `equity[k]` is the equity at the close of `times[k]`'s candle."""

    strategy: Any
    times: np.ndarray
    equity: np.ndarray
    initial_cash: float
    seed: int
    data: DataUsed = attrs.Factory(lambda: DataUsed())

    @property
    def trades(self) -> list[Trade]:
        return self.strategy.engine.state.trades

    @property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.strategy.timeframe)

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.initial_cash

    @property
    def total_return(self) -> float:
        return self.final_equity / self.initial_cash - 1.0

    @property
    def fees(self) -> float:
        return self.strategy.engine.state.fees

    @property
    def max_drawdown(self) -> float:
        """Largest fall from a running peak of equity, as a fraction (0.25 = 25%)."""
        dd = drawdown(self.equity)
        return float(dd.max()) if len(dd) else 0.0

    def round_trips(self) -> list[RoundTrip]:
        """Each position from flat back to flat, in the order they closed."""
        return walk_trades(self.trades, self.strategy)[0]

    @property
    def win_rate(self) -> float:
        """Share of round trips that made money (0 without any)."""
        trips = self.round_trips()
        return sum(t.pnl > 0 for t in trips) / len(trips) if trips else 0.0

    def exposure(self) -> float:
        """Share of candles that close with a holding or an open position."""
        trips, still_open = walk_trades(self.trades, self.strategy)
        return exposure(self.times, trips, still_open.values())

    def stats(self) -> Stats:
        """Every summary figure, computed after the run from the equity curve and the fills."""
        trips, still_open = walk_trades(self.trades, self.strategy)
        pnls = np.array([t.pnl for t in trips])
        r = candle_returns(self.equity)
        per_year = YEAR_MS / self.timeframe_ms
        span = int(self.times[-1]) - int(self.times[0]) if len(self.times) > 1 else 0
        if self.data.gaps == "skip" and span > 0:  # a year holds as many steps as the data
            per_year = (len(self.times) - 1) / (span / YEAR_MS)
        years = (len(self.equity) - 1) / per_year
        wins = pnls[pnls > 0]
        held = exposure(self.times, trips, still_open.values())
        orders, partial = self.order_fills()
        return Stats(
            total_return=self.total_return,
            cagr=cagr(self.total_return, years),
            volatility=float(r.std(ddof=1) * math.sqrt(per_year)) if len(r) > 1 else math.nan,
            sharpe=sharpe(r, per_year),
            sortino=sortino(r, per_year),
            max_drawdown=self.max_drawdown,
            max_drawdown_duration=max_drawdown_candles(self.equity) * self.timeframe_ms,
            win_rate=len(wins) / len(pnls) if len(pnls) else math.nan,
            profit_factor=profit_factor(pnls),
            exposure=held,
            fees=self.fees,
            trades=len(self.trades),
            round_trips=len(trips),
            buy_and_hold=float(self.buy_and_hold()[-1] / self.initial_cash - 1.0)
            if len(self.times) else math.nan,
            exposure_time=round(held * len(self.times)) * self.timeframe_ms,
            orders=orders,
            partial_fills=partial / orders if orders else math.nan)

    def buy_and_hold(self) -> np.ndarray:
        """Equity of putting the initial cash into the universe in equal parts at the first
        close of `times` and holding it (no fees), at each close of `times`."""
        growth = np.zeros(len(self.times))
        for ai in self.strategy.assets:
            close = np.asarray(ai.ohlcv.close, dtype=np.float64)
            ts, times = ai.ohlcv.timestamp, self.times
            off = len(ts) - len(times)
            if len(times) and off >= 0 and np.array_equal(ts[off:], times):
                k = slice(off, None)  # the candles end with the times (as aligned): no search
                growth += close[k] / close[off]
                continue
            k = np.searchsorted(ts, times)
            growth += close[k] / close[k[0]] if len(k) else 0.0
        return self.initial_cash * growth / max(len(self.strategy.assets), 1)

    def order_fills(self) -> tuple[int, int]:
        """Orders placed, and how many of them ended (or stay open) partly filled."""
        st = self.strategy.engine.state
        still = sum(1 for o in st.open_orders() if 0 < o.filled < o.amount)
        return st.orders_placed, st.orders_partial + still

    def entry_fills(self) -> tuple[int, list[float]]:
        """Entries (orders that opened or added to a position) with a fill, and the filled
        share of each that ended (or stays open) only partly filled."""
        st = self.strategy.engine.state
        grows = {t.order_id for t in self.trades if _grows(t, st.assets[t.symbol].market)}
        still = [o.filled / o.amount for o in st.open_orders()
                 if o.commits_quote and 0 < o.filled < o.amount]
        return len(grows), [*st.entries_partial, *still]

    def summary(self) -> dict[str, Any]:
        """Plain figures for printing or JSON; undefined ones (NaN, infinite) are None."""
        s = self.strategy
        st = attrs.asdict(self.stats())
        risk = s.engine.state.risk
        return {"strategy": type(s).__name__, "quote": s.quote,
                "start": int(self.times[0]) if len(self.times) else None,
                "end": int(self.times[-1]) if len(self.times) else None,
                "candles": len(self.times), "initial_cash": self.initial_cash,
                **self._entries(), "data": self.data.to_dict(),
                "final_equity": self.final_equity, "return": st.pop("total_return"),
                **{k: _finite(v) for k, v in st.items()}, "seed": self.seed,
                "params": dict(s.params),
                "risk_rules": risk.rules.in_force(),
                "trading": risk.trading.value, "risk_denied": risk.denied,
                "risk_denied_leverage": risk.denied_leverage,
                "trading_changes": [dict(c) for c in risk.changes]}

    def format_summary(self) -> str:
        rows = self.summary_rows()
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def __repr__(self) -> str:
        d = self.summary()
        return (f"<SimResult {d['strategy']} {iso(d['start'])} to {iso(d['end'])}: "
                f"return {_pct(d['return'], '+')}, final equity {d['final_equity']:.8g} "
                f"{d['quote']}, {d['trades']} trades>")

    def _repr_html_(self) -> str:
        """The summary, then the round trips (the first and last 10 of a long list)."""
        trips = self.round_trips()
        shown = trips if len(trips) <= 20 else trips[:10] + trips[-10:]
        return html_table(f"Backtest of {type(self.strategy).__name__}", self.summary_rows(),
                          self._trip_rows(shown) if trips else None)

    def summary_rows(self) -> list[tuple[str, str]]:
        """The summary as (name, shown value) rows: what `format_summary` prints."""
        d = self.summary()
        q = d["quote"]
        rows = [
            ("strategy", d["strategy"]),
            ("period", f"{_date(d['start'])} to {_date(d['end'])} ({d['candles']} candles)"),
            *self.data.rows(_date),
            ("initial cash", f"{d['initial_cash']:.8g} {q}"),
            ("final equity", f"{d['final_equity']:.8g} {q}"),
            ("return", f"{_pct(d['return'], '+')} (CAGR {_pct(d['cagr'], '+')})"),
            ("volatility", f"{_pct(d['volatility'])} a year"),
            ("sharpe/sortino", f"{_num(d['sharpe'])} / {_num(d['sortino'])}"),
            ("max drawdown",
             f"{_pct(d['max_drawdown'])} (longest {_span(d['max_drawdown_duration'])})"),
            ("trades", f"{d['trades']} ({d['round_trips']} round trips)"),
            ("win rate", f"{_pct(d['win_rate'])} (profit factor {_num(d['profit_factor'])})"),
            ("buy and hold", _pct(d["buy_and_hold"], "+")),
            ("exposure", f"{_pct(d['exposure'])} of the time ({_span(d['exposure_time'])})"),
            ("partial fills", f"{_pct(d['partial_fills'])} of {d['orders']} orders"),
            ("entries", _entries_text(d)),
            ("fees paid", f"{d['fees']:.8g} {q}"),
            *trading_rows(d["risk_rules"], d["trading_changes"], d["risk_denied"], _date,
                          d["risk_denied_leverage"]),
            ("seed", str(d["seed"])),
        ]
        if d["params"]:
            rows.append(("params", format_values(d["params"])))
        return rows

    def _entries(self) -> dict[str, Any]:
        entries, partial = self.entry_fills()
        return {"entries": entries, "partial_entries": len(partial),
                "least_entry_fill": min(partial) if partial else None}

    def format_trades(self) -> str:
        """The round trips as a table, one line each (times UTC, pnl and fees in quote)."""
        trips = self.round_trips()
        if not trips:
            return "no round trips"
        rows = self._trip_rows(trips)
        head = rows[0]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join("  ".join(v.rjust(w) if i >= 4 else v.ljust(w)
                                   for i, (v, w) in enumerate(zip(r, widths))).rstrip()
                         for r in rows)

    def _trip_rows(self, trips: list[RoundTrip]) -> list[tuple[str, ...]]:
        """A header, then one row of shown values per round trip (prices at the tick)."""
        q = self.strategy.quote
        steps = {ai.symbol: (ai.market.price_step, ai.market.amount_step)
                 for ai in self.strategy.assets}
        head = ("symbol", "side", "entry", "exit", "entry price", "exit price", "amount",
                f"pnl {q}", "return", f"fees {q}")
        return [head] + [(t.symbol, t.side, _date(t.entry_time), _date(t.exit_time),
                          num(t.entry_price), num(t.exit_price),
                          num(t.amount, steps.get(t.symbol, (None, None))[1]),
                          f"{t.pnl:+.8g}", _pct(t.return_, "+"), f"{t.fees:.6g}")
                         for t in trips]

    # ---- pandas views (the optional `pandas` extra) ----------------------------------
    def equity_frame(self) -> Any:
        """Equity and drawdown at each candle's close, indexed by the candle's open time (UTC)."""
        pd = _pandas()
        index = pd.DatetimeIndex(pd.to_datetime(self.times, unit="ms", utc=True), name="time")
        return pd.DataFrame({"equity": self.equity, "drawdown": drawdown(self.equity)}, index=index)

    def trades_frame(self) -> Any:
        """One row per round trip (see RoundTrip), times as UTC datetimes."""
        pd = _pandas()
        trips = self.round_trips()
        cols = [f.name for f in attrs.fields(RoundTrip)]
        df = pd.DataFrame([attrs.astuple(t) for t in trips], columns=cols)
        df["return"] = [t.return_ for t in trips]
        for c in ("entry_time", "exit_time"):
            df[c] = pd.to_datetime(df[c].astype("int64"), unit="ms", utc=True)
        df["duration"] = df["exit_time"] - df["entry_time"]
        return df

    def fills_frame(self) -> Any:
        """One row per fill (Trade), in the order they happened."""
        pd = _pandas()
        cols = [f.name for f in attrs.fields(Trade)]
        df = pd.DataFrame([attrs.astuple(t) for t in self.trades], columns=cols)
        for c in ("side", "pos"):
            df[c] = [v.value for v in df[c]]
        df["date"] = pd.to_datetime(df["date"].astype("int64"), unit="ms", utc=True)
        return df

    def to_frames(self) -> dict[str, Any]:
        """The equity, round-trip and fill tables as pandas DataFrames."""
        return {"equity": self.equity_frame(), "trades": self.trades_frame(),
                "fills": self.fills_frame()}


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingExtra("result tables need pandas: pip install planarpy[pandas]") from None
    return pandas


# ---- statistics: pure functions of arrays -----------------------------------------------
def candle_returns(equity: np.ndarray) -> np.ndarray:
    """Simple return of each candle's equity over the previous one (0 after a wipe-out)."""
    e = np.asarray(equity, dtype=np.float64)
    prev = e[:-1]
    return np.divide(e[1:] - prev, prev, out=np.zeros(len(prev)), where=prev > 0)


def cagr(total_return: float, years: float) -> float:
    """Compound annual growth rate of `total_return` earned over `years`."""
    if years <= 0:
        return math.nan
    growth = 1.0 + total_return
    if growth <= 0:
        return -1.0
    try:
        return growth ** (1.0 / years) - 1.0
    except OverflowError:  # a gain over minutes, compounded over a year
        return math.inf


def sharpe(returns: np.ndarray, per_year: float) -> float:
    """Annualised mean over standard deviation of the returns (risk-free rate 0)."""
    if len(returns) < 2:
        return math.nan
    sd = returns.std(ddof=1)
    return float(returns.mean() / sd * math.sqrt(per_year)) if sd > 0 else math.nan


def sortino(returns: np.ndarray, per_year: float) -> float:
    """Annualised mean over downside deviation (root mean square of the losses)."""
    if len(returns) < 2:
        return math.nan
    down = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return float(returns.mean() / down * math.sqrt(per_year)) if down > 0 else math.nan


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Fall of each equity value below the running peak, as a fraction of the peak."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) == 0:
        return e
    peak = np.maximum.accumulate(e)
    return np.divide(peak - e, peak, out=np.zeros(len(e)), where=peak > 0)


def max_drawdown_candles(equity: np.ndarray) -> int:
    """Most candles from an equity peak to the first close back at it (or to the end)."""
    e = np.asarray(equity, dtype=np.float64)
    n = len(e)
    if n == 0:
        return 0
    k = np.arange(n)
    at_peak = e >= np.maximum.accumulate(e)
    last_peak = np.maximum.accumulate(np.where(at_peak, k, 0))
    # first candle at a peak from k on (the end if none): where each fall is recovered
    recovered = np.minimum.accumulate(np.where(at_peak, k, n - 1)[::-1])[::-1]
    under = ~at_peak
    return int((recovered[under] - last_peak[under]).max()) if under.any() else 0


def profit_factor(pnls: np.ndarray) -> float:
    """Gross profit over gross loss of the round trips (inf without a loss)."""
    gain = float(pnls[pnls > 0].sum())
    loss = -float(pnls[pnls < 0].sum())
    if loss > 0:
        return gain / loss
    return math.inf if gain > 0 else math.nan


def exposure(times: np.ndarray, trips: list[RoundTrip], open_since: Iterable[int]) -> float:
    """Share of the candles in `times` that close while some position is held.

    A position entered at the open of candle k and left at the open of candle m is
    held at the closes of k .. m-1.
    """
    n = len(times)
    if n == 0:
        return 0.0
    starts = [t.entry_time for t in trips] + list(open_since)
    ends = [t.exit_time for t in trips]
    held = np.zeros(n + 1, dtype=np.int64)
    np.add.at(held, np.searchsorted(times, np.asarray(starts, dtype=np.int64)), 1)
    np.add.at(held, np.searchsorted(times, np.asarray(ends, dtype=np.int64)), -1)
    return float(np.count_nonzero(np.cumsum(held[:n]) > 0) / n)


# ---- trades and equity --------------------------------------------------------------------
@attrs.define(slots=True)
class _Open:
    side: str
    entry_time: int
    held: float = 0.0
    opened: float = 0.0
    entry_price: float = 0.0
    closed: float = 0.0
    exit_price: float = math.nan
    flow: float = 0.0
    fees: float = 0.0
    entry_cost: float = 0.0


def walk_trades(trades: list[Trade], s: Strategy) -> tuple[list[RoundTrip], dict[str, int]]:
    """Group fills into round trips; also the entry time of each position still open."""
    open_: dict[str, _Open] = {}
    out = []
    state = s.engine.state
    markets = {sym: ai.market for sym, ai in state.assets.items()}
    buy, short_side = Side.BUY, PositionSide.SHORT
    for t in trades:
        m = markets[t.symbol]
        short = m.is_derivative and t.pos is short_side
        grows = (t.side is buy) != short
        fee_base, _, fee = fee_parts(state, m, t)
        p = open_.get(t.symbol)
        if p is None:
            p = open_[t.symbol] = _Open("short" if short else "long", t.date)
        if grows:
            p.held += t.amount - fee_base
            p.opened += t.amount
            p.entry_price = _mean(p.entry_price, t.price, t.amount, p.opened)
            p.entry_cost += t.cost
        else:
            p.held -= t.amount + fee_base
            p.closed += t.amount
            p.exit_price = _mean(p.exit_price, t.price, t.amount, p.closed)
        p.flow += (-t.cost if t.side is buy else t.cost) - fee
        p.fees += fee
        # flat: what is left is less than one amount step, which no order can sell (the
        # dust a fee taken in the base leaves), or float residue of a full close
        if abs(p.held) < m.amount_step * (1 - 1e-9):
            del open_[t.symbol]
            out.append(RoundTrip(
                symbol=t.symbol, side=p.side, entry_time=p.entry_time, exit_time=t.date,
                entry_price=p.entry_price, exit_price=p.exit_price,
                amount=p.opened, pnl=p.flow, fees=p.fees, entry_cost=p.entry_cost))
    return out, {sym: p.entry_time for sym, p in open_.items()}


def _mean(mean: float, price: float, amount: float, total: float) -> float:
    """Amount-weighted running mean; exactly `price` while every price so far is equal."""
    if amount >= total:
        return price
    return mean + (price - mean) * (amount / total)


def round_trips(trades: list[Trade], s: Strategy) -> list[RoundTrip]:
    """Each position from flat back to flat (positions still open are left out)."""
    return walk_trades(trades, s)[0]


class Ledger:
    """The state after each fill, as `equity_curve` reads it: from candle `at[k]` on, the
    cash and each asset's balance and long and short (amount, entry price, margin), flat
    in typed arrays (no objects kept per fill; numpy reads them without a copy)."""

    __slots__ = ("at", "values", "width", "_pack")

    def __init__(self, assets: int) -> None:
        self.at = array.array("q")
        self.values = array.array("d")
        self.width = 1 + 7 * assets
        # a row packed at once: array.extend converts item by item (a parse call each)
        self._pack = struct.Struct(f"{self.width}d").pack

    def add(self, e: Engine, effective: int) -> None:
        """Note the state of a strategy's engine `e` after a fill that counts from candle
        `effective`."""
        self.at.append(effective)
        row = [e.state.cash]
        for ai in e.assets:
            lo, sh = ai.long, ai.short
            row += (ai.balance, lo.amount, lo.entry_price, lo.margin,
                    sh.amount, sh.entry_price, sh.margin)
        self.values.frombytes(self._pack(*row))

    def __len__(self) -> int:
        return len(self.at)


def _fills_before(eff: np.ndarray, start: int, n: int) -> np.ndarray:
    """For each candle c in [start, n): how many fills count from candle c or earlier, as
    np.searchsorted(eff, c, side="right") says for the sorted `eff`, in one counting pass
    instead of a binary search per candle."""
    first, stop = np.searchsorted(eff, (start, n), side="left")
    counts = np.bincount(eff[first:stop] - start, minlength=n - start)
    np.cumsum(counts, out=counts)  # in place: one array of n, as at the peak of a run
    counts += first
    return counts


def equity_curve(engine: SimEngine, s: Strategy, start: int, initial_cash: float) -> np.ndarray:
    """Equity at each candle close from `start`, rebuilt from the state after each fill.

    Between two fills the equity is linear in each asset's close: a constant (cash,
    margins, entry values) plus a quantity (balance, long minus short) times the close.
    Computed in chunks of candles, so that besides the curve only a chunk's temporaries
    are alive (the curve is made at a run's peak of memory).
    """
    n, ledger = engine.n, engine.ledger
    eff = np.frombuffer(ledger.at, dtype=np.int64)
    count = len(eff)
    flat = np.frombuffer(ledger.values, dtype=np.float64).reshape(count, ledger.width)
    const = np.r_[initial_cash, flat[:, 0]]
    qtys = []
    if count:
        rows = flat[:, 1:].reshape(count, len(s.assets), 7)  # fills x assets x 7
        for a, ai in enumerate(s.assets):
            bal, la, le, lm, sa, se, sm = rows[:, a, :].T
            cs = ai.market.contract_size
            const[1:] += lm - le * la * cs + sm + se * sa * cs
            qty = np.r_[0.0, bal + (la - sa) * cs]
            if qty.any():
                qtys.append((qty, np.asarray(ai.ohlcv.close)))
    out = np.empty(max(n - start, 0))
    for lo in range(start, n, _CURVE_CHUNK):
        hi = min(lo + _CURVE_CHUNK, n)
        j = _fills_before(eff, lo, hi)  # 0 means: before any fill
        total = None
        for qty, close in qtys:
            held = qty[j] * close[lo:hi]
            total = held if total is None else total + held
        out[lo - start:hi - start] = const[j] if total is None else const[j] + total
    return out


_CURVE_CHUNK = 1 << 16  # candles of the equity curve computed at once


# ---- formatting -----------------------------------------------------------------------------
def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _grows(t: Trade, m: Any) -> bool:
    """Whether fill `t` opened or added to a position (a buy, or a short's sell)."""
    return (t.side is Side.BUY) != (m.is_derivative and t.pos is PositionSide.SHORT)


def _entries_text(d: dict[str, Any]) -> str:
    n, partial = d["entries"], d["partial_entries"]
    if not partial:
        return f"{n} filled, all in full" if n else "none"
    return (f"{n} filled, {partial} of them only partly (the least to "
            f"{_pct(d['least_entry_fill'])})")


def _date(ms: int | None) -> str:
    if ms is None:
        return "-"
    return np.datetime_as_string(np.datetime64(ms, "ms"), unit="m").replace("T", " ")


def _pct(v: float | None, sign: str = "") -> str:
    return "-" if v is None else f"{v * 100:{sign}.2f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _span(ms: int | None) -> str:
    """A duration in its two largest units: '3d 4h', '2h 5m', '45m'."""
    minutes = int(ms or 0) // 60_000
    units = ((minutes // 1440, "d"), (minutes // 60 % 24, "h"), (minutes % 60, "m"))
    return " ".join([f"{v}{u}" for v, u in units if v][:2]) or "0m"
