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
# ccxt's `feeSide`: the fee is taken from the asset received, the asset given, or always
# the quote or the base (ccxt's default when a market does not say)
FEE_SIDES = ("get", "give", "quote", "base")


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

    def check_order(self, amount: float, price: float) -> str | None:
        """Why an order of `amount` at `price` breaks this market's rules, or None."""
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
        if cost < self.min_cost * (1 - 1e-9):
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
        """Build from a ccxt unified market structure."""
        try:
            symbol = m["symbol"]
            precision = m.get("precision") or {}
            limits = m.get("limits") or {}
            amount_step = _step(precision.get("amount"), precision_mode, symbol, "amount")
            price_step = _step(precision.get("price"), precision_mode, symbol, "price")
            kind = m.get("type") or ("spot" if m.get("spot") else "swap")
            lev = (limits.get("leverage") or {}).get("max")
            mmr = m.get("maintenanceMarginRate")
            if mmr is None:
                mmr = (m.get("info") or {}).get("maintenanceMarginPercent")
                mmr = float(mmr) / 100 if mmr is not None else DEFAULT_MAINTENANCE_MARGIN_RATE
            return cls(
                symbol=symbol,
                id=str(m.get("id") or symbol.replace("/", "")),
                base=m["base"],
                quote=m["quote"],
                settle=m.get("settle"),
                kind=kind,
                amount_step=amount_step,
                price_step=price_step,
                min_amount=_num((limits.get("amount") or {}).get("min"), 0.0),
                max_amount=_num((limits.get("amount") or {}).get("max"), math.inf),
                min_cost=_num((limits.get("cost") or {}).get("min"), 0.0),
                max_cost=_num((limits.get("cost") or {}).get("max"), math.inf),
                min_price=_num((limits.get("price") or {}).get("min"), 0.0),
                max_price=_num((limits.get("price") or {}).get("max"), math.inf),
                maker=_num(m.get("maker"), 0.001),
                taker=_num(m.get("taker"), 0.001),
                contract_size=_num(m.get("contractSize"), 1.0),
                max_leverage=_num(lev, 1.0 if kind == "spot" else 20.0),
                maintenance_margin_rate=float(mmr),
                fee_side=str(m.get("feeSide") or "quote"),
            )
        except (KeyError, TypeError, ValueError) as e:
            name = m.get("symbol", "?") if isinstance(m, Mapping) else "?"
            raise ConfigError(f"market {name!r} is not a valid ccxt market: {e}") from None

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


def _num(v: Any, default: float) -> float:
    return default if v is None else float(v)


def _step(v: Any, mode: int, symbol: str, what: str) -> float:
    if v is None:
        raise ValueError(f"no {what} precision")
    if mode == TICK_SIZE:
        return float(v)
    if mode == DECIMAL_PLACES:
        return 10.0 ** -int(v)
    raise ValueError(f"precision mode {mode} ({what} of {symbol}) is not supported")
