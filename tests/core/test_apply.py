import pytest

from planarpy.core.apply import apply_event, order_payload, trade_payload
from planarpy.core.instances import AssetInstance, State
from planarpy.core.market import Market
from planarpy.core.orders import Order, OrderType, PositionSide, Side, Trade, missing

M = Market("TST/USD", "TSTUSD", "TST", "USD", None, "spot", 0.01, 0.01, maker=0.001, taker=0.001)


def fresh():
    return State("USD", 1000.0, assets={"TST/USD": AssetInstance(M)})


def test_events_drive_the_accounting():
    """order_created then trade_created move cash exactly as the fill says."""
    st = fresh()
    o = Order("a", "TST/USD", Side.BUY, OrderType.LIMIT, 1.0, 100.0, 0)
    apply_event(st, "order_created", order_payload(o))
    assert st.committed > 0
    t = Trade("a", "TST/USD", Side.BUY, PositionSide.LONG, 1, 1.0, 100.0, 100.0, 0.1, "USD")
    effect = apply_event(st, "trade_created", trade_payload(t))
    assert effect.trade == t and st.cash == 899.9 and st.committed == 0


def test_duplicate_events_do_not_double_count():
    """A repeated order_created commits once; a trade for a closed order changes nothing."""
    st = fresh()
    o = Order("a", "TST/USD", Side.BUY, OrderType.LIMIT, 1.0, 100.0, 0)
    apply_event(st, "order_created", order_payload(o))
    committed = st.committed
    apply_event(st, "order_created", order_payload(o))
    assert st.committed == committed
    t = Trade("a", "TST/USD", Side.BUY, PositionSide.LONG, 1, 1.0, 100.0, 100.0, 0.1, "USD")
    apply_event(st, "trade_created", trade_payload(t))
    cash = st.cash
    apply_event(st, "trade_created", trade_payload(t))
    assert st.cash == cash


def test_events_without_state_change():
    """Errors and market data apply as no-ops."""
    st = fresh()
    assert apply_event(st, "order_error", {"reason": "x"}).trade is None
    assert st.cash == 1000.0


def test_missing_is_a_falsy_singleton():
    """`missing` is falsy, not None, and unique."""
    from planarpy.core.orders import _Missing
    assert not missing and missing is not None and _Missing() is missing
    assert repr(missing) == "missing"


PERP = Market("TST/USD:USD", "P", "TST", "USD", "USD", "swap", 0.1, 0.01, maker=0.0002,
              taker=0.0004, max_leverage=20.0, maintenance_margin_rate=0.005)


def test_a_position_update_moves_its_margin_out_of_the_cash():
    """The wallet holds a position's margin: a position update that grows it takes it from
    the cash, one that closes the position gives it back; a liquidation price the update
    does not give is reckoned from it, and the leverage is the asset's."""
    st = State("USD", 1000.0, assets={PERP.symbol: AssetInstance(PERP)})
    ai = st.assets[PERP.symbol]
    ai.leverage = 5.0
    apply_event(st, "position_updated", {"symbol": PERP.symbol, "side": "long", "amount": 10.0,
                                         "entry_price": 100.0, "margin": 200.0})
    assert st.cash == 800.0 and ai.long.leverage == 5.0
    assert ai.long.liquidation_price == pytest.approx((1000 - 200) / (10 * 0.995))
    apply_event(st, "position_updated", {"symbol": PERP.symbol, "side": "long", "amount": 0.0})
    assert st.cash == 1000.0 and not ai.long.is_open


def test_a_fill_event_says_which_parts_a_snapshot_shows():
    """trade_created's in_balance / in_position reach apply_fill (replay does the same)."""
    st = fresh()
    o = Order("a", "TST/USD", Side.BUY, OrderType.LIMIT, 1.0, 100.0, 0)
    apply_event(st, "order_created", order_payload(o))
    t = Trade("a", "TST/USD", Side.BUY, PositionSide.LONG, 1, 1.0, 100.0, 100.0, 0.1, "USD")
    effect = apply_event(st, "trade_created", {**trade_payload(t), "in_balance": True})
    assert effect.trade == t and st.cash == 1000.0 and st.assets["TST/USD"].balance == 0.0
    assert st.assets["TST/USD"].orders == {}


def test_the_throttle_window_stays_oldest_first_when_an_older_order_comes_in():
    """(Live) an order adopted or carried over after a restart was created before the
    orders counted since: its time goes in its place, so that the throttle, which reads
    the window as oldest first, sees the two orders of the last second, not one."""
    from planarpy.core.risk import RiskRules, throttle_denial
    st = fresh()
    st.risk.rules = RiskRules(max_orders_per_second=2)
    for oid, date in (("a", 10_000), ("b", 70_500), ("old", 5_000)):
        o = Order(oid, "TST/USD", Side.BUY, OrderType.LIMIT, 0.1, 50.0, date)
        apply_event(st, "order_created", order_payload(o))
    assert list(st.risk.orders) == [5_000, 10_000, 70_500]
    assert throttle_denial(st.risk, 71_000) is None  # one order in the last second
    o = Order("c", "TST/USD", Side.BUY, OrderType.LIMIT, 0.1, 50.0, 70_900)
    apply_event(st, "order_created", order_payload(o))
    assert throttle_denial(st.risk, 71_000).rule == "max_orders_per_second"


def test_carried_rate_windows_count_once():
    """risk_carried counts an earlier run's order and error times once: over a state that
    counted them already (a replay of the whole trace) it adds only what is missing, and
    two errors at one time stay two."""
    st = fresh()
    for ts in (1_000, 2_000):
        apply_event(st, "order_created", order_payload(
            Order(f"o{ts}", "TST/USD", Side.BUY, OrderType.LIMIT, 1.0, 100.0, ts)))
    for ts in (1_500, 1_500):
        apply_event(st, "order_error", {"ts": ts, "reason": "refused"})
    carried = {"orders": [1_000, 2_000], "errors": [1_500, 1_500, 3_000]}
    apply_event(st, "risk_carried", carried)
    apply_event(st, "risk_carried", carried)
    assert list(st.risk.orders) == [1_000, 2_000]
    assert list(st.risk.errors) == [1_500, 1_500, 3_000]
    fresh_state = fresh()
    apply_event(fresh_state, "risk_carried", carried)
    assert list(fresh_state.risk.errors) == [1_500, 1_500, 3_000]
