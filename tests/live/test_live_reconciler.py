"""The fill reconciler's rules, on ccxt-shaped reports (no exchange: it does no I/O)."""

import itertools

import pytest

from planarpy.core.apply import apply_event, order_payload
from planarpy.core.instances import AssetInstance, State
from planarpy.core.market import Market
from planarpy.core.orders import Order, OrderType, PositionSide, Side
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
        rec.applied(state, payload, apply_event(state, kind, payload), source)


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
    v = rec.close(state, state.assets["XRP/ETH"], order, report("closed", filled=100.0))
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
    assert rec.balance(state, old, STREAM).reason == "stale: older than a fill applied"
    assert rec.balance(state, same, STREAM).events == ()
    assert rec.balance(state, same, REST).events
    rec.streamed([trade("1")])
    assert rec.balance(state, same, STREAM).events


# ---- snapshots that show a fill already ---------------------------------------------
PERP = Market("XRP/USDT:USDT", "XRPUSDT", "XRP", "USDT", "USDT", "swap", 1.0, 1e-4,
              maker=0.0002, taker=0.0004, max_leverage=20.0, maintenance_margin_rate=0.005)


def perp_setup() -> tuple[Reconciler, State]:
    state = State("USDT", 0.0, assets={PERP.symbol: AssetInstance(PERP)})
    state.assets[PERP.symbol].leverage = 5.0
    rec = Reconciler(venue_for("binanceusdm"), PREFIX)
    apply(rec, state, rec.balance(state, {"total": {"USDT": 1000.0}}, REST), REST)
    rec.baseline()
    return rec, state


def perp_fill(rec, state, side: str, amount: float, price: float, fee: float, ts: int,
              tid: str) -> dict:
    order = Order(translate.new_client_id(PREFIX, ts, int(tid)), PERP.symbol, Side(side),
                  OrderType.LIMIT, amount, price, 0, leverage=5.0,
                  pos=PositionSide.LONG, reduce_only=side == "sell")
    apply_event(state, "order_created", order_payload(order))
    return {"id": tid, "order": tid, "symbol": PERP.symbol, "side": side, "amount": amount,
            "price": price, "cost": amount * price, "timestamp": ts,
            "fee": {"cost": fee, "currency": "USDT"}, "info": {"c": order.id}}


def perp_reports(rec, state, ts_fill: int, ts_snap: int):
    """An open of 20 at 1.0 (margin 4, fee 0.008), then its close at 1.1 (pnl 2, fee 0.0088):
    for each, (name, report) of the fill, the position and the wallet after it."""
    def open_():
        return [("fill", perp_fill(rec, state, "buy", 20.0, 1.0, 0.008, ts_fill, "1")),
                ("position", {"symbol": PERP.symbol, "side": "long", "contracts": 20.0,
                              "entryPrice": 1.0, "initialMargin": 4.0, "timestamp": ts_snap}),
                ("balance", {"total": {"USDT": 1000.0 - 0.008}, "timestamp": ts_snap})]

    def close():
        return [("fill", perp_fill(rec, state, "sell", 20.0, 1.1, 0.0088, ts_fill + 10, "2")),
                ("position", {"symbol": PERP.symbol, "side": "both", "contracts": 0.0,
                              "entryPrice": 0.0, "timestamp": ts_snap + 10}),
                ("balance", {"total": {"USDT": 1000.0 - 0.008 + 2.0 - 0.0088},
                             "timestamp": ts_snap + 10})]
    return open_, close


def take_report(rec, state, name: str, report: dict) -> None:
    verdict = {"fill": lambda: rec.trade(state, report, STREAM),
               "position": lambda: rec.position(state, report, STREAM),
               "balance": lambda: rec.balance(state, report, STREAM)}[name]()
    apply(rec, state, verdict, STREAM)


@pytest.mark.parametrize("ts_snap", [100, 103], ids=["same-ms", "snapshot-newer"])
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))),
                         ids=lambda o: "-".join("fpb"[k] for k in o))
def test_a_margin_fill_counts_once_whatever_comes_first(order, ts_snap):
    """An opening and a closing fill on margin, each with the position and the wallet
    updates that show it, applied in every order: the state ends as the exchange's (the
    position, its margin, cash = wallet less margins) with the trades recorded."""
    rec, state = perp_setup()
    ai = state.assets[PERP.symbol]
    open_, close = perp_reports(rec, state, 100, ts_snap)
    reports = open_()
    for k in order:
        take_report(rec, state, *reports[k])
    assert (ai.long.amount, ai.long.margin, ai.long.entry_price) == (20.0, 4.0, 1.0)
    assert state.cash == pytest.approx(1000.0 - 0.008 - 4.0, abs=1e-12)
    reports = close()
    for k in order:
        take_report(rec, state, *reports[k])
    assert not ai.long.is_open and not ai.short.is_open and not ai.orders
    assert state.cash == pytest.approx(1000.0 - 0.008 + 2.0 - 0.0088, abs=1e-12)
    assert len(state.trades) == 2


@pytest.mark.parametrize("balance_first", [True, False])
def test_a_spot_fill_counts_once_whatever_comes_first(balance_first):
    """A buy of 100 and the balance update that shows it, of the same millisecond."""
    rec, state = setup()
    apply(rec, state, rec.balance(state, {"total": {"ETH": 10.0, "XRP": 0.0}}, REST), REST)
    rec.baseline()
    place(state)
    steps = [lambda: rec.balance(state, {"total": {"ETH": 9.9, "XRP": 100.0}, "timestamp": 5},
                                 STREAM),
             lambda: rec.trade(state, trade("1"), STREAM)]
    for step in steps if balance_first else steps[::-1]:
        verdict = step()
        apply(rec, state, verdict, STREAM)
    ai = state.assets["XRP/ETH"]
    assert (state.cash, ai.balance, len(state.trades)) == (pytest.approx(9.9), 100.0, 1)


def test_a_balance_sent_before_a_fill_of_its_millisecond_does_not_hold_it():
    """The same millisecond is not enough: a balance update that changed nothing the state
    did not have (sent before the fill) does not hold it, and the fill counts; nor does
    one whose change goes the other way."""
    rec, state = setup()
    apply(rec, state, rec.balance(state, {"total": {"ETH": 10.0, "XRP": 0.0}}, REST), REST)
    rec.baseline()
    place(state)
    apply(rec, state, rec.balance(state, {"total": {"ETH": 10.0, "XRP": 0.0}, "timestamp": 5},
                                  STREAM), STREAM)
    verdict = rec.trade(state, trade("1"), STREAM)
    assert "in_balance" not in verdict.events[0][1]
    apply(rec, state, verdict, STREAM)
    assert (state.cash, state.assets["XRP/ETH"].balance) == (pytest.approx(9.9), 100.0)


def test_what_the_start_up_sync_found_holds_no_fill():
    """The sync's snapshots differ from the strategy's starting state by whatever the
    account held: none of that is taken for a fill to come."""
    rec, state = setup()
    apply(rec, state, rec.balance(state, {"total": {"ETH": 20.0, "XRP": 500.0},
                                          "timestamp": 5}, REST), REST)
    rec.baseline()
    place(state)
    verdict = rec.trade(state, trade("1"), STREAM)
    assert "in_balance" not in verdict.events[0][1]
