"""Order book of one market: user orders with price-time priority over a synthetic book.

The synthetic book is deterministic: around the reference price P (the last replayed
trade) it quotes `levels` asks at P + i*s and bids at P - i*s (i = 1..levels), with
s = max(one tick, 2 bp of P) and level i holding i * unit, where unit is the mean size of
the last 20 replayed trades (at least the minimum quantity). What a taker takes from a
synthetic level stays taken until the next replayed trade refreshes the book, or until
REFILL_MS of market time after the first take, when the synthetic makers come back (a
quiet market would otherwise stay empty for as long as its feed has no trade).

User orders rest in the book. A taker walks the merged levels best price first; at one
price, resting user orders (oldest first) fill before the synthetic quantity. A replayed
trade at price T fills resting orders the market traded through: buys above T and sells
below T fill completely; orders at exactly T share the trade's quantity, oldest first.
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import TYPE_CHECKING, Iterator

import attrs

from .markets import ZERO, MarketSpec

if TYPE_CHECKING:
    from .accounts import Account
    from .conditional import Trail

SPACING_BP = Decimal("0.0002")
REFILL_MS = 200


@attrs.define(slots=True, eq=False)
class Order:
    """One user order; quantities in base units (contracts for futures)."""

    id: int
    client_id: str
    account: "Account"
    spec: MarketSpec
    side: str  # "BUY" or "SELL"
    type: str  # "LIMIT", "MARKET", "LIMIT_MAKER" or a conditional type (STOP_LOSS, ...)
    tif: str  # "GTC", "IOC", "FOK" or "GTX"
    price: Decimal
    qty: Decimal
    time: int
    quote_qty: Decimal = ZERO
    reduce_only: bool = False
    filled: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    reserved: Decimal = ZERO  # funds or margin still held for the unfilled part
    seq: int = 0
    stop_price: Decimal = ZERO  # a conditional order's trigger (conditional.py)
    work_time: int = -1  # when it started working (placed, or fired): Binance's workingTime
    trail: "Trail | None" = None  # a spot trailing stop's

    @property
    def buy(self) -> bool:
        return self.side == "BUY"

    @property
    def working(self) -> bool:
        """False while a conditional order waits for its trigger."""
        return self.work_time >= 0

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def avg_price(self) -> Decimal:
        return (self.cum_quote / self.filled) if self.filled else ZERO


@attrs.frozen(slots=True)
class Fill:
    """A planned match: `maker` is None for synthetic liquidity."""

    maker: Order | None
    price: Decimal
    qty: Decimal


@attrs.define(slots=True, eq=False)
class Book:
    spec: MarketSpec
    ref: Decimal
    unit: Decimal
    levels: int = 10
    bids: dict[Decimal, list[Order]] = attrs.field(factory=dict)
    asks: dict[Decimal, list[Order]] = attrs.field(factory=dict)
    bid_prices: list[Decimal] = attrs.field(factory=list)  # ascending
    ask_prices: list[Decimal] = attrs.field(factory=list)  # ascending
    consumed: dict[Decimal, Decimal] = attrs.field(factory=dict)
    version: int = 1
    taken_at: int = 0  # market time of the first take since the last refresh
    _seq: int = 0

    @property
    def spacing(self) -> Decimal:
        s = self.spec.round_price(self.ref * SPACING_BP)
        return max(s, self.spec.tick)

    def synthetic(self, ask: bool) -> Iterator[tuple[Decimal, Decimal]]:
        """Synthetic levels of one side, best first, net of what was taken."""
        s = self.spacing
        for i in range(1, self.levels + 1):
            price = self.ref + s * i if ask else self.ref - s * i
            if price <= 0:
                return
            qty = self.unit * i - self.consumed.get(price, ZERO)
            if qty > 0:
                yield price, qty

    def add(self, order: Order) -> None:
        side, prices = (self.bids, self.bid_prices) if order.buy else (self.asks, self.ask_prices)
        self._seq += 1
        order.seq = self._seq
        queue = side.get(order.price)
        if queue is None:
            side[order.price] = [order]
            bisect.insort(prices, order.price)
        else:
            queue.append(order)
        self.version += 1

    def remove(self, order: Order) -> None:
        side, prices = (self.bids, self.bid_prices) if order.buy else (self.asks, self.ask_prices)
        queue = side.get(order.price)
        if queue is None or order not in queue:
            return
        queue.remove(order)
        if not queue:
            del side[order.price]
            prices.pop(bisect.bisect_left(prices, order.price))
        self.version += 1

    def _levels(self, ask: bool) -> Iterator[tuple[Decimal, list[Order], Decimal]]:
        """Merged levels of one side, best first: (price, user orders, synthetic qty)."""
        synth = dict(self.synthetic(ask))
        user_prices = self.ask_prices if ask else self.bid_prices
        users = self.asks if ask else self.bids
        prices = sorted(set(user_prices) | set(synth), reverse=not ask)
        for p in prices:
            yield p, users.get(p, []), synth.get(p, ZERO)

    def plan(self, buy: bool, limit: Decimal | None, qty: Decimal | None,
             quote: Decimal | None = None) -> list[Fill]:
        """Fills a taker would get: up to `qty` (or spending up to `quote`) within `limit`."""
        fills: list[Fill] = []
        left, budget = qty, quote
        for price, orders, synth in self._levels(ask=buy):
            if limit is not None and (price > limit if buy else price < limit):
                break
            for maker, avail in [(o, o.remaining) for o in orders] + [(None, synth)]:
                if avail <= 0:
                    continue
                take = avail if left is None else min(avail, left)
                if budget is not None:
                    take = min(take, self.spec.floor_qty(budget / price))
                if take <= 0:
                    return fills
                fills.append(Fill(maker, price, take))
                if left is not None:
                    left -= take
                if budget is not None:
                    budget -= take * price
            if left is not None and left <= 0:
                break
        return fills

    def take_synthetic(self, price: Decimal, qty: Decimal, now: int) -> None:
        if not self.consumed:
            self.taken_at = now
        self.consumed[price] = self.consumed.get(price, ZERO) + qty
        self.version += 1

    def refill(self, now: int) -> bool:
        """Restore taken synthetic liquidity REFILL_MS after the first take; whether it did."""
        if not self.consumed or now - self.taken_at < REFILL_MS:
            return False
        self.consumed.clear()
        self.version += 1
        return True

    def best(self, ask: bool) -> Decimal | None:
        for price, orders, synth in self._levels(ask):
            if orders or synth > 0:
                return price
        return None

    def would_take(self, buy: bool, price: Decimal) -> bool:
        """Whether a limit order at `price` would match at once (post-only check)."""
        best = self.best(ask=buy)
        return best is not None and (best <= price if buy else best >= price)

    def depth(self, limit: int = 100) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Aggregated (price, qty) levels, best first: (bids, asks)."""
        out = []
        for ask in (False, True):
            side = []
            for price, orders, synth in self._levels(ask):
                total = sum((o.remaining for o in orders), ZERO) + synth
                if total > 0:
                    side.append((price, total))
                if len(side) >= limit:
                    break
            out.append(side)
        return out[0], out[1]

    def on_trade(self, price: Decimal, qty: Decimal, unit: Decimal) -> list[tuple[Order, Decimal]]:
        """A replayed trade: the resting fills it causes, then the synthetic book moves to it."""
        fills: list[tuple[Order, Decimal]] = []
        for buy in (True, False):
            prices = self.bid_prices[::-1] if buy else list(self.ask_prices)
            queues = self.bids if buy else self.asks
            share = self.spec.floor_qty(qty)
            for p in prices:
                through = p > price if buy else p < price
                if not through and p != price:
                    break
                for o in list(queues[p]):
                    take = o.remaining if through else min(o.remaining, share)
                    if take <= 0:
                        break
                    if not through:
                        share -= take
                    fills.append((o, take))
        self.ref = price
        self.unit = unit
        self.consumed.clear()
        self.version += 1
        return fills
