"""The backtest engine: candles as plain lists, open-order matching, the loop."""

from __future__ import annotations

import gc
import random
from array import array
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ...core.accounting import liquidation_trade, new_trade, reducible, shortfall
from ...core.instances import AssetInstance
from ...core.orders import (CONDITIONAL, LIMIT_AFTER_TRIGGER, Order, OrderStatus, OrderType,
                            PositionSide, Trade)
from ...core.precision import floor_fill
from ...core.triggers import marketable, passed, reached, trail_to
from .config import SimConfig
from .fills import limit_triggers, volume_fill
from .triggers import fill_price, may_trail, meets, rank, waits
from .guard import EquityGuard, day_starts
from .results import Ledger

if TYPE_CHECKING:  # a backtest runs a strategy: imported for the annotations only
    from ...strategy import Strategy

CHUNK = 1 << 16  # candles between progress updates
_OPEN = OrderStatus.OPEN
_LIMIT = OrderType.LIMIT
_TRAIL = OrderType.TRAILING_STOP
_LONG = PositionSide.LONG


def _reaches(order: Order, low: float, high: float) -> bool:
    """Whether a candle must look at a conditional order: it may fire, it has a rest to
    fill, or its trailing stop may move (a candle that does none of these costs only
    this look)."""
    if order.triggered:  # a stop-limit acts as a limit, a stop-market fills its rest
        return limit_triggers(order.side, order.price, low, high) \
            if order.type in LIMIT_AFTER_TRIGGER else True
    return reached(order, low, high) or order.type is _TRAIL and may_trail(order, low, high)


class SimClock:
    """Sim time: the close of the candle the strategy last saw (read lazily, no per-candle cost)."""

    __slots__ = ("_s", "_close", "_first")

    def __init__(self, s: Strategy, close_times: Sequence[int], first_open: int) -> None:
        self._s, self._close, self._first = s, close_times, first_open

    def now(self) -> int:
        i = self._s.i
        return self._close[i] if i >= 0 else self._first

    def now_ns(self) -> int:
        return self.now() * 1_000_000


class SimEngine:
    """What a backtest keeps besides the strategy's state."""

    def __init__(self, s: Strategy, config: SimConfig, timeline: range | list[int],
                 tf_ms: int) -> None:
        self.s = s  # the strategy: its tick, its candle index `i`
        self.e = s.engine  # its engine side: state, clock, emit
        self.config = config
        self.volume_cap = config.volume_cap  # read on every order
        self.rng = random.Random(config.seed)
        self.timeline = timeline
        self.close_times = range(timeline.start + tf_ms, timeline.stop + tf_ms, tf_ms) \
            if isinstance(timeline, range) else [t + tf_ms for t in timeline]  # gaps skipped
        self._cols: dict[str, tuple[list[float], ...]] = {}
        self._views: dict[str, tuple[memoryview, ...]] = {}
        self.ids = 0
        self.ledger = Ledger(len(self.e.assets))  # the state after each fill, for the equity curve
        self.guard: EquityGuard | None = None  # set when loss breakers are configured
        # inside a candle's matching: an order placed now (by a callback of a fill) is
        # taken as placed at the candle's close: it rests through the tick on that candle
        # and executes when the next candle's matching begins (`place_after`); kept by id
        self.matching = False
        self.deferred: dict[str, tuple[AssetInstance, Order, Any]] = {}

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

    def views(self, ai: AssetInstance) -> tuple[memoryview, ...]:
        """open, close and volume of `ai` for single reads (orders): views of the numpy
        columns, which index from Python several times faster than `.item` and copy nothing."""
        views = self._views.get(ai.symbol)
        if views is None:
            o = ai.ohlcv
            views = tuple(memoryview(np.asarray(c, dtype=np.float64))
                          for c in (o.open, o.close, o.volume))
            self._views[ai.symbol] = views
        return views

    def fillable(self, ai: AssetInstance, amount: float, volume: float) -> float:
        """How much of `amount` the volume cap lets fill now, on the amount step (all of
        it is `amount` to the bit: `floor_fill`)."""
        if not self.config.volume_cap:
            return amount
        want = volume_fill(amount, volume, self.rng)
        if want == amount:  # all of it: floor_fill's answer, as the gate passed the amount
            return amount  # as on the step
        return floor_fill(want, amount, ai.market.amount_step)

    def fill(self, ai: AssetInstance, order: Order, price: float, amount: float, taker: bool,
             effective: int, now: int | None = None) -> Trade | None:
        """Emit the trade that fills `amount` of `order` at `price`.

        `effective` is the first candle whose close sees the fill (for the equity curve);
        `now` the sim's time when the caller has it (else the clock is asked).
        """
        e = self.e
        cut = None
        if order.reduce_only:  # it never takes more than the position holds
            amount, cut = reducible(ai, order, amount)
        applied = None
        if amount > 0:
            trade = new_trade(ai, order, amount, price, taker,
                              e.clock.now() if now is None else now)
            applied = e.emit("trade_created", trade, ai.symbol).trade
            self.ledger.add(e, effective)  # snapshot(), one call less: once a fill
            if self.guard is not None:
                self.guard.refresh()
        if cut is not None:
            self.close_rest(ai, order)
            e.reject(ai, cut, {"id": order.id, "symbol": ai.symbol})
        return applied

    def close_rest(self, ai: AssetInstance, order: Order) -> None:
        """Cancel what is left of an order that may not rest on the book."""
        if order.status is _OPEN:
            self.e.emit("order_closed", {"id": order.id, "symbol": ai.symbol,
                                         "status": OrderStatus.CANCELED.value}, ai.symbol)

    def snapshot(self, effective: int) -> None:
        """Keep the state after a fill, for the equity curve; the guard sets its band anew."""
        self.ledger.add(self.e, effective)
        if self.guard is not None:
            self.guard.refresh()

    def defer(self, ai: AssetInstance, order: Order, request: Any) -> None:
        """Keep an order placed while a candle is matched for `place_after` (a conditional
        one only so that no other asset's settling of the candle looks at it)."""
        self.deferred[order.id] = (ai, order, request)

    def place_after(self) -> None:
        """Execute the orders placed while the last candle was matched, as if placed at its
        close, when the next candle's matching begins (the strategy's candle `s.i` is still
        the last one). The sim cannot know where inside the candle the fill that placed
        them came, so they never see its prices; the tick on it sees them open, and may
        cancel them, as it would see orders it placed itself. A market order fills at the
        next open, a limit the next open crosses fills there, others rest and that candle
        may fill them (backtesting.py takes orders placed in next() at the next bar alike).
        After the last candle they stay open: there is no next open."""
        deferred, self.deferred = self.deferred, {}
        place = self.e.executor.place_after  # type: ignore[union-attr]
        for ai, order, request in deferred.values():
            if order.status is _OPEN and order.type not in CONDITIONAL:
                place(ai, order, request)

    def match(self, i: int) -> None:
        """Liquidate and fill what candle `i` reaches, for the assets with anything open,
        after executing the orders placed while candle i - 1 was matched (`place_after`).

        Runs every candle while anything is open, so it only looks first (no copies, no
        allocation) and copies the containers only for an asset that candle `i` reaches.
        """
        if self.deferred:  # placed while the candle before was matched
            self.place_after()
        reached = None
        for ai in self.e.state.active.values():
            h, l, _ = self.cols(ai)
            hi, lo = h[i], l[i]
            pos = ai.open_position()
            if pos is not None and ((lo <= pos.liquidation_price) if pos.side is _LONG
                                    else (hi >= pos.liquidation_price)):
                reached = (reached or []) + [ai]
                continue
            for order in ai.orders.values():
                if limit_triggers(order.side, order.price, lo, hi) if order.type is _LIMIT \
                        else _reaches(order, lo, hi):
                    reached = (reached or []) + [ai]
                    break
        if reached:
            for ai in reached:
                self._settle_candle(ai, i)

    def _settle_candle(self, ai: AssetInstance, i: int) -> None:
        h, l, v = self.cols(ai)
        self.matching = True
        try:
            orders = list(ai.orders.values())  # a fill changes the dict
            if self.deferred:  # placed inside this candle (by another asset's fill)
                orders = [o for o in orders if o.id not in self.deferred]
            rest = orders
            pos = ai.open_position()
            if pos is not None and ((l[i] <= pos.liquidation_price) if pos.side is _LONG
                                    else (h[i] >= pos.liquidation_price)):
                rest = self._race(ai, pos.side, orders, i)
            plain = all(o.type is _LIMIT for o in orders)
            if not plain and len(rest) > 1:  # the order of a candle's fills: triggers.py
                open_ = self.views(ai)[0][i]
                rest.sort(key=lambda o: rank(o, open_))
            self._settle_orders(ai, rest, i)
        finally:
            self.matching = False
        if not plain:
            self._trail(ai, orders, h[i], l[i])

    def _race(self, ai: AssetInstance, side: PositionSide, orders: list[Order],
              i: int) -> list[Order]:
        """Candle `i` reaches the liquidation price of the `side` position of `ai`: settle
        the orders the price meets on its way there from the open, then liquidate what is
        still reached (triggers.py, rule 5). Returns the orders left to settle."""
        h, l, _ = self.cols(ai)
        open_ = self.views(ai)[0][i]
        falling = side is _LONG
        first: list[tuple[float, Order]] = []
        for order in orders:
            at = meets(order, open_, falling)
            if at is not None:
                first.append((at, order))
        # nearest the open first; at one price, as any candle (stops first)
        first.sort(key=lambda x: (-x[0] if falling else x[0], rank(x[1], open_)))
        done = set()
        for at, order in first:
            pos = ai.open_position()
            if at != open_ and pos is not None and pos.side is side and \
                    ((at <= pos.liquidation_price) if falling else (at >= pos.liquidation_price)):
                break
            self._settle_orders(ai, [order], i)
            done.add(order.id)
        pos = ai.open_position()
        if pos is not None and pos.side is side and \
                ((l[i] <= pos.liquidation_price) if falling else (h[i] >= pos.liquidation_price)):
            self.liquidate(ai, side, i)
        return [o for o in orders if o.id not in done]

    def _settle_orders(self, ai: AssetInstance, orders: list[Order], i: int) -> None:
        """Fire and fill the orders of `ai` that candle `i` reaches, in the order given."""
        h, l, v = self.cols(ai)
        for order in orders:
            if not order.is_open:
                continue
            if order.type is not _LIMIT and waits(order):
                self._fire(ai, order, i)
            elif limit_triggers(order.side, order.price, l[i], h[i]):
                amount = self.fillable(ai, order.remaining, v[i])
                if amount > 0:
                    self.fill(ai, order, order.price, amount, taker=False, effective=i)

    def _fire(self, ai: AssetInstance, order: Order, i: int) -> None:
        """Fire a conditional order that candle `i` reaches and fill what it may (triggers.py)."""
        h, l, v = self.cols(ai)
        opens, closes, _ = self.views(ai)
        open_ = opens[i]
        if not order.triggered:
            if not reached(order, l[i], h[i]):
                return
            ref = open_ if passed(order, open_) else order.trigger
            self.e.emit("order_triggered", {"id": order.id, "symbol": ai.symbol,
                                            "trigger": order.trigger, "price": ref,
                                            "ts": self.e.clock.now()}, ai.symbol)
            if order.type in LIMIT_AFTER_TRIGGER:
                if marketable(order.side, order.price, ref):
                    amount = self.fillable(ai, order.remaining, v[i])
                    if amount > 0:
                        self.fill(ai, order, ref, amount, taker=True, effective=i)
                return
        else:
            ref = open_  # the rest the volume cap left: at the next opens
        amount = self.fillable(ai, order.remaining, v[i])
        if amount > 0:
            price = fill_price(order, ref, open_, closes[i - 1] if i else open_, l[i], h[i],
                               amount, v[i], self.config.slippage, ai.market.price_step)
            reason = shortfall(self.e.state, ai, order, amount, price)
            if reason is not None:  # as an exchange expires a market order it cannot fund
                self.close_rest(ai, order)
                self.e.reject(ai, f"{order.type.value} {order.id} fired at {price:g}: "
                                  f"{reason}", {"id": order.id, "symbol": ai.symbol})
                return
            self.fill(ai, order, price, amount, taker=True, effective=i)

    def _trail(self, ai: AssetInstance, orders: list[Order], high: float, low: float) -> None:
        """Move the trailing stops among `orders` (those open when the candle began) after
        it closed, never back; one placed inside the candle follows from the next."""
        step = ai.market.price_step
        for order in orders:
            if order.type is _TRAIL and not order.triggered and order.is_open:
                new = trail_to(order, low, high, step)
                if new is not None:
                    self.e.emit("trigger_moved", {"id": order.id, "symbol": ai.symbol,
                                                  "trigger": new, "ts": self.e.clock.now()},
                                ai.symbol)

    def liquidate(self, ai: AssetInstance, side: PositionSide, i: int) -> None:
        trade = liquidation_trade(ai, side, self.e.clock.now(), self.new_id())
        self.e.emit("liquidation", trade, ai.symbol)
        self.snapshot(i)

    def run(self, start: int, progress: Callable[[int], Any] | None = None) -> None:
        """Step from candle `start` to the end: match open orders, then tick."""
        # a backtest makes many short-lived objects and almost no cycles: the cyclic GC's
        # rescans cost a fifth of a busy run, so it waits until the run is over
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._loop(start, progress)
        finally:
            if enabled:
                gc.enable()

    def _loop(self, start: int, progress: Callable[[int], Any] | None) -> None:
        if self.guard is not None:
            self._guarded_loop(start, progress)
            return
        s = self.s
        tick = s.tick
        active = self.e.state.active
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
        self._last_candle(start)

    def _guarded_loop(self, start: int, progress: Callable[[int], Any] | None) -> None:
        """`_loop` with the loss breakers watched at each close, before the tick (see
        guard.py). It runs as `_loop`, with no test per candle, through each stretch of
        candles whose closes lie inside the band (`guard.run`), and compares the close of
        the candle after it. A fill that narrows the band below the stretch's closes
        empties `guard.run`, which ends the stretch after that candle; its close is
        compared first if the fill came as the candle was matched. The chunks also end
        where a UTC day begins, to measure the day's start."""
        s = self.s
        tick = s.tick
        active = self.e.state.active
        match = self.match
        close = self.close_times
        last = self.n - 1
        guard = self.guard
        assert guard is not None
        w = guard.watch
        check = guard.check
        clear = guard.clear_until
        days = day_starts(guard.times, start, last) if self.e.state.risk.rules.daily_rules \
            else []
        bounds = sorted({*range(start, last, CHUNK), *days, last})
        fresh = set(days)
        for lo, hi in zip(bounds, bounds[1:]):
            if lo in fresh:
                guard.new_day(lo)
            candles = array("q", np.arange(lo, hi, dtype=np.int64).tobytes())
            i = lo
            while i < hi:
                j = clear(i, hi)  # closes i .. j - 1 lie inside the band
                if i < j:
                    # a copied slice: an array iterator stops once the array is shortened
                    run = guard.run = candles[i - lo:j - lo]
                    for i, ts in zip(run, close[i:j]):
                        if active:
                            match(i)
                            if not run and not w[1] <= w[0][i] <= w[2]:  # a fill ended it
                                s.i = i  # the close measured is the candle's (its time too)
                                check(i)
                        s.i = i
                        tick(ts)
                    i += 1
                    if i == hi:
                        break
                # candle i: its close may lie outside the band
                if active:
                    match(i)
                s.i = i
                if not w[1] <= w[0][i] <= w[2]:
                    check(i)
                tick(close[i])
                i += 1
            if progress is not None:
                progress(hi - lo)
        self._last_candle(start)

    def _last_candle(self, start: int) -> None:
        """The last candle is only matched: an order placed at its close could not fill."""
        last = self.n - 1
        if last >= start:
            if self.e.state.active:
                self.match(last)
            self.s.i = last
