import attrs
import pytest

from planarpy.core import accounting as acc
from planarpy.core import orders
from planarpy.core.errors import ConfigError
from planarpy.core.instances import AssetInstance, State
from planarpy.core.market import Market
from planarpy.core.orders import Order, OrderStatus, OrderType, PositionSide, Side, Trade
from planarpy.core.positions import liquidation_price

SPOT = Market("TST/USD", "TSTUSD", "TST", "USD", None, "spot", 0.01, 0.01,
              min_amount=0.01, maker=0.001, taker=0.002)
PERP = Market("TST/USD:USD", "P", "TST", "USD", "USD", "swap", 0.1, 0.01,
              maker=0.0002, taker=0.0004, max_leverage=20.0, maintenance_margin_rate=0.005)


def setup(market=SPOT, cash=1000.0):
    ai = AssetInstance(market)
    return State("USD", cash, assets={market.symbol: ai}), ai


def order(side="buy", amount=1.0, price=100.0, pos="long", lev=1.0, oid="o1", **kw):
    return Order(oid, "x", Side(side), OrderType.LIMIT, amount, price, 0, pos=PositionSide(pos),
                 leverage=lev, **kw)


def trade(o, amount, price, fee_rate=0.001, market=SPOT):
    cost = amount * price * market.contract_size
    return Trade(o.id, market.symbol, o.side, o.pos, 1, amount, price, cost, cost * fee_rate,
                 "USD", o.leverage)


def test_buy_commits_cash_with_fee_and_fill_releases_it():
    """A limit buy commits value plus taker fee; filling it moves cash into the asset."""
    st, ai = setup()
    o = order(amount=2.0, price=100.0)
    acc.add_order(st, ai, o)
    assert st.committed == pytest.approx(200.0 * 1.002)
    assert st.free_cash == pytest.approx(1000 - 200.4)
    acc.apply_fill(st, ai, o, trade(o, 0.5, 100.0))
    assert st.committed == pytest.approx(150.0 * 1.002)
    assert st.cash == pytest.approx(1000 - 50 - 0.05)
    assert ai.balance == 0.5 and o.is_open
    acc.apply_fill(st, ai, o, trade(o, 1.5, 99.0))
    assert o.status is OrderStatus.CLOSED and not ai.orders and st.committed == 0
    assert st.cash == pytest.approx(1000 - 50.05 - 148.5 - 0.1485)
    assert ai.balance == 2.0 and st.fees == pytest.approx(0.05 + 0.1485)
    assert not st.active


def test_spot_sell_commits_base_and_cancel_releases():
    """A spot sell holds base units; cancelling hands them back."""
    st, ai = setup()
    ai.balance = 3.0
    o = order("sell", amount=2.0)
    assert acc.funds_error(st, ai, o) is None
    acc.add_order(st, ai, o)
    assert ai.committed == 2.0 and ai.free_balance == 1.0 and st.committed == 0
    assert "not enough TST: need 2, free 1" in acc.funds_error(st, ai, order("sell", 2.0, oid="o2"))
    acc.cancel_order(st, ai, o)
    assert ai.committed == 0 and o.status is OrderStatus.CANCELED and not ai.orders


def test_not_enough_cash_is_reported():
    """funds_error names what is needed and what is free."""
    st, ai = setup(cash=100.0)
    assert acc.funds_error(st, ai, order(amount=1.0, price=100.0)) == \
        "not enough cash: need 100.2 USD, free 100 USD"


def test_margin_open_increase_reduce_close():
    """Isolated margin: margin = notional / leverage, pnl realised on reduce, margin back on close."""
    st, ai = setup(PERP)
    o = order(amount=10, price=100, lev=5.0)
    acc.add_order(st, ai, o)
    assert st.committed == pytest.approx(1000 / 5 + 1000 * 0.0004)
    change = acc.apply_fill(st, ai, o, trade(o, 10, 100, 0.0004, PERP))
    assert change is acc.PositionChange.OPENED
    assert ai.long.margin == pytest.approx(200) and st.cash == pytest.approx(1000 - 200 - 0.4)
    assert ai.long.liquidation_price == pytest.approx((1000 - 200) / (10 * 0.995))
    o2 = order(amount=10, price=110, lev=5.0, oid="o2")
    acc.add_order(st, ai, o2)
    assert acc.apply_fill(st, ai, o2, trade(o2, 10, 110, 0.0004, PERP)) is acc.PositionChange.UPDATED
    assert ai.long.entry_price == pytest.approx(105) and ai.long.margin == pytest.approx(420)
    cash_before = st.cash
    o3 = order("sell", amount=20, price=120, lev=5.0, oid="o3")
    acc.add_order(st, ai, o3)
    assert ai.committed == 20 and not o3.commits_quote
    assert acc.apply_fill(st, ai, o3, trade(o3, 20, 120, 0.0004, PERP)) is acc.PositionChange.CLOSED
    assert st.cash == pytest.approx(cash_before + 420 + (120 - 105) * 20 - 2400 * 0.0004)
    assert not ai.long.is_open and ai.committed == 0 and not st.active


def test_one_way_isolated_margin_refuses_opposite_side():
    """With a long open, opening a short is refused until the long is closed."""
    st, ai = setup(PERP)
    ai.long.amount = 1.0
    assert "close the long position" in acc.funds_error(st, ai, order("sell", pos="short"))


def test_reduce_more_than_open_is_refused():
    """A reducing order cannot exceed the open position."""
    st, ai = setup(PERP)
    ai.long.amount = 1.0
    assert "only 1 is open" in acc.funds_error(st, ai, order("sell", amount=2.0))


def test_liquidation_costs_the_whole_margin():
    """Liquidation closes at the liquidation price and leaves cash where opening left it."""
    st, ai = setup(PERP)
    o = order(amount=10, price=100, lev=10.0)
    acc.add_order(st, ai, o)
    acc.apply_fill(st, ai, o, trade(o, 10, 100, 0.0004, PERP))
    after_open = st.cash
    t = acc.liquidation_trade(ai, PositionSide.LONG, 5, "liq-1")
    assert t.price == pytest.approx(900 / 9.95)
    assert t.fee == pytest.approx(100 + (900 / 9.95 - 100) * 10)
    assert acc.liquidate(st, ai, t) is acc.PositionChange.CLOSED
    assert st.cash == pytest.approx(after_open) and not ai.long.is_open


def test_liquidation_price_short():
    """Short liquidation: (entry*q + margin) / (q*(1+mmr))."""
    assert liquidation_price(PositionSide.SHORT, 100, 10, 100, 0.005) == pytest.approx(1100 / 10.05)


def test_leverage_rules():
    """Leverage is refused on spot, out of range, and while a position is open."""
    _, spot = setup()
    _, perp = setup(PERP)
    assert "spot market" in acc.leverage_error(spot, 2)
    assert "outside [1, 20]" in acc.leverage_error(perp, 50)
    assert acc.leverage_error(perp, 5) is None
    perp.long.amount = 1
    assert "while a position is open" in acc.leverage_error(perp, 5)


GET = attrs.evolve(SPOT, fee_side="get")


@pytest.mark.parametrize("side_, buy, sell", [("get", "TST", "USD"), ("give", "USD", "TST"),
                                             ("quote", "USD", "USD"), ("base", "TST", "TST")])
def test_fee_currency_follows_the_markets_fee_side(side_, buy, sell):
    """ccxt's feeSide: received asset, given asset, always quote or always base; a
    derivative pays in its settle currency whatever the side."""
    m = attrs.evolve(SPOT, fee_side=side_)
    assert acc.fee_currency(m, Side.BUY) == buy and acc.fee_currency(m, Side.SELL) == sell
    assert acc.fee_currency(attrs.evolve(PERP, fee_side=side_), Side.BUY) == "USD"
    t = acc.new_trade(AssetInstance(m), order(amount=6.0), 6.0, 100.0, taker=False, date=1)
    assert (t.fee, t.fee_currency) == ((0.006, "TST") if buy == "TST" else (0.6, "USD"))
    assert (t.cost, t.taker, t.id) == (600.0, False, "o1-0")


def test_a_simulated_fill_is_the_trade_the_constructor_makes():
    """new_trade builds its Trade through the slots (orders.new_fill): every field set, in
    the class's order, and the trade as frozen, equal and hashable as Trade(...) makes it."""
    values = ("o1", "TST/USD", Side.SELL, PositionSide.LONG, 7, 2.0, 100.0, 200.0, 0.2, "USD",
              1.0, False, "o1-0")
    assert tuple(f.name for f in attrs.fields(Trade)) == orders._FIELDS
    t = orders.new_fill(*values)
    assert type(t) is Trade and t == Trade(*values) and hash(t) == hash(Trade(*values))
    assert attrs.astuple(t, recurse=False) == values
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.amount = 3.0


def test_a_buy_on_a_received_asset_fee_market_pays_in_base():
    """Binance spot: after buying 6 at 100 you hold 5.994 and paid exactly 600 of cash; the
    buy reserved its value only (the venue locks no fee in the quote)."""
    st, ai = setup(GET)
    o = order(amount=6.0, price=100.0)
    assert acc.required(ai, o) == 600.0
    acc.add_order(st, ai, o)
    acc.apply_fill(st, ai, o, acc.new_trade(ai, o, 6.0, 100.0, taker=False, date=1))
    assert ai.balance == 5.994 and st.cash == 400.0 and st.committed == 0
    assert st.fees == pytest.approx(0.6)


def test_a_fee_in_a_fee_token_leaves_cash_and_holdings_alone():
    """A fee the venue takes in another currency (BNB) moves neither cash nor the base."""
    st, ai = setup(GET)
    o = order(amount=6.0, price=100.0)
    acc.add_order(st, ai, o)
    acc.apply_fill(st, ai, o, Trade(o.id, GET.symbol, o.side, o.pos, 1, 6.0, 100.0, 600.0,
                                    0.0015, "BNB"))
    assert ai.balance == 6.0 and st.cash == 400.0 and st.fees == 0.0


def test_a_bad_fee_side_is_refused():
    with pytest.raises(ConfigError, match="fee side 'bnb' of TST/USD is not one of get, give"):
        attrs.evolve(SPOT, fee_side="bnb")


def test_a_fill_a_balance_shows_moves_the_order_not_the_money():
    """in_balance (spot): the order fills and the trade is kept, cash and holdings stay
    where the balance snapshot set them; the fee still counts as paid."""
    st, ai = setup()
    o = order(amount=2.0, price=100.0)
    acc.add_order(st, ai, o)
    acc.apply_fill(st, ai, o, trade(o, 2.0, 100.0), in_balance=True)
    assert (st.cash, ai.balance, st.committed) == (1000.0, 0.0, 0.0)
    assert not o.is_open and o.filled == 2.0 and st.trades and st.fees == pytest.approx(0.2)


def test_a_margin_fill_moves_only_the_parts_no_snapshot_shows():
    """On margin a fill has a position part (amount, entry, margin and the cash the margin
    takes) and a wallet part (fee, realized pnl); a flag leaves out the part shown."""
    def opened(**shown):
        st, ai = setup(PERP)
        o = order(amount=10, price=100, lev=5.0)
        acc.add_order(st, ai, o)
        acc.apply_fill(st, ai, o, trade(o, 10, 100, 0.0004, PERP), **shown)
        return st, ai
    st, ai = opened(in_balance=True)
    assert ai.long.amount == 10 and ai.long.margin == pytest.approx(200)
    assert st.cash == pytest.approx(1000 - 200)  # the margin, not the fee
    st, ai = opened(in_position=True)
    assert ai.long.amount == 0 and st.cash == pytest.approx(1000 - 0.4)  # the fee only
    st, ai = opened(in_position=True, in_balance=True)
    assert ai.long.amount == 0 and st.cash == 1000.0
    st, ai = opened()
    o = order("sell", amount=4, price=110, lev=5.0, oid="o2")
    acc.add_order(st, ai, o)
    cash = st.cash
    acc.apply_fill(st, ai, o, trade(o, 4, 110, 0.0004, PERP), in_position=True)
    assert ai.long.amount == 10 and st.cash == pytest.approx(cash + 4 * 10 - 440 * 0.0004)
