"""Conditional orders on the local exchange through the unmodified ccxt clients: spot's
STOP_LOSS / TAKE_PROFIT types and USD-M's algo orders, fired by the replayed trades."""

from __future__ import annotations

import asyncio
import json

import ccxt
import ccxt.pro
import pytest

from planarpy.data.sample import sample_markets
from planarpy.localexchange import Clock, point_ccxt

from livekit import raw_client, started, until, user_streams
from tapekit import T0, by_minute

SPOT = "XRP/ETH"
PERP = "XRP/USDT:USDT"
MIN = 60_000



def test_spot_stop_loss_waits_then_sells_at_the_market(spot_lx):
    ex = raw_client(spot_lx)
    o = ex.create_order(SPOT, "market", "sell", 100, None, {"stopLossPrice": 0.0015 - 2e-5})
    # ccxt calls it a market order with a trigger price; the venue's type is in `info`
    assert o["info"]["type"] == "STOP_LOSS" and o["type"] == "market"
    assert o["status"] == "open" and o["triggerPrice"] == 0.00148
    (listed,) = ex.fetch_open_orders(SPOT)
    assert listed["info"]["isWorking"] is False and listed["info"]["stopPrice"] == "0.00148000"
    assert ex.fetch_balance()["XRP"]["used"] == 100
    spot_lx.step(MIN)  # 0.00152: nothing
    spot_lx.step(MIN)  # 0.00149: still above 0.00148
    assert ex.fetch_order(o["id"], SPOT)["status"] == "open"
    spot_lx.step(MIN)  # 0.00146: fires, sells into the book around 0.00146
    done = ex.fetch_order(o["id"], SPOT)
    assert done["status"] == "closed" and done["filled"] == 100
    assert done["info"]["type"] == "STOP_LOSS"
    assert done["average"] < 0.00148
    (t,) = ex.fetch_my_trades(SPOT)
    assert t["order"] == o["id"] and t["takerOrMaker"] == "taker"
    assert ex.fetch_balance()["XRP"]["used"] == 0


def test_spot_take_profit_limit_fires_and_rests_as_a_limit(spot_lx):
    ex = raw_client(spot_lx)
    o = ex.create_order(SPOT, "limit", "sell", 100, 0.00153, {"takeProfitPrice": 0.00151})
    assert o["info"]["type"] == "TAKE_PROFIT_LIMIT"
    spot_lx.step(MIN)  # 0.00152 fires it: a sell limit at 0.00153 above the market rests
    f = ex.fetch_order(o["id"], SPOT)
    assert f["status"] == "open" and f["info"]["isWorking"] is True and f["filled"] == 0
    assert f["price"] == 0.00153
    assert ex.cancel_order(o["id"], SPOT)["status"] == "canceled"
    assert ex.fetch_balance()["XRP"]["used"] == 0


def test_spot_stop_that_would_fire_at_once_is_refused(spot_lx):
    ex = raw_client(spot_lx)
    with pytest.raises(ccxt.BaseError, match="Stop price would trigger immediately"):
        ex.create_order(SPOT, "market", "sell", 100, None, {"stopLossPrice": 0.0015})
    assert ex.fetch_open_orders(SPOT) == []


def test_spot_stop_cancelled_before_it_fires_releases_its_hold(spot_lx):
    ex = raw_client(spot_lx)
    o = ex.create_order(SPOT, "market", "buy", 100, None, {"stopLossPrice": 0.00151})
    assert o["info"]["type"] == "STOP_LOSS" and ex.fetch_balance()["ETH"]["used"] == pytest.approx(0.151)
    ex.cancel_order(o["id"], SPOT)
    assert ex.fetch_balance()["ETH"]["used"] == 0
    spot_lx.step(MIN)  # 0.00152 would have fired it
    assert ex.fetch_my_trades(SPOT) == []


def test_spot_buy_stop_fires_on_a_rise(spot_lx):
    ex = raw_client(spot_lx)
    o = ex.create_order(SPOT, "market", "buy", 100, None, {"stopLossPrice": 0.00151})
    spot_lx.step(MIN)  # 0.00152
    done = ex.fetch_order(o["id"], SPOT)
    assert done["status"] == "closed" and done["filled"] == 100 and done["average"] > 0.00151
    assert ex.fetch_balance()["ETH"]["used"] == 0


def long_position(ex, qty=100):
    ex.create_order(PERP, "market", "buy", qty)
    return ex.fetch_positions()[0]["contracts"]


def test_usdm_stop_market_is_an_algo_order_that_closes_the_position(perp_lx):
    ex = raw_client(perp_lx, "binanceusdm")
    long_position(ex)
    o = ex.create_order(PERP, "market", "sell", 100, None,
                        {"stopLossPrice": 0.99, "reduceOnly": True})
    assert o["info"]["orderType"] == "STOP_MARKET" and o["info"]["algoType"] == "CONDITIONAL"
    assert o["status"] == "open" and o["triggerPrice"] == 0.99
    (listed,) = ex.fetch_open_orders(PERP, params={"trigger": True})
    assert listed["id"] == o["id"]
    assert ex.fetch_open_orders(PERP) == []  # not a regular order until it fires
    for _ in range(4):  # 1.02, 1.05, 1.03, 1.00: above the stop
        perp_lx.step(MIN)
    assert ex.fetch_positions()[0]["contracts"] == 100
    perp_lx.step(MIN)  # 0.97: fires
    assert ex.fetch_positions() == [] or ex.fetch_positions()[0]["contracts"] == 0
    algo = ex.fetch_order(o["id"], PERP, params={"trigger": True})
    assert algo["info"]["algoStatus"] == "FINISHED" and algo["info"]["actualOrderId"]
    (sell,) = [t for t in ex.fetch_my_trades(PERP) if t["side"] == "sell"]
    assert str(sell["order"]) == algo["info"]["actualOrderId"]
    child = ex.fetch_order(algo["info"]["actualOrderId"], PERP)
    assert child["clientOrderId"] == o["clientOrderId"] and child["reduceOnly"] is True


def test_usdm_trailing_stop_follows_the_rally_then_fires(perp_lx):
    ex = raw_client(perp_lx, "binanceusdm")
    long_position(ex)
    o = ex.create_order(PERP, "market", "sell", 100, None,
                        {"trailingPercent": 2, "reduceOnly": True})
    assert o["info"]["orderType"] == "TRAILING_STOP_MARKET" and float(o["info"]["callbackRate"]) == 2
    for _ in range(3):  # 1.02, 1.05 (best), 1.03: the stop follows to 1.05 x 0.98 = 1.029
        perp_lx.step(MIN)
    algo = ex.fetch_order(o["id"], PERP, params={"trigger": True})
    assert algo["info"]["algoStatus"] == "NEW" and algo["triggerPrice"] == 1.029
    perp_lx.step(MIN)  # 1.00 <= 1.029: fires
    algo = ex.fetch_order(o["id"], PERP, params={"trigger": True})
    assert algo["info"]["algoStatus"] == "FINISHED"
    assert not [p for p in ex.fetch_positions() if p["contracts"]]


def test_usdm_take_profit_cancel_and_immediate_trigger(perp_lx):
    ex = raw_client(perp_lx, "binanceusdm")
    long_position(ex)
    with pytest.raises(ccxt.BaseError, match="would immediately trigger"):
        ex.create_order(PERP, "market", "sell", 100, None, {"takeProfitPrice": 0.99})
    tp = ex.create_order(PERP, "market", "sell", 100, None,
                         {"takeProfitPrice": 1.10, "reduceOnly": True})
    assert tp["info"]["orderType"] == "TAKE_PROFIT_MARKET"
    c = ex.cancel_order(tp["id"], PERP, params={"trigger": True})
    assert c["id"] == tp["id"]
    assert ex.fetch_open_orders(PERP, params={"trigger": True}) == []
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(tp["id"], PERP, params={"trigger": True})


def test_usdm_algo_updates_stream_to_watch_orders(perp_lx):
    """ALGO_UPDATE reaches ccxt.pro: NEW, then TRIGGERED and FINISHED as the stop fires, and
    the order it placed reports its fill (ORDER_TRADE_UPDATE). The client's order handler
    is observed (wrapped, not replaced) to see every update in the order it came."""
    rest = raw_client(perp_lx, "binanceusdm")
    long_position(rest)

    async def main():
        ex = point_ccxt(ccxt.pro.binanceusdm({"apiKey": perp_lx.api_key,
                                              "secret": perp_lx.secret}), perp_lx.url)
        seen = []
        handle = ex.handle_order

        def observe(client, message):
            handle(client, message)
            seen.append((str(message.get("i") or message.get("aid")), message.get("X")))

        ex.handle_order = observe
        try:
            await ex.load_markets()
            watch = await started(ex, ex.watch_orders(PERP), lambda: user_streams(perp_lx))
            o = await ex.create_order(PERP, "market", "sell", 100, None,
                                      {"stopLossPrice": 0.99, "reduceOnly": True})
            for _ in range(5):  # 1.02, 1.05, 1.03, 1.00, then 0.97 fires it
                perp_lx.step(MIN)
            await until(lambda: (o["id"], "FINISHED") in seen, timeout=10)
            watch.cancel()
            return o, seen
        finally:
            await ex.close()

    o, seen = asyncio.run(main())
    algo = [x for i, x in seen if i == o["id"]]
    assert algo == ["NEW", "TRIGGERED", "FINISHED"]
    child = [x for i, x in seen if i != o["id"]]
    assert child[0] == "NEW" and child[-1] == "FILLED"


def _order(type_, side="sell", trigger=0.0, price=0.0, **kw):
    from planarpy.core.orders import Order, OrderType, Side
    return Order("x", "", Side(side), OrderType(type_), 100.0, price or trigger, 0,
                 trigger=trigger, **kw)


@pytest.mark.parametrize("type_, trigger, price, venue_type", [
    ("stop_market", 0.00148, 0.0, "STOP_LOSS"),
    ("stop_limit", 0.00148, 0.00147, "STOP_LOSS_LIMIT"),
    ("take_profit_market", 0.00151, 0.0, "TAKE_PROFIT"),
    ("take_profit_limit", 0.00151, 0.00152, "TAKE_PROFIT_LIMIT"),
])
def test_binance_venue_places_spot_conditionals_natively(spot_lx, type_, trigger, price,
                                                          venue_type):
    """What the venue says to send makes the exchange hold the order as its own type."""
    from planarpy.exchanges.venues import venue_for
    ex = raw_client(spot_lx)
    native = venue_for("binance").native(_order(type_, trigger=trigger, price=price))
    o = ex.create_order(SPOT, native.type, "sell", 100, native.price, native.params)
    assert o["info"]["type"] == venue_type and o["triggerPrice"] == trigger


@pytest.mark.parametrize("trail, activation, venue_type, delta", [
    (0.02, 0.0, "STOP_LOSS", 200),
    (0.001, 0.0, "STOP_LOSS", 10),
    (0.2, 0.0, "STOP_LOSS", 2000),
    (0.015, 0.00153, "TAKE_PROFIT", 150),  # trails once the price rises to 0.00153
])
def test_binance_venue_places_spot_trailing_stops_natively(spot_lx, trail, activation,
                                                            venue_type, delta):
    from planarpy.exchanges.venues import venue_for
    ex = raw_client(spot_lx)
    native = venue_for("binance").native(
        _order("trailing_stop_market", trail=trail, trail_pct=True, activation=activation),
        ex.market(SPOT))
    o = ex.create_order(SPOT, native.type, "sell", 100, native.price, native.params)
    assert o["info"]["type"] == venue_type and o["info"]["trailingDelta"] == delta
    assert float(o["info"].get("stopPrice") or 0) == activation


def test_binance_venue_emulates_what_the_exchange_cannot_hold(perp_lx):
    from planarpy.exchanges.venues import venue_for
    spot, usdm = venue_for("binance"), venue_for("binanceusdm")
    trailing = _order("trailing_stop_market", trail=0.02, trail_pct=True)
    # spot trails by whole basis points within TRAILING_DELTA (10 to 2000) only
    for trail, pct in ((0.0002, True), (0.0005, True), (0.25, True), (0.00015, True),
                       (0.0001, False)):
        assert spot.native(_order("trailing_stop_market", trail=trail, trail_pct=pct)) is None
    narrow = {"info": {"filters": [{"filterType": "TRAILING_DELTA", "minTrailingBelowDelta": 10,
                                    "maxTrailingBelowDelta": 150, "minTrailingAboveDelta": 10,
                                    "maxTrailingAboveDelta": 2000}]}}
    assert spot.native(trailing, narrow) is None  # the market's own filter counts
    assert spot.native(_order("trailing_stop_market", side="buy", trail=0.02, trail_pct=True),
                       narrow) is not None  # a buy stop trails from above
    assert usdm.native(_order("trailing_stop_market", trail=0.5, trail_pct=False)) is None
    assert usdm.native(_order("trailing_stop_market", trail=0.2, trail_pct=True)) is None
    assert usdm.native(_order("trailing_stop_market", trail=0.0125, trail_pct=True)) is None
    assert venue_for("kraken").native(_order("stop_market", trigger=1.0)) is None
    ex = raw_client(perp_lx, "binanceusdm")
    long_position(ex)
    native = usdm.native(_order("trailing_stop_market", trail=0.02, trail_pct=True,
                                activation=1.04))
    o = ex.create_order(PERP, native.type, "sell", 100, native.price,
                        {**native.params, "reduceOnly": True})
    info = o["info"]
    assert info["orderType"] == "TRAILING_STOP_MARKET" and float(info["callbackRate"]) == 2
    assert float(info["activatePrice"]) == 1.04
    assert ex.fetch_order(o["id"], PERP, params=usdm.conditional_params(trailing))["id"] == o["id"]


@pytest.mark.parametrize("type_, trigger, price, algo_type", [
    ("stop_market", 0.99, 0.0, "STOP_MARKET"),
    ("stop_limit", 0.99, 0.98, "STOP"),
    ("take_profit_market", 1.04, 0.0, "TAKE_PROFIT_MARKET"),
    ("take_profit_limit", 1.04, 1.05, "TAKE_PROFIT"),
])
def test_binance_venue_places_usdm_conditionals_as_algo_orders(perp_lx, type_, trigger, price,
                                                                algo_type):
    """What the venue says to send makes USD-M hold an algo order of the type; the venue
    reads its REST reports (open, then fired with the order it placed)."""
    from planarpy.exchanges.venues import venue_for
    usdm = venue_for("binanceusdm")
    ex = raw_client(perp_lx, "binanceusdm")
    long_position(ex)
    order = _order(type_, trigger=trigger, price=price)
    native = usdm.native(order)
    o = ex.create_order(PERP, native.type, "sell", 100, native.price,
                        {**native.params, "reduceOnly": True})
    found = ex.fetch_order(o["id"], PERP, params=usdm.conditional_params(order))
    report = usdm.algo_report(found)
    assert (report.status, report.child, usdm.conditional(found).kind) == ("NEW", "", type_)
    assert usdm.conditional(found).trigger == trigger
    assert o["info"]["orderType"] == algo_type and usdm.algo_params(True) == {"trigger": True}
    assert usdm.algo_report(ex.fetch_open_orders(PERP, params={"trigger": True})[0]) == report
    for _ in range(5):  # 1.02, 1.05, 1.03, 1.00, 0.97: fires either way
        perp_lx.step(MIN)
    fired = usdm.algo_report(ex.fetch_order(o["id"], PERP, params={"trigger": True}))
    assert fired.status in ("TRIGGERED", "FINISHED") and fired.child and fired.ended is None
    assert venue_for("binance").algo_params(False) is None  # spot lists them with the rest


def test_spot_cancel_replace_moves_a_stop_with_no_trade_in_between(spot_lx):
    """ccxt's edit_order on spot is Binance's cancelReplace: the old stop is cancelled and
    the new one placed in one step; the user stream shows the new stop's NEW right after
    the old one's CANCELED, with no trade report between them, and the base stays held."""
    ex = raw_client(spot_lx)
    events = []
    spot_lx.engine.listeners.append(
        lambda ev: events.append(ev.payload) if hasattr(ev, "payload") else None)
    old = ex.create_order(SPOT, "market", "sell", 100, None, {"stopLossPrice": 0.00145})
    new = ex.edit_order(old["id"], SPOT, "STOP_LOSS", "sell", 100, None,
                        {"triggerPrice": 0.00148})
    assert new["id"] != old["id"] and new["triggerPrice"] == 0.00148
    assert ex.fetch_order(old["id"], SPOT)["status"] == "canceled"
    reports = [(e["i"], e["x"]) for e in events if e.get("e") == "executionReport"]
    assert reports == [(int(old["id"]), "NEW"), (int(old["id"]), "CANCELED"),
                       (int(new["id"]), "NEW")]
    assert ex.fetch_balance()["XRP"]["used"] == 100
    for _ in range(3):  # 0.00152, 0.00149, 0.00146: fires the new stop (not the old at 0.00145)
        spot_lx.step(MIN)
    assert ex.fetch_order(new["id"], SPOT)["status"] == "closed"


def test_spot_cancel_replace_refused_after_the_cancel_says_so(spot_lx):
    ex = raw_client(spot_lx)
    old = ex.create_order(SPOT, "market", "sell", 100, None, {"stopLossPrice": 0.00145})
    with pytest.raises(ccxt.BaseError, match="cancel-replace partially failed") as e:
        ex.edit_order(old["id"], SPOT, "STOP_LOSS", "sell", 100, None, {"triggerPrice": 0.0016})
    data = json.loads(str(e.value).split(" ", 1)[1])["data"]  # which part failed, as Binance says
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert ex.fetch_order(old["id"], SPOT)["status"] == "canceled"


def test_spot_cancel_replace_whose_cancel_fails_places_nothing(spot_lx):
    """STOP_ON_FAILURE: the old order is no longer open (cancelled already), so the new
    one is not tried: -2022, and the exchange says which part did what."""
    ex = raw_client(spot_lx)
    old = ex.create_order(SPOT, "market", "sell", 100, None, {"stopLossPrice": 0.00145})
    ex.cancel_order(old["id"], SPOT)
    with pytest.raises(ccxt.BaseError, match="cancel-replace failed") as e:
        ex.edit_order(old["id"], SPOT, "STOP_LOSS", "sell", 100, None, {"triggerPrice": 0.0014})
    data = json.loads(str(e.value).split(" ", 1)[1])["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "NOT_ATTEMPTED")
    assert ex.fetch_open_orders(SPOT) == []


# ---- spot trailing stops (trailingDelta) ---------------------------------------------------------
def test_spot_trailing_stop_follows_the_rally_then_fires(spot_lx):
    """ccxt's unified trailingPercent on spot is a STOP_LOSS with trailingDelta in basis
    points; it trails from the price at placement (0.0015), follows 0.00152 and fires on a
    fall of 3% from there (0.00152 x 0.97 = 0.0014744), not before."""
    ex = raw_client(spot_lx)
    (flt,) = [f for f in ex.market(SPOT)["info"]["filters"] if f["filterType"] == "TRAILING_DELTA"]
    assert flt["minTrailingBelowDelta"] == 10 and flt["maxTrailingBelowDelta"] == 2000
    o = ex.create_order(SPOT, "market", "sell", 100, None,
                        {"trailingPercent": 3, "stopLossOrTakeProfit": "stopLoss"})
    assert o["info"]["type"] == "STOP_LOSS" and o["info"]["trailingDelta"] == 300
    assert o["info"]["trailingTime"] == T0 and "stopPrice" not in o["info"]
    assert ex.fetch_balance()["XRP"]["used"] == 100
    spot_lx.step(MIN)  # 0.00152: the best so far
    spot_lx.step(MIN)  # 0.00149: 2% under it, not 3%
    f = ex.fetch_order(o["id"], SPOT)
    assert f["status"] == "open" and f["info"]["isWorking"] is False
    spot_lx.step(MIN)  # 0.00146 <= 0.0014744: fires, sells at the market
    done = ex.fetch_order(o["id"], SPOT)
    assert done["status"] == "closed" and done["filled"] == 100
    assert done["info"]["type"] == "STOP_LOSS" and done["info"]["trailingDelta"] == 300
    assert ex.fetch_balance()["XRP"]["used"] == 0


@pytest.fixture
def dip_then_rally_lx(local_exchange_factory):
    """XRP/ETH: 0.0015 (history), then 0.00146, 0.00154, 0.00158, 0.00155, 0.00150."""
    m = sample_markets("binance")[SPOT]
    return local_exchange_factory(markets=[m], clock=Clock(start=T0), origin=T0, data={
        SPOT: by_minute([0.0015, 0.00146, 0.00154, 0.00158, 0.00155, 0.0015], 500.0)})


def test_spot_trailing_take_profit_waits_for_its_activation_price(dip_then_rally_lx):
    """A sell trailing from an activation price above the market is a TAKE_PROFIT (its stop
    condition is a rise to stopPrice): the dip of 2.7% before it is reached fires nothing;
    from 0.00154 it trails, follows 0.00158 and fires at 0.0015 (under 0.00158 x 0.98)."""
    lx = dip_then_rally_lx
    ex = raw_client(lx)
    o = ex.create_order(SPOT, "market", "sell", 100, None,
                        {"trailingPercent": 2, "trailingTriggerPrice": 0.00153,
                         "stopLossOrTakeProfit": "takeProfit"})
    assert o["info"]["type"] == "TAKE_PROFIT" and o["info"]["stopPrice"] == "0.00153000"
    assert o["info"]["trailingDelta"] == 200 and o["info"]["trailingTime"] == -1
    lx.step(MIN)  # 0.00146: not armed, so no fire
    assert ex.fetch_order(o["id"], SPOT)["info"]["trailingTime"] == -1
    lx.step(MIN)  # 0.00154: armed
    f = ex.fetch_order(o["id"], SPOT)
    assert f["status"] == "open" and f["info"]["trailingTime"] == T0 + 2 * MIN
    lx.step(MIN)  # 0.00158: the best
    lx.step(MIN)  # 0.00155: 1.9% under it
    assert ex.fetch_order(o["id"], SPOT)["status"] == "open"
    lx.step(MIN)  # 0.0015: fires
    done = ex.fetch_order(o["id"], SPOT)
    assert done["status"] == "closed" and done["filled"] == 100


@pytest.mark.parametrize("params, code", [
    ({"type": "STOP_LOSS", "trailingDelta": "5"}, "-1013"),  # under the TRAILING_DELTA filter
    ({"type": "STOP_LOSS", "trailingDelta": "2001"}, "-1013"),  # over it
    ({"type": "STOP_LOSS", "trailingDelta": "1.5"}, "-1100"),  # whole basis points only
    ({"type": "LIMIT", "timeInForce": "GTC", "price": "0.0014", "trailingDelta": "100"},
     "-1106"),  # not a conditional type
    ({"type": "STOP_LOSS"}, "-1102"),  # neither stopPrice nor trailingDelta
    # a trailing sell STOP_LOSS activates at or below its stopPrice: 0.00151 is met now
    ({"type": "STOP_LOSS", "trailingDelta": "100", "stopPrice": "0.00151"},
     "Stop price would trigger immediately"),
])
def test_spot_trailing_stop_refusals(spot_lx, params, code):
    ex = raw_client(spot_lx)
    with pytest.raises(ccxt.BaseError, match=code):
        ex.private_post_order({"symbol": "XRPETH", "side": "SELL", "quantity": "100", **params})
    assert ex.fetch_open_orders(SPOT) == []


def test_spot_trailing_stop_reports_its_delta_in_execution_reports(spot_lx):
    """executionReport: `d` the delta from NEW on, `D` the time it started to trail."""
    reports = []
    spot_lx.engine.listeners.append(
        lambda ev: reports.append(getattr(ev, "payload", None)))
    ex = raw_client(spot_lx)
    o = ex.create_order(SPOT, "market", "sell", 100, None,
                        {"trailingPercent": 3, "stopLossOrTakeProfit": "stopLoss"})
    for _ in range(3):
        spot_lx.step(MIN)
    mine = [r for r in reports if isinstance(r, dict) and r.get("e") == "executionReport"
            and r.get("i") == int(o["id"])]
    assert mine[0]["x"] == "NEW" and mine[-1]["x"] == "TRADE"
    assert all(r["d"] == 300 and r["D"] == T0 for r in mine)
    assert mine[-1]["X"] == "FILLED"
