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
