"""One strategy in sim, paper and live over one local-exchange replay: the strategy, the
candles and the exchange that tests/fidelity and bench/fidelity.py share."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from planarpy import OHLCV, Strategy, Trade, backtest, call
from planarpy.data.sources import markets_for
from planarpy.exchanges import ApiKeys
from planarpy.indicators import crossings, sma
from planarpy.localexchange import AccountSpec, LocalExchange
from planarpy.localexchange.replay import from_candles
from planarpy.modes.live import start_live
from planarpy.modes.paper import start_paper
from planarpy.modes.sim import SimConfig

from livekit import eventually

SYM = "XRP/ETH"
MINUTE = 60_000
HOUR = 3_600_000
T0 = 472_223 * HOUR  # on the hour: a replay whose data starts here is not shifted


class Cross(Strategy):
    """SMA(5/15) cross on XRP/ETH one-minute candles: buys a fixed `stake` of XRP when the
    fast mean crosses above the slow one and it holds less than the minimum amount, sells
    all it holds when it crosses below. A fixed stake keeps each decision's amount free of
    what earlier fills cost, so runs filled at different prices still decide alike.

    Records every tick (close time, index, candle, indicator values) in `seen` and every
    order in `decisions` (close time, side, amount, order id or None if refused).
    """

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SYM,)
    initial_cash = 1.0
    fast, slow = 5, 15
    warmup = 15
    lookback = 16  # the cross at i reads both means at i and i - 1
    stake = 100.0

    def indicators(self, ai: Any) -> dict[str, np.ndarray]:
        close = ai.ohlcv.close
        f, s = sma(close, self.fast), sma(close, self.slow)
        return {"fast": f, "slow": s, "cross": crossings(f, s)}

    def reset(self) -> None:
        self.seen: list[tuple] = []
        self.decisions: list[tuple] = []
        self.errors: list[str] = []

    def on_order_error(self, ai: Any, reason: str, request: Any) -> None:
        self.errors.append(reason)

    def tick(self, ts: int) -> None:
        ai, i = self.assets[0], self.i
        o, ind = ai.ohlcv, ai.ind
        self.seen.append((ts, i, int(o.timestamp[i]), o.open.item(i), o.high.item(i),
                          o.low.item(i), o.close.item(i), o.volume.item(i),
                          ind["fast"][i], ind["slow"][i], ind["cross"][i]))
        cross = ind["cross"][i]
        if cross > 0 and ai.free_balance < ai.market.min_amount:
            self.decide(ts, "buy", self.stake)
        elif cross < 0 and ai.free_balance >= ai.market.min_amount:
            self.decide(ts, "sell", ai.floor_amount(ai.free_balance))

    def decide(self, ts: int, side: str, amount: float) -> None:
        out = call(self, "market_order", self.assets[0], amount, side=side)
        self.decisions.append((ts, side, amount, out.order_id if isinstance(out, Trade) else None))


def walk(n: int, t0: int, gaps: tuple[int, ...] = (), seed: int = 1) -> OHLCV:
    """`n` one-minute XRP/ETH-like candles from `t0` on the 1e-8 price grid, without the
    candles at indexes `gaps` (minutes in which nothing traded)."""
    rng = np.random.default_rng(seed)
    close = np.round(0.0015 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 8)
    open_ = np.r_[close[0], close[:-1]]
    spread = np.round(np.abs(rng.normal(0, 2e-6, n)), 8)
    high = np.round(np.maximum(open_, close) + spread, 8)
    low = np.round(np.minimum(open_, close) - spread, 8)
    volume = np.round(rng.uniform(400, 4000, n))
    keep = np.ones(n, dtype=bool)
    keep[list(gaps)] = False
    ts = t0 + MINUTE * np.arange(n, dtype=np.int64)
    return OHLCV(ts[keep], open_[keep], high[keep], low[keep], close[keep], volume[keep])


def exchange(data: Any, clock: Any, origin: int, cash: float = 1.0,
             factory: Callable[..., LocalExchange] = LocalExchange) -> LocalExchange:
    """A local exchange with the XRP/ETH market replaying `data` (candles, four trades
    each, or a trades CSV), its clock starting at data time `origin`, and one account
    holding `cash` ETH and no XRP."""
    market = markets_for("binance", {})[SYM]
    account = AccountSpec(spot={"ETH": repr(float(cash)), "XRP": "0"})
    feed = from_candles(data) if isinstance(data, OHLCV) else data
    return factory(markets=[market], data={SYM: feed}, clock=clock, origin=origin,
                   accounts=[account])


def run_live(lx: LocalExchange, cls: type[Strategy], **options: Any) -> Any:
    """`cls` live on `lx`, on `lx`'s own clock unless `clock` says otherwise."""
    options.setdefault("clock", lx.clock)
    options.setdefault("trace", None)
    options.setdefault("settings", {"exchanges": {cls.exchange: {"rate_limit": False}}})
    return start_live(cls, exchange_url=lx.url, keys=ApiKeys(lx.api_key, lx.secret), **options)


def run_paper(lx: LocalExchange, cls: type[Strategy], **options: Any) -> Any:
    options.setdefault("clock", lx.clock)
    options.setdefault("trace", None)
    options.setdefault("settings", {"exchanges": {cls.exchange: {"rate_limit": False}}})
    return start_paper(cls, exchange_url=lx.url, **options)


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """`eventually`, looking every 5 ms (ticks follow a step quickly)."""
    return eventually(check, timeout, every=0.005)


def step_minutes(lx: LocalExchange, run: Any, minutes: int, timeout: float = 10.0) -> None:
    """Step `lx`'s clock one minute at a time, each time waiting until `run` has ticked
    the candle that closed (the tick returned)."""
    session = run.session
    for _ in range(minutes):
        n = session.ticks
        lx.step(MINUTE)
        wait_for(lambda: session.ticks > n, timeout)


# four hours of candles around T0, where the exchange's clock starts: minutes 123, 124
# (two in a row) and 131 have no trade, as has minute 100 in the history before the start
GAPS = (100, 123, 124, 131)
CANDLES = walk(240, T0 - 120 * MINUTE, GAPS)
EMPTY = [T0 + (g - 120) * MINUTE for g in GAPS[1:]]  # open times of the empty minutes


class Memory:
    """A recorder that keeps (kind, payload) in memory."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def record(self, kind: str, payload: Any, symbol: Any = None, ts: Any = None) -> None:
        self.events.append((kind, payload))

    def kinds(self, kind: str) -> list[Any]:
        return [p for k, p in self.events if k == kind]

    def close(self) -> None:
        pass


def sim_ticks(cls: type = Cross) -> dict[int, tuple]:
    """What a backtest of `cls` over CANDLES saw at each close: candle and indicator values
    (without the index, which counts from each run's first candle)."""
    r = backtest(cls, data={"XRP/ETH": CANDLES}, settings={},
                 config=SimConfig(slippage=0.0, volume_cap=False))
    return {x[0]: x[:1] + x[2:] for x in r.strategy.seen}
