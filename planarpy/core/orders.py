"""Orders and trades, and the small enums that describe them."""

from __future__ import annotations

import enum

import attrs

from .display import html_table, iso, num, word


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"


class PositionSide(str, enum.Enum):
    LONG = "long"
    SHORT = "short"


class OrderType(str, enum.Enum):
    MARKET = "market"
    LIMIT = "limit"
    # conditional: rest untriggered until the market reaches `trigger`, then act as a
    # market order (or a limit at `price`); the names are ccxt's and Binance's
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT_MARKET = "take_profit_market"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP = "trailing_stop_market"


CONDITIONAL = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT,
                         OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT,
                         OrderType.TRAILING_STOP})
STOPS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
LIMIT_AFTER_TRIGGER = frozenset({OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})

# enum members read once: on Python 3.11 `Side.BUY` in a function costs a metaclass
# __getattr__ hook each time (several hundred instructions; 3.12 has none)
_BUY, _LONG = Side.BUY, PositionSide.LONG


class TimeInForce(str, enum.Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PO"


# limits that a venue takes and expires when they cannot fill at once (Binance: EXPIRED,
# an order it counts), where a post-only that would take is refused (never an order)
EXPIRE_UNFILLED = frozenset({TimeInForce.IOC, TimeInForce.FOK})


class OrderStatus(str, enum.Enum):
    OPEN = "open"
    CLOSED = "closed"  # fully filled
    CANCELED = "canceled"  # cancelled with or without a partial fill (IOC rest included)
    REJECTED = "rejected"
    # live: the submit got no answer (a timeout, a 5xx, a dropped connection), so the order
    # may or may not exist; it holds its funds until the exchange is asked again
    UNKNOWN = "unknown"
    NOT_PLACED = "not_placed"  # live: was UNKNOWN, and the exchange never received it


_OPEN, _UNKNOWN = OrderStatus.OPEN, OrderStatus.UNKNOWN


def opens_position(side: Side, pos: PositionSide) -> bool:
    """A buy opens or increases a long; a sell opens or increases a short."""
    return (side is _BUY) == (pos is _LONG)


@attrs.define(slots=True, eq=False)
class Order:
    """One order as the strategy knows it.

    `committed` is what the order still holds: quote currency for buys and for orders
    that open a margin position, base units (or contracts) for spot sells and reduce-only
    orders. `price` is the limit price, or for market orders the reference price the
    order was checked against.

    Conditional orders (`type` in CONDITIONAL) also carry `trigger`, the price that fires
    them (a trailing stop's current stop; 0 while it waits for `activation`), and for a
    trailing stop `trail` (`trail_pct`: a fraction of the reference price, else a price
    offset). `triggered` is set once it fired. `group` links the legs of an OCO list (one
    fill cancels the others; they share one commitment); `pair` says what made a leg:
    "oco" (an OCO pair the strategy placed: it ends whole) or "exits" (a bracket's exits:
    what protection could be placed stays). `legs` holds a bracket entry's stop-loss and
    take-profit until the entry is done, and `route` says how live holds it: "native" on
    the exchange, "emulated" by the engine ("" in sim and paper). `entry` names the bracket
    entry (its id) whose exits an order is, so that a restart knows which exits an entry
    has ("" for every other order).
    """

    id: str
    symbol: str
    side: Side
    type: OrderType
    amount: float
    price: float
    date: int
    tif: TimeInForce = TimeInForce.GTC
    pos: PositionSide = PositionSide.LONG
    reduce_only: bool = False
    leverage: float = 1.0
    client_id: str = ""
    filled: float = 0.0
    cost: float = 0.0
    fee: float = 0.0
    status: OrderStatus = OrderStatus.OPEN
    committed: float = 0.0
    commits_quote: bool = True
    trigger: float = 0.0
    trail: float = 0.0
    trail_pct: bool = False
    activation: float = 0.0
    triggered: bool = False
    group: str = ""
    pair: str = ""
    legs: dict | None = None
    route: str = ""
    entry: str = ""

    @property
    def remaining(self) -> float:
        return self.amount - self.filled

    @property
    def is_open(self) -> bool:
        """Whether the order may still fill: open, or (live) of unknown outcome."""
        return self.status is _OPEN or self.status is _UNKNOWN

    @property
    def is_conditional(self) -> bool:
        """Whether the order waits for its trigger (it has not fired yet)."""
        return self.type in CONDITIONAL and not self.triggered

    @property
    def average(self) -> float:
        """Average fill price (0 when nothing filled)."""
        return self.cost / self.filled if self.filled else 0.0

    def __repr__(self) -> str:
        fill = f" filled {num(self.filled)}" if self.filled else ""
        return (f"<Order {self.id} {word(self.status)} {word(self.type)} {word(self.side)} "
                f"{num(self.amount)} {self.symbol} @ {num(self.price)}{fill} {word(self.tif)}>")

    def _repr_html_(self) -> str:
        return html_table(f"Order {self.id}", [
            ("symbol", self.symbol), ("status", word(self.status)),
            ("type", f"{word(self.type)} {word(self.tif)}"),
            ("side", f"{word(self.side)} ({word(self.pos)}{', reduce only' if self.reduce_only else ''})"),
            ("amount", num(self.amount)), ("price", num(self.price)),
            ("filled", f"{num(self.filled)} (average {num(self.average)})"),
            ("fee", num(self.fee)), ("date", iso(self.date)), ("client id", self.client_id or "-")])


@attrs.frozen(slots=True)
class Trade:
    """A fill of (part of) an order. `cost` is the quote value, `fee` is in `fee_currency`."""

    order_id: str
    symbol: str
    side: Side
    pos: PositionSide
    date: int
    amount: float
    price: float
    cost: float
    fee: float
    fee_currency: str
    leverage: float = 1.0
    taker: bool = True
    id: str = ""

    def __repr__(self) -> str:
        return (f"<Trade {iso(self.date)} {word(self.side)} {num(self.amount)} {self.symbol} @ "
                f"{num(self.price)} fee {num(self.fee)} {self.fee_currency} order {self.order_id}>")

    def _repr_html_(self) -> str:
        return html_table(f"Trade {self.id or ''} of order {self.order_id}".replace("  ", " "), [
            ("date", iso(self.date)), ("symbol", self.symbol),
            ("side", f"{word(self.side)} ({word(self.pos)})"), ("amount", num(self.amount)),
            ("price", num(self.price)), ("cost", num(self.cost)),
            ("fee", f"{num(self.fee)} {self.fee_currency} ({'taker' if self.taker else 'maker'})"),
            ("leverage", num(self.leverage))])


_FIELDS = ("order_id", "symbol", "side", "pos", "date", "amount", "price", "cost", "fee",
           "fee_currency", "leverage", "taker", "id")
(_s0, _s1, _s2, _s3, _s4, _s5, _s6, _s7, _s8, _s9, _s10, _s11, _s12) = (
    Trade.__dict__[name].__set__ for name in _FIELDS)
_new = object.__new__


def new_fill(order_id: str, symbol: str, side: Side, pos: PositionSide, date: int, amount: float,
             price: float, cost: float, fee: float, fee_currency: str, leverage: float,
             taker: bool, id: str) -> Trade:
    """`Trade(...)` with every field given, for the fill path: each slot is set through its
    descriptor (a frozen class's own __init__ sets them by name, several times slower)."""
    t = _new(Trade)
    _s0(t, order_id); _s1(t, symbol); _s2(t, side); _s3(t, pos); _s4(t, date)  # noqa: E702
    _s5(t, amount); _s6(t, price); _s7(t, cost); _s8(t, fee); _s9(t, fee_currency)  # noqa: E702
    _s10(t, leverage); _s11(t, taker); _s12(t, id)  # noqa: E702
    return t


class _Missing:
    """The falsy singleton returned for an order that was accepted but has no fill yet."""

    _instance: "_Missing | None" = None
    __slots__ = ()

    def __new__(cls) -> "_Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "missing"

    def __reduce__(self) -> str:
        return "missing"


missing = _Missing()
