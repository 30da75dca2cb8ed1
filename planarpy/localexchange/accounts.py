"""Accounts: spot balances (free and locked) and a USD-M futures wallet with isolated positions.

All amounts are Decimals, so accounting is exact: for every account, balances plus fees paid
equal the starting balances plus what was traded (spot), and the wallet plus fees equals the
starting wallet plus realized PnL (futures). Commission on spot is taken from the asset
received, as Binance does without BNB.

Futures model (one-way mode, isolated margin): an opening fill moves `qty * price / leverage`
from the available balance into the position's isolated wallet and pays its fee from the
available balance; a closing fill releases its share of the isolated wallet and realizes
PnL. The position is liquidated when the mark price reaches the price at which isolated
wallet + unrealized PnL equals the maintenance margin; the whole isolated wallet is lost
(PnL at the liquidation price plus a clearance fee of what remains).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

import attrs

from .auth import Credentials

ZERO = Decimal(0)
Q8 = Decimal("0.00000001")


def q8(x: Decimal, rounding: str = ROUND_DOWN) -> Decimal:
    return x.quantize(Q8, rounding=rounding)


@attrs.define(slots=True)
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@attrs.define(slots=True)
class Position:
    """One isolated one-way position; `amount` is signed (negative is short)."""

    symbol: str
    leverage: int = 20
    amount: Decimal = ZERO
    entry: Decimal = ZERO
    margin: Decimal = ZERO
    update_time: int = 0

    def liquidation_price(self, mmr: Decimal) -> Decimal:
        if self.amount == 0:
            return ZERO
        q = abs(self.amount)
        if self.amount > 0:
            p = (self.entry * q - self.margin) / (q * (1 - mmr))
        else:
            p = (self.entry * q + self.margin) / (q * (1 + mmr))
        return max(q8(p, ROUND_UP if self.amount > 0 else ROUND_DOWN), ZERO)

    def unrealized(self, mark: Decimal) -> Decimal:
        return q8((mark - self.entry) * self.amount) if self.amount else ZERO


@attrs.define(slots=True, eq=False)
class Account:
    """One user: API credentials, spot balances and the USD-M futures wallet."""

    name: str
    creds: Credentials
    spot: dict[str, Balance] = attrs.field(factory=dict)
    wallet: Decimal = ZERO  # futures wallet balance in the settle asset, isolated wallets included
    settle: str = "USDT"
    positions: dict[str, Position] = attrs.field(factory=dict)
    order_margin: Decimal = ZERO  # margin reserved by open futures orders
    margin_type: dict[str, str] = attrs.field(factory=dict)
    fees_paid: dict[str, Decimal] = attrs.field(factory=dict)
    realized_pnl: Decimal = ZERO

    def balance(self, asset: str) -> Balance:
        b = self.spot.get(asset)
        if b is None:
            b = self.spot[asset] = Balance()
        return b

    def position(self, symbol: str) -> Position:
        p = self.positions.get(symbol)
        if p is None:
            p = self.positions[symbol] = Position(symbol)
        return p

    @property
    def available(self) -> Decimal:
        """Futures balance free for new margin."""
        return self.wallet - sum((p.margin for p in self.positions.values()), ZERO) - self.order_margin

    def pay_fee(self, asset: str, fee: Decimal) -> None:
        self.fees_paid[asset] = self.fees_paid.get(asset, ZERO) + fee

    # spot

    def lock(self, asset: str, amount: Decimal) -> bool:
        b = self.balance(asset)
        if b.free < amount:
            return False
        b.free -= amount
        b.locked += amount
        return True

    def unlock(self, asset: str, amount: Decimal) -> None:
        b = self.balance(asset)
        b.locked -= amount
        b.free += amount

    def spot_fill(self, base: str, quote: str, buy: bool, qty: Decimal, price: Decimal,
                  fee_rate: Decimal, from_locked: Decimal) -> tuple[Decimal, str]:
        """Apply a spot fill; `from_locked` of the paid asset comes from locked funds.

        Returns the commission and its asset (the asset received).
        """
        cost = q8(qty * price)
        paid, got, pay_amount, get_amount = (quote, base, cost, qty) if buy else (base, quote, qty, cost)
        pb = self.balance(paid)
        pb.locked -= from_locked
        pb.free -= pay_amount - from_locked
        fee = q8(get_amount * fee_rate, ROUND_UP)
        self.balance(got).free += get_amount - fee
        self.pay_fee(got, fee)
        return fee, got

    # futures

    def futures_fill(self, pos: Position, buy: bool, qty: Decimal, price: Decimal,
                     fee_rate: Decimal, ts: int) -> tuple[Decimal, Decimal]:
        """Apply a futures fill to `pos`; returns (realized PnL, fee)."""
        fee = q8(qty * price * fee_rate, ROUND_UP)
        signed = qty if buy else -qty
        pnl = ZERO
        if pos.amount and (pos.amount > 0) != buy:
            close = min(qty, abs(pos.amount))
            pnl = q8((price - pos.entry) * close * (1 if pos.amount > 0 else -1))
            release = pos.margin if close == abs(pos.amount) else q8(pos.margin * close / abs(pos.amount))
            pos.amount += close if buy else -close
            pos.margin -= release
            if pos.amount == 0:
                pos.entry = ZERO
            signed += -close if buy else close
        if signed:
            new_amount = pos.amount + signed
            pos.entry = q8((abs(pos.amount) * pos.entry + abs(signed) * price) / abs(new_amount))
            pos.amount = new_amount
            pos.margin += q8(abs(signed) * price / pos.leverage, ROUND_UP)
        self.wallet += pnl - fee
        deficit = -self.available
        if deficit > 0:  # a loss beyond the released margin: the position's margin, then insurance
            take = min(deficit, pos.margin)
            pos.margin -= take
            if deficit > take:
                pnl += deficit - take
                self.wallet += deficit - take
        self.pay_fee(self.settle, fee)
        self.realized_pnl += pnl
        pos.update_time = ts
        return pnl, fee

    def liquidate(self, pos: Position, price: Decimal, ts: int) -> tuple[Decimal, Decimal, Decimal]:
        """Close `pos` at `price`, losing its isolated wallet; returns (qty, PnL, clearance fee)."""
        qty = abs(pos.amount)
        pnl = q8((price - pos.entry) * pos.amount)
        fee = max(pos.margin + pnl, ZERO)
        self.wallet += pnl - fee
        self.pay_fee(self.settle, fee)
        self.realized_pnl += pnl
        pos.amount = pos.entry = pos.margin = ZERO
        pos.update_time = ts
        return qty, pnl, fee
