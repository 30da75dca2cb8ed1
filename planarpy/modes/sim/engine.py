"""The backtest engine: candles as plain lists, open-order matching, the loop."""

from __future__ import annotations

import gc
import random
from typing import Any

from ...core.accounting import fill_fee, liquidation_trade
from ...core.instances import AssetInstance
from ...core.orders import Order, OrderStatus, PositionSide, Trade
from .config import SimConfig
from .fills import limit_triggers, volume_fill
from .results import ledger_entry

CHUNK = 1 << 16  # candles between progress updates


class SimClock:
    """Sim time: the close of the candle the strategy last saw (read lazily, no per-candle cost)."""

    __slots__ = ("_s", "_close", "_first")

    def __init__(self, s: Any, close_times: list[int], first_open: int) -> None:
        self._s, self._close, self._first = s, close_times, first_open

    def now(self) -> int:
        i = self._s.i
        return self._close[i] if i >= 0 else self._first

    def now_ns(self) -> int:
        return self.now() * 1_000_000


class SimEngine:
    """What a backtest keeps besides the strategy's state."""

    def __init__(self, s: Any, config: SimConfig, timeline: range | list[int],
                 tf_ms: int) -> None:
        self.s = s
        self.config = config
        self.rng = random.Random(config.seed)
        self.timeline = timeline
        self.close_times = range(timeline.start + tf_ms, timeline.stop + tf_ms, tf_ms) \
            if isinstance(timeline, range) else [t + tf_ms for t in timeline]  # gaps skipped
        self._cols: dict[str, tuple[list[float], ...]] = {}
        self.ids = 0
        self.ledger: list[tuple[int, float, tuple[tuple[float, ...], ...]]] = []

    @property
    def n(self) -> int:
        return len(self.timeline)

    def new_id(self) -> str:
        self.ids += 1
        return f"sim-{self.ids}"

    def cols(self, ai: AssetInstance) -> tuple[list[float], ...]:
        """high, low and volume of `ai` as lists, made when an order first rests.

        Matching reads them every candle, and lists index several times faster than
        numpy arrays from Python; assets that never hold an order never pay for them.
        """
        cols = self._cols.get(ai.symbol)
        if cols is None:
            o = ai.ohlcv
            cols = (o.high.tolist(), o.low.tolist(), o.volume.tolist())
            self._cols[ai.symbol] = cols
        return cols

    def fee_rate(self, ai: AssetInstance, taker: bool) -> float:
        return ai.market.taker if taker else ai.market.maker

    def fillable(self, ai: AssetInstance, amount: float, volume: float) -> float:
        """How much of `amount` the volume cap lets fill now, on the amount step."""
        if not self.config.volume_cap:
            return amount
        return ai.market.floor_amount(volume_fill(amount, volume, self.rng))

    def fill(self, ai: AssetInstance, order: Order, price: float, amount: float, taker: bool,
             effective: int) -> Trade | None:
        """Emit the trade that fills `amount` of `order` at `price`.

        `effective` is the first candle whose close sees the fill (for the equity curve).
        """
        cost = ai.market.value(amount, price)
        fee, currency = fill_fee(ai.market, order.side, amount, cost, self.fee_rate(ai, taker))
        trade = Trade(order_id=order.id, symbol=ai.symbol, side=order.side, pos=order.pos,
                      date=self.s.clock.now(), amount=amount, price=price, cost=cost,
                      fee=fee, fee_currency=currency,
                      leverage=order.leverage, taker=taker, id=f"{order.id}-{len(ai.trades)}")
        applied = self.s.emit("trade_created", trade, ai.symbol).trade
        self.snapshot(effective)
        return applied

    def close_rest(self, ai: AssetInstance, order: Order) -> None:
        """Cancel what is left of an order that may not rest on the book."""
        if order.is_open:
            self.s.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                         "status": OrderStatus.CANCELED.value}, ai.symbol)

    def snapshot(self, effective: int) -> None:
        self.ledger.append(ledger_entry(self.s, effective))

    def match(self, i: int) -> None:
        """Liquidate and fill what candle `i` reaches, for the assets with anything open.

        Runs every candle while anything is open, so it only looks first (no copies, no
        allocation) and copies the containers only for an asset that candle `i` reaches.
        """
        reached = None
        for ai in self.s.state.active.values():
            h, l, _ = self.cols(ai)
            hi, lo = h[i], l[i]
            pos = ai.open_position()
            if pos is not None and ((lo <= pos.liquidation_price) if pos.side is PositionSide.LONG
                                    else (hi >= pos.liquidation_price)):
                reached = (reached or []) + [ai]
                continue
            for order in ai.orders.values():
                if limit_triggers(order.side, order.price, lo, hi):
                    reached = (reached or []) + [ai]
                    break
        if reached:
            for ai in reached:
                self._settle_candle(ai, i)

    def _settle_candle(self, ai: AssetInstance, i: int) -> None:
        h, l, v = self.cols(ai)
        pos = ai.open_position()
        if pos is not None:
            liq = pos.liquidation_price
            if (l[i] <= liq) if pos.side is PositionSide.LONG else (h[i] >= liq):
                self.liquidate(ai, pos.side, i)
        for order in list(ai.orders.values()):
            if order.is_open and limit_triggers(order.side, order.price, l[i], h[i]):
                amount = self.fillable(ai, order.remaining, v[i])
                if amount > 0:
                    self.fill(ai, order, order.price, amount, taker=False, effective=i)

    def liquidate(self, ai: AssetInstance, side: PositionSide, i: int) -> None:
        trade = liquidation_trade(ai, side, self.s.clock.now(), self.new_id())
        self.s.emit("liquidation", trade, ai.symbol)
        self.snapshot(i)

    def run(self, start: int, progress: Any = None) -> None:
        """Step from candle `start` to the end: match open orders, then tick.

        The last candle is only matched: an order placed at its close could not fill.
        """
        # a backtest makes many short-lived objects and almost no cycles: the cyclic GC's
        # rescans cost a fifth of a busy run, so it waits until the run is over
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._loop(start, progress)
        finally:
            if enabled:
                gc.enable()

    def _loop(self, start: int, progress: Any) -> None:
        s = self.s
        tick = s.tick
        active = s.state.active
        match = self.match
        close = self.close_times
        last = self.n - 1
        for lo in range(start, last, CHUNK):
            hi = min(lo + CHUNK, last)
            for i, ts in zip(range(lo, hi), close[lo:hi]):
                if active:
                    match(i)
                s.i = i
                tick(ts)
            if progress is not None:
                progress(min(lo + CHUNK, last) - lo)
        if last >= start:
            if active:
                match(last)
            s.i = last
