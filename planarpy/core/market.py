"""A market's trading rules, built from a ccxt market dict."""

from __future__ import annotations

import math
from typing import Any, Mapping

import attrs

from .errors import ConfigError
from .precision import ceil_to_step, floor_to_step, is_on_step, round_to_step, step_decimals

# ccxt precision modes (ccxt.base.decimal_to_precision)
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4

DEFAULT_MAINTENANCE_MARGIN_RATE = 0.005
_COST_ROOM = 1 - 1e-9  # an order worth the minimum cost but for rounding is taken
# ccxt's `feeSide`: the fee is taken from the asset received, the asset given, or always
# the quote or the base (ccxt's default when a market does not say)
FEE_SIDES = ("get", "give", "quote", "base")
# the fee rates a market or a fee override may have (a negative maker fee is a rebate)
FEE_RANGE = (-0.01, 0.1)


@attrs.frozen(slots=True)
class Market:
    """Precision, limits and fees of one market.

    `amount_step` and `price_step` are tick sizes. Amounts are in base units for spot and
    in contracts for derivatives; `contract_size` converts contracts to base units.
    `fee_side` says which currency a spot fill's fee is taken in (ccxt's `feeSide`, see
    FEE_SIDES; Binance spot takes it from the asset received); derivatives pay fees in
    their settle currency.
    """

    symbol: str
    id: str
    base: str
    quote: str
    settle: str | None
    kind: str  # "spot", "swap" or "future"
    amount_step: float
    price_step: float
    min_amount: float = 0.0
    max_amount: float = math.inf
    min_cost: float = 0.0
    max_cost: float = math.inf
    min_price: float = 0.0
    max_price: float = math.inf
    maker: float = 0.001
    taker: float = 0.001
    contract_size: float = 1.0
    max_leverage: float = 1.0
    maintenance_margin_rate: float = DEFAULT_MAINTENANCE_MARGIN_RATE
    fee_side: str = attrs.field(default="quote")
    # kind != "spot", kept as a field: every order and fill asks it several times
    is_derivative: bool = attrs.field(init=False, eq=False, repr=False)
    # the currency a buy's and a sell's fee is taken in, from `fee_side` (read per fill)
    fee_currencies: tuple[str, str] = attrs.field(init=False, eq=False, repr=False)

    @fee_side.validator
    def _check_fee_side(self, _: Any, value: str) -> None:
        if value not in FEE_SIDES:
            raise ConfigError(f"fee side {value!r} of {self.symbol} is not one of "
                              f"{', '.join(FEE_SIDES)} (ccxt's feeSide)")

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "is_derivative", self.kind != "spot")
        if self.is_derivative:
            pair = (self.settle or self.quote,) * 2
        elif self.fee_side in ("get", "give"):
            pair = (self.base, self.quote) if self.fee_side == "get" else (self.quote, self.base)
        else:
            pair = (self.base if self.fee_side == "base" else self.quote,) * 2
        object.__setattr__(self, "fee_currencies", pair)

    @property
    def amount_decimals(self) -> int:
        return step_decimals(self.amount_step)

    @property
    def price_decimals(self) -> int:
        return step_decimals(self.price_step)

    def floor_amount(self, amount: float) -> float:
        """`amount` rounded down to the amount step (never more than asked)."""
        return floor_to_step(amount, self.amount_step)

    def ceil_amount(self, amount: float) -> float:
        return ceil_to_step(amount, self.amount_step)

    def round_price(self, price: float) -> float:
        return round_to_step(price, self.price_step)

    def adverse_price(self, price: float, buy: bool) -> float:
        """`price` moved onto the tick grid against the trader (up for buys, down for sells)."""
        step = self.price_step
        return ceil_to_step(price, step) if buy else floor_to_step(price, step)

    def amount_fits(self, amount: float) -> bool:
        return is_on_step(amount, self.amount_step)

    def price_fits(self, price: float) -> bool:
        return is_on_step(price, self.price_step)

    def value(self, amount: float, price: float) -> float:
        """Quote value of `amount` at `price` (contracts times contract size)."""
        return amount * price * self.contract_size

    def is_dust(self, amount: float, price: float) -> bool:
        """Whether `amount` at `price` is too small for any order here: below the minimum
        amount (or one step), or worth less than the minimum cost."""
        return amount < max(self.min_amount, self.amount_step) or \
            amount * price * self.contract_size < self.min_cost * _COST_ROOM

    def check_order(self, amount: float, price: float, reduce_only: bool = False) -> str | None:
        """Why an order of `amount` at `price` breaks this market's rules, or None. A
        reduce-only order on a derivative is exempt from the minimum cost, as on Binance
        USD-M: a position whose value fell below it could not be closed otherwise."""
        if not 0.0 < amount < math.inf:
            return f"amount must be a positive number, got {amount!r}"
        if not 0.0 < price < math.inf:
            return f"price must be a positive number, got {price!r}"
        if amount < self.min_amount:
            return f"amount {amount:g} is below the minimum {self.min_amount:g} of {self.symbol}"
        if not is_on_step(amount, self.amount_step):
            return (f"amount {amount!r} has more decimals than {self.symbol} allows "
                    f"(step {self.amount_step:g}); round it with floor_amount()")
        if amount > self.max_amount:
            return f"amount {amount:g} is above the maximum {self.max_amount:g} of {self.symbol}"
        cost = amount * price * self.contract_size
        if cost < self.min_cost * _COST_ROOM and not (reduce_only and self.is_derivative):
            return (f"order cost {cost:.10g} {self.quote} is below the minimum "
                    f"{self.min_cost:g} {self.quote} of {self.symbol}")
        if cost > self.max_cost:
            return f"order cost {cost:.10g} {self.quote} is above the maximum {self.max_cost:g}"
        return None

    def check_limit_price(self, price: float) -> str | None:
        """Why `price` is not a valid limit price here, or None."""
        if not 0.0 < price < math.inf:
            return f"price must be a positive number, got {price!r}"
        if not is_on_step(price, self.price_step):
            return (f"price {price!r} has more decimals than {self.symbol} allows "
                    f"(tick {self.price_step:g}); round it with round_price()")
        if price < self.min_price or price > self.max_price:
            return (f"price {price:g} is outside {self.symbol}'s range "
                    f"[{self.min_price:g}, {self.max_price:g}]")
        return None

    @classmethod
    def from_ccxt(cls, m: Mapping[str, Any], precision_mode: int = TICK_SIZE) -> "Market":
        """Build from a ccxt unified market structure.

        A market without `type` (or a `spot`/`swap`/`future` flag) is typed by its symbol
        as ccxt writes it: `BASE/QUOTE` is spot, `BASE/QUOTE:SETTLE` a swap and
        `BASE/QUOTE:SETTLE-YYMMDD` a future. Each value read is checked: ConfigError names
        the market, the key, the value and what is allowed.
        """
        name = m.get("symbol", "?") if isinstance(m, Mapping) else "?"
        try:
            if not isinstance(m, Mapping):
                raise ValueError(f"must be a table (ccxt's market shape), not {m!r}")
            r = _Reader(m)
            symbol = r.text("symbol")
            kind = market_kind(m, symbol)
            mmr = m.get("maintenanceMarginRate")
            if mmr is None and (m.get("info") or {}).get("maintenanceMarginPercent") is not None:
                mmr = float(m["info"]["maintenanceMarginPercent"]) / 100
            return cls(
                symbol=symbol,
                id=str(m.get("id") or symbol.replace("/", "")),
                base=r.text("base"),
                quote=r.text("quote"),
                settle=m.get("settle") or (None if kind == "spot" else _settle(symbol)),
                kind=kind,
                amount_step=r.step("amount", precision_mode),
                price_step=r.step("price", precision_mode),
                min_amount=r.limit("amount", "min", 0.0),
                max_amount=r.limit("amount", "max", math.inf),
                min_cost=r.limit("cost", "min", 0.0),
                max_cost=r.limit("cost", "max", math.inf),
                min_price=r.limit("price", "min", 0.0),
                max_price=r.limit("price", "max", math.inf),
                maker=r.number(m.get("maker"), "maker", 0.001, *FEE_RANGE),
                taker=r.number(m.get("taker"), "taker", 0.001, *FEE_RANGE),
                contract_size=r.number(m.get("contractSize"), "contractSize", 1.0, 1e-18,
                                       math.inf, open_low=True),
                max_leverage=r.limit("leverage", "max", 1.0 if kind == "spot" else 20.0),
                maintenance_margin_rate=r.number(mmr, "maintenanceMarginRate",
                                                 DEFAULT_MAINTENANCE_MARGIN_RATE, 0.0, 0.999),
                fee_side=str(m.get("feeSide") or "quote"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"market {name!r} is not a valid ccxt market: "
                              f"{e.args[0] if e.args else e}") from None

    def to_ccxt(self) -> dict[str, Any]:
        """The ccxt-shaped market dict this market was (or could have been) built from."""
        def lim(lo: float, hi: float) -> dict[str, float | None]:
            return {"min": lo, "max": None if math.isinf(hi) else hi}
        spot = self.kind == "spot"
        return {
            "id": self.id, "symbol": self.symbol, "base": self.base, "quote": self.quote,
            "settle": self.settle, "type": self.kind, "spot": spot, "swap": self.kind == "swap",
            "linear": None if spot else True, "contract": not spot,
            "contractSize": None if spot else self.contract_size,
            "precision": {"amount": self.amount_step, "price": self.price_step},
            "limits": {"amount": lim(self.min_amount, self.max_amount),
                       "price": lim(self.min_price, self.max_price),
                       "cost": lim(self.min_cost, self.max_cost),
                       "leverage": {"min": None if spot else 1.0,
                                    "max": None if spot else self.max_leverage}},
            "maker": self.maker, "taker": self.taker,
            "maintenanceMarginRate": self.maintenance_margin_rate, "feeSide": self.fee_side,
        }


def market_kind(m: Mapping[str, Any], symbol: str) -> str:
    """The market type, spot, swap or future: ccxt's `type`, else its flags, else the
    form of the symbol."""
    kind = m.get("type")
    if kind is None:
        kind = next((k for k in ("spot", "swap", "future") if m.get(k)), None)
    if kind is None:
        settle = symbol.partition(":")[2]
        kind = "spot" if not settle else "future" if "-" in settle else "swap"
    if kind not in ("spot", "swap", "future"):
        raise ValueError(f"type must be one of spot, swap, future, not {kind!r}")
    return kind


def _settle(symbol: str) -> str | None:
    """The settle currency a ccxt symbol names (`XRP/USDT:USDT` -> USDT), if any."""
    return symbol.partition(":")[2].partition("-")[0] or None


class _Reader:
    """Reads the values of a ccxt market dict, naming the key of any that is wrong."""

    def __init__(self, m: Mapping[str, Any]) -> None:
        self.m = m

    def text(self, key: str) -> str:
        v = self.m.get(key)
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{key} must be a non-empty string, not {v!r}")
        return v

    def table(self, key: str, example: str) -> Mapping[str, Any]:
        v = self.m.get(key)
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise ValueError(f"{key} must be a table like {example}, not {v!r}")
        return v

    def step(self, what: str, mode: int) -> float:
        precision = self.table("precision", "{ amount = 0.001, price = 0.01 }")
        v = precision.get(what)
        if v is None:
            raise ValueError(f"precision.{what} is missing: give the {what} step, e.g. "
                             "precision = { amount = 0.001, price = 0.01 }")
        if mode == DECIMAL_PLACES:
            places = self.number(v, f"precision.{what}", 0.0, 0.0, 30.0)
            if places != int(places):
                raise ValueError(f"precision.{what} must be whole decimal places, not {v!r}")
            return 10.0 ** -int(places)
        if mode != TICK_SIZE:
            raise ValueError(f"precision mode {mode} is not supported")
        return self.number(v, f"precision.{what}", 0.0, 0.0, math.inf, open_low=True)

    def limit(self, what: str, end: str, default: float) -> float:
        limits = self.table("limits", "{ amount = { min = 0.001 }, cost = { min = 5.0 } }")
        bounds = limits.get(what)
        if bounds is not None and not isinstance(bounds, Mapping):
            raise ValueError(f"limits.{what} must be a table like {{ min = 1, max = 100 }}, "
                             f"not {bounds!r}")
        return self.number((bounds or {}).get(end), f"limits.{what}.{end}", default, 0.0,
                           math.inf)

    @staticmethod
    def number(v: Any, key: str, default: float, low: float, high: float,
               open_low: bool = False) -> float:
        if v is None:
            return default
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
              and (low < v if open_low else low <= v) and v <= high and not math.isnan(v))
        if not ok:
            span = f"> {low:g}" if open_low and high == math.inf else \
                f">= {low:g}" if high == math.inf else f"from {low:g} to {high:g}"
            raise ValueError(f"{key} must be a number {span}, not {v!r}")
        return float(v)
