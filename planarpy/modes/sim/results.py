"""What a backtest leaves: the equity curve, the trades and the summary figures."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from ...core.orders import Side, Trade


@attrs.frozen(slots=True, eq=False)
class SimResult:
    """A finished backtest. `equity[k]` is the equity at the close of `times[k]`'s candle."""

    strategy: Any
    times: np.ndarray
    equity: np.ndarray
    initial_cash: float
    seed: int

    @property
    def trades(self) -> list[Trade]:
        return self.strategy.state.trades

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.initial_cash

    @property
    def total_return(self) -> float:
        return self.final_equity / self.initial_cash - 1.0

    @property
    def fees(self) -> float:
        return self.strategy.state.fees

    @property
    def max_drawdown(self) -> float:
        """Largest fall from a running peak of equity, as a fraction (0.25 = 25%)."""
        if len(self.equity) == 0:
            return 0.0
        peak = np.maximum.accumulate(np.maximum(self.equity, 1e-300))
        return float(np.max(1.0 - self.equity / peak))

    def round_trips(self) -> list[float]:
        """Profit of each position from flat back to flat, fees included."""
        return round_trips(self.trades, self.strategy)

    @property
    def win_rate(self) -> float:
        trips = self.round_trips()
        return sum(p > 0 for p in trips) / len(trips) if trips else 0.0

    def summary(self) -> dict[str, Any]:
        s = self.strategy
        return {"strategy": type(s).__name__, "quote": s.quote,
                "start": int(self.times[0]) if len(self.times) else None,
                "end": int(self.times[-1]) if len(self.times) else None,
                "candles": len(self.times), "initial_cash": self.initial_cash,
                "final_equity": self.final_equity, "return": self.total_return,
                "trades": len(self.trades), "round_trips": len(self.round_trips()),
                "win_rate": self.win_rate, "max_drawdown": self.max_drawdown,
                "fees": self.fees, "seed": self.seed}

    def format_summary(self) -> str:
        d = self.summary()
        q = d["quote"]
        rows = [
            ("strategy", d["strategy"]),
            ("period", f"{_date(d['start'])} to {_date(d['end'])} ({d['candles']} candles)"),
            ("initial cash", f"{d['initial_cash']:.8g} {q}"),
            ("final equity", f"{d['final_equity']:.8g} {q}"),
            ("return", f"{d['return'] * 100:+.2f}%"),
            ("trades", f"{d['trades']} ({d['round_trips']} round trips)"),
            ("win rate", f"{d['win_rate'] * 100:.1f}%"),
            ("max drawdown", f"{d['max_drawdown'] * 100:.2f}%"),
            ("fees paid", f"{d['fees']:.8g} {q}"),
            ("seed", str(d["seed"])),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _date(ms: int | None) -> str:
    if ms is None:
        return "-"
    return np.datetime_as_string(np.datetime64(ms, "ms"), unit="m").replace("T", " ")


def round_trips(trades: list[Trade], s: Any) -> list[float]:
    held: dict[str, float] = {}
    flow: dict[str, float] = {}
    out = []
    for t in trades:
        step = s.state.assets[t.symbol].market.amount_step
        sign = 1.0 if t.side is Side.BUY else -1.0
        if s.state.assets[t.symbol].market.is_derivative and t.pos.value == "short":
            sign = -sign
        fee = t.fee if t.fee_currency != s.state.assets[t.symbol].market.base else t.fee * t.price
        held[t.symbol] = held.get(t.symbol, 0.0) + sign * t.amount
        flow[t.symbol] = flow.get(t.symbol, 0.0) - (t.cost if t.side is Side.BUY else -t.cost) - fee
        if abs(held[t.symbol]) < step / 2:
            out.append(flow.pop(t.symbol))
            held[t.symbol] = 0.0
    return out


def equity_curve(engine: Any, s: Any, start: int, initial_cash: float) -> np.ndarray:
    """Equity at each candle close from `start`, rebuilt from the state after each fill."""
    n = engine.n
    k = np.arange(start, n)
    ledger = engine.ledger
    eff = np.fromiter((e for e, _, _ in ledger), dtype=np.int64, count=len(ledger))
    j = np.searchsorted(eff, k, side="right")  # 0 means: before any fill
    cash = np.r_[initial_cash, [c for _, c, _ in ledger]][j]
    total = cash.astype(np.float64)
    for a, ai in enumerate(s.assets):
        cols = np.zeros((len(ledger) + 1, 7))
        if ledger:
            cols[1:] = [row[a] for _, _, row in ledger]
        if not cols.any():
            continue  # never held: adds nothing
        bal, la, le, lm, sa, se, sm = (cols[:, c][j] for c in range(7))
        close = np.asarray(ai.ohlcv.close)[start:n]
        cs = ai.market.contract_size
        total += bal * close + lm + (close - le) * la * cs + sm + (se - close) * sa * cs
    return total
