"""Builders for sim tests: hand-made markets and candles, and scripted strategies."""

from __future__ import annotations

import math

import attrs
import pytest

from typing import Any, Callable, Sequence

import numpy as np

from planarpy import OHLCV, Market, Strategy, backtest
from planarpy.modes.sim import SimConfig

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
MINUTE = 60_000

SPOT = Market(symbol="TST/USD", id="TSTUSD", base="TST", quote="USD", settle=None, kind="spot",
              amount_step=0.01, price_step=0.01, min_amount=0.01, min_cost=1.0,
              maker=0.001, taker=0.002)
PERP = Market(symbol="TST/USD:USD", id="TSTUSDP", base="TST", quote="USD", settle="USD",
              kind="swap", amount_step=0.1, price_step=0.01, min_amount=0.1, min_cost=5.0,
              maker=0.0002, taker=0.0004, max_leverage=20.0, maintenance_margin_rate=0.005)


def candles(rows: Sequence[Sequence[float]], t0: int = T0, step: int = MINUTE) -> OHLCV:
    """Candles from rows of (open, high, low, close, volume), one minute apart."""
    a = np.asarray(rows, dtype=np.float64)
    ts = t0 + step * np.arange(len(a), dtype=np.int64)
    return OHLCV(ts, *(np.ascontiguousarray(a[:, k]) for k in range(5)))


def flat(n: int, price: float = 100.0, volume: float = 1e6) -> list[tuple[float, ...]]:
    return [(price, price, price, price, volume)] * n


Script = dict[int, Callable[[Any], Any]]


def scripted(script: Script, market: Market = SPOT, cash: float = 1000.0,
             margin: str = "none", **attrs_: Any) -> type[Strategy]:
    """A strategy class that runs `script[i](self)` at the tick of candle i and keeps results."""
    def tick(self: Any, ts: int) -> None:
        self.seen.append((self.i, ts))
        action = script.get(self.i)
        if action is not None:
            self.results[self.i] = action(self)

    def reset(self: Any) -> None:
        self.seen, self.results, self.errors, self.risk_events = [], {}, [], []

    def on_order_error(self: Any, ai: Any, reason: str, request: Any) -> None:
        self.errors.append(reason)

    def on_risk(self: Any, event: Any) -> None:
        self.risk_events.append(event)

    body = {"exchange": "test", "quote": market.quote if not market.is_derivative else market.settle,
            "timeframe": "1m", "margin": margin, "universe": (market.symbol,),
            "initial_cash": cash, "tick": tick, "reset": reset, "on_order_error": on_order_error,
            "on_risk": on_risk}
    body.update(attrs_)
    return type("Scripted", (Strategy,), body)


def run(script: Script, rows: Sequence[Sequence[float]], market: Market = SPOT,
        cash: float = 1000.0, config: SimConfig = SimConfig(slippage=0.0, volume_cap=False),
        margin: str | None = None, recorder: Any = None, risk: Any = None,
        **methods: Any) -> Any:
    """Backtest a scripted strategy on `rows`; `methods` override its callbacks, `risk`
    gives its risk rules (RiskRules or a [risk]-shaped table)."""
    cls = scripted(script, market, cash, margin or ("isolated" if market.is_derivative else "none"),
                   **methods)
    s = cls({market.symbol: market})
    if methods:  # the test's callbacks collect what they see: the tick check would rerun them
        config = attrs.evolve(config, check_lookahead=False)
    return backtest(s, data={market.symbol: candles(rows)}, config=config, settings={},
                    recorder=recorder, risk=risk)


def walk(steps: Sequence[float]) -> list[tuple[float, ...]]:
    """Candles of a walk starting at 100 (open = previous close), one return per step."""
    rows, close = [], 100.0
    for r in steps:
        o, close = close, round(max(close * (1 + r), 1.0), 2)
        rows.append((o, max(o, close) * 1.002, min(o, close) * 0.998, close, 50.0))
    return rows


def decides_as_measuring_every_close(go: Callable[[], Any]) -> None:
    """`go()` (a run's risk changes and trades) is the same with the loss breakers' band
    (sim/guard.py) as when every close is measured (a band that no close lies inside)."""
    from planarpy.modes.sim import guard
    banded = go()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(guard, "price_band", lambda bounds, k, q: (math.inf, -math.inf))
        mp.setattr(guard, "flat_band", lambda risk, k: (math.inf, -math.inf))
        assert go() == banded
