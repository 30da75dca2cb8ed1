"""The fill reconciler's rules, on ccxt-shaped reports (no exchange: it does no I/O)."""

from planarpy.core.apply import apply_event, order_payload
from planarpy.core.instances import AssetInstance, State
from planarpy.core.market import Market
from planarpy.core.orders import Order, OrderType, Side
from planarpy.exchanges.venues import venue_for
from planarpy.modes.live import translate
from planarpy.modes.live.reconciler import PENDING_ORDERS, REPLY, REST, STREAM, Reconciler

M = Market("XRP/ETH", "XRPETH", "XRP", "ETH", None, "spot", 1.0, 1e-8, maker=0.001, taker=0.001)
PREFIX = translate.client_id_prefix("Test")
MINE = translate.new_client_id(PREFIX, 1_700_000_000_000, 1)
OTHER = translate.new_client_id(translate.client_id_prefix("Other"), 1_700_000_000_000, 1)


def setup(hand_orders: str = "adopt") -> tuple[Reconciler, State]:
    state = State("ETH", 10.0, assets={"XRP/ETH": AssetInstance(M)})
    return Reconciler(venue_for("binance"), PREFIX, hand_orders), state


def apply(rec: Reconciler, state: State, verdict, source: str) -> None:
    for kind, payload, _ in verdict.events:
        rec.applied(apply_event(state, kind, payload), source)


def place(state: State, cid: str = MINE, amount: float = 100.0) -> Order:
    order = Order(cid, "XRP/ETH", Side.BUY, OrderType.LIMIT, amount, 0.001, 0)
    apply_event(state, "order_created", order_payload(order))
    return state.assets["XRP/ETH"].orders[cid]


def trade(tid: str, exid: str = "1", cid: str = MINE, amount: float = 100.0, ts: int = 5) -> dict:
    return {"id": tid, "order": exid, "symbol": "XRP/ETH", "side": "buy", "amount": amount,
            "price": 0.001, "cost": amount * 0.001, "timestamp": ts,
            "fee": {"cost": 0.0, "currency": "ETH"}, "info": {"c": cid}}


def report(status: str = "open", exid: str = "1", cid: str = MINE, filled: float = 0.0,
           trades: list | None = None, ts: int = 5) -> dict:
    return {"id": exid, "clientOrderId": cid, "symbol": "XRP/ETH", "side": "buy",
            "type": "limit", "status": status, "amount": 100.0, "filled": filled,
            "price": 0.001, "cost": filled * 0.001, "timestamp": ts, "trades": trades or []}


def test_a_fill_is_applied_once_whichever_way_it_comes():
    """The same fill in the reply, on the orders stream and on the trades stream: once."""
    rec, state = setup()
    place(state)
    t = trade("9")
    v = rec.order(state, report("closed", filled=100.0, trades=[t]), REPLY)
    assert [k for k, _, _ in v.events] == ["trade_created"]  # the fill closes the order
    apply(rec, state, v, REPLY)
    assert rec.order(state, report("closed", filled=100.0, trades=[t]), STREAM).reason == \
        "closed here already"
    assert rec.trade(state, t, STREAM).reason == "duplicate: applied already"
    assert len(state.trades) == 1


def test_a_closed_order_with_fills_missing_asks_for_them_then_emulates():
    """An order reported closed with more filled than the fills known: the verdict says
    how much is missing; `close` then emulates exactly that once."""
    rec, state = setup()
    order = place(state)
    v = rec.order(state, report("closed", filled=100.0), REST)
    assert v.events == () and v.unfilled == 100.0 and v.order is order
    v = rec.close(state.assets["XRP/ETH"], order, report("closed", filled=100.0))
    assert [k for k, _, _ in v.events] == ["trade_emulated"]
    apply(rec, state, v, REST)
    assert order.filled == 100.0 and not order.is_open


def test_trades_of_unknown_orders_are_kept_once_and_not_for_ever():
    """Trades whose order is unknown here (not yet, or another account user's) are kept
    once each, for the newest PENDING_ORDERS orders only, and applied when it is known."""
    rec, state = setup()
    for k in range(PENDING_ORDERS + 50):
        for _ in range(2):  # a REST poll sees it again
            assert rec.trade(state, trade(f"t{k}", str(k), cid=""), REST).events == ()
    assert len(rec.pending) == PENDING_ORDERS and "0" not in rec.pending
    last = str(PENDING_ORDERS + 49)
    assert [t["id"] for t in rec.pending[last]] == [f"t{last}"]
    place(state)
    v = rec.order(state, report(exid=last), STREAM)  # its order becomes known: applied
    assert [k for k, _, _ in v.events] == ["trade_created"] and last not in rec.pending


def test_another_strategys_trade_is_not_kept():
    rec, state = setup()
    assert rec.trade(state, trade("1", cid=OTHER), STREAM).reason == "another strategy's order"
    assert rec.pending == {}


def test_open_orders_unknown_here_are_adopted_as_configured():
    """This strategy's prefix: adopted. By hand: adopted, or ignored with hand_orders =
    "ignore". Another strategy's: left alone. Each verdict says why."""
    for hand_orders, hand_adopted in (("adopt", True), ("ignore", False)):
        rec, state = setup(hand_orders)
        v = rec.order(state, report(exid="1", cid=MINE), STREAM)
        assert v.reason == "adopted: this strategy's order, not known here"
        assert [k for k, _, _ in v.events] == ["order_created"]
        v = rec.order(state, report(exid="2", cid="web_1"), REST)
        assert bool(v.events) is hand_adopted
        assert v.reason == ("adopted: placed by hand" if hand_adopted
                            else "placed by hand: ignored (hand_orders = 'ignore')")
        assert rec.order(state, report(exid="3", cid=OTHER), STREAM).reason == \
            "another strategy's order"


def test_an_order_closed_here_is_not_adopted_again():
    """A snapshot taken before a cancel was applied lists the order open: not adopted."""
    rec, state = setup()
    place(state)
    apply(rec, state, rec.order(state, report("canceled"), REPLY), REPLY)
    assert state.assets["XRP/ETH"].orders == {}
    assert rec.order(state, report("open"), REST).reason == "closed here already"


def test_an_unknown_order_that_a_report_shows_is_found():
    """An order of unknown outcome is open again when any report of it comes."""
    rec, state = setup()
    order = place(state)
    apply_event(state, "order_updated", {"id": MINE, "symbol": "XRP/ETH", "status": "unknown"})
    v = rec.trade(state, trade("7", amount=40.0), STREAM)
    assert [k for k, _, _ in v.events] == ["order_updated", "trade_created"]
    apply(rec, state, v, STREAM)
    assert order.status.value == "open" and order.filled == 40.0


def test_stale_balances_are_skipped():
    """A balance older than the newest fill is stale; of the same millisecond, a streamed
    one is stale while that fill came by REST only, a REST snapshot never is."""
    rec, state = setup()
    place(state)
    apply(rec, state, rec.trade(state, trade("1", ts=100), REST), REST)
    old = {"total": {"ETH": 1.0}, "timestamp": 99}
    same = {"total": {"ETH": 1.0}, "timestamp": 100}
    assert rec.balance(old, STREAM).reason == "stale: older than a fill applied"
    assert rec.balance(same, STREAM).events == ()
    assert rec.balance(same, REST).events
    rec.streamed([trade("1")])
    assert rec.balance(same, STREAM).events
