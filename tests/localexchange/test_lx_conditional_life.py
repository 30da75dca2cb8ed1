"""The life of the local exchange's conditional orders after they fire, as Binance reports it:
a USD-M algo is FINISHED the moment the order it placed ends, and leaves the orders a trade
looks at; `workingTime` / `W` say when an order started working, not when it last changed;
a fired spot stop-limit keeps its time in force; algo parameters Binance refuses are refused."""

from __future__ import annotations

import ccxt
import pytest

from planarpy.localexchange.engine import UserEvent

from livekit import raw_client
from tapekit import T0

SPOT = "XRP/ETH"
PERP = "XRP/USDT:USDT"
MIN = 60_000



def reports(lx, event):
    """Every user-data payload of type `event` the engine sends from now on (in order)."""
    seen = []
    lx.engine.listeners.append(
        lambda e: seen.append(e.payload) if isinstance(e, UserEvent) and e.payload["e"] == event
        else None)
    return seen


def algo_states(updates, algo_id):
    return [u["o"]["X"] for u in updates if str(u["o"]["aid"]) == str(algo_id)]


def test_algo_finishes_when_the_order_it_placed_is_cancelled(perp_lx):
    """A STOP (limit) fires at 1.00 and rests a sell at 1.10; cancelling that order ends the
    algo at once (FINISHED over REST and ALGO_UPDATE), with no trade needed to notice it."""
    ex = raw_client(perp_lx, "binanceusdm")
    ex.create_order(PERP, "market", "buy", 100)
    perp_lx.step(MIN)  # 1.02
    updates = reports(perp_lx, "ALGO_UPDATE")
    o = ex.create_order(PERP, "limit", "sell", 100, 1.10, {"stopLossPrice": 1.01, "reduceOnly": True})
    assert o["info"]["orderType"] == "STOP"
    for _ in range(3):  # 1.05, 1.03, then 1.00 fires it: a sell limit at 1.10 rests
        perp_lx.step(MIN)
    algo = ex.fetch_order(o["id"], PERP, params={"trigger": True})["info"]
    assert algo["algoStatus"] == "TRIGGERED" and algo_states(updates, o["id"]) == ["NEW", "TRIGGERED"]
    ex.cancel_order(algo["actualOrderId"], PERP)
    algo = ex.fetch_order(o["id"], PERP, params={"trigger": True})["info"]
    assert algo["algoStatus"] == "FINISHED"
    assert algo_states(updates, o["id"]) == ["NEW", "TRIGGERED", "FINISHED"]
    assert updates[-1]["o"]["ai"] == algo["actualOrderId"]
    assert not perp_lx.engine.children and not perp_lx.engine.futures["XRPUSDT"].armed


def test_algo_finishes_when_its_order_fills_by_a_later_trade(perp_lx):
    """A STOP (limit) buy fires at 1.05 and rests at 1.02; the fill at 1.00 finishes it in the
    same step, its ALGO_UPDATE right after the order's FILLED report."""
    ex = raw_client(perp_lx, "binanceusdm")
    ex.set_leverage(2, PERP)  # the short outlives the rally to 1.05
    ex.create_order(PERP, "market", "sell", 100)
    perp_lx.step(MIN)  # 1.02
    events = []
    perp_lx.engine.listeners.append(lambda e: events.append(e.payload) if isinstance(e, UserEvent) else None)
    o = ex.create_order(PERP, "limit", "buy", 100, 1.02, {"stopLossPrice": 1.04, "reduceOnly": True})
    assert o["info"]["orderType"] == "STOP"
    perp_lx.step(MIN)  # 1.05: fires, a buy at 1.02 rests
    perp_lx.step(MIN)  # 1.03
    perp_lx.step(MIN)  # 1.00: trades through the buy at 1.02
    algo = ex.fetch_order(o["id"], PERP, params={"trigger": True})["info"]
    assert algo["algoStatus"] == "FINISHED" and algo["updateTime"] == T0 + 4 * MIN
    child = int(algo["actualOrderId"])
    ends = [(p["e"], p["o"].get("X")) for p in events
            if p["e"] == "ALGO_UPDATE" or (p["e"] == "ORDER_TRADE_UPDATE" and p["o"]["i"] == child)]
    assert ends[-2:] == [("ORDER_TRADE_UPDATE", "FILLED"), ("ALGO_UPDATE", "FINISHED")]


def test_ended_algos_leave_the_working_set_and_stay_queryable(perp_lx):
    """Fired, cancelled and expired algos are no longer looked at by trades; REST still answers
    for them (by id and by client id), and the open list holds only the waiting one."""
    ex = raw_client(perp_lx, "binanceusdm")
    ex.create_order(PERP, "market", "buy", 100)
    lx_market = perp_lx.engine.futures["XRPUSDT"]
    fired = ex.create_order(PERP, "market", "sell", 100, None, {"stopLossPrice": 0.99, "reduceOnly": True})
    gone = ex.create_order(PERP, "market", "sell", 100, None,
                           {"takeProfitPrice": 1.50, "reduceOnly": True, "clientAlgoId": "tp1"})
    far = ex.create_order(PERP, "market", "sell", 100, None, {"stopLossPrice": 0.50, "reduceOnly": True})
    ex.cancel_order(gone["id"], PERP, params={"trigger": True})
    assert sorted(lx_market.armed.items) == sorted([int(fired["id"]), int(far["id"])])
    for _ in range(5):  # down to 0.97: the stop at 0.99 fires and its market order fills
        perp_lx.step(MIN)
    assert list(lx_market.armed.items) == [int(far["id"])]
    assert lx_market.armed.falls == [(lx_market.spec.round_price(0.50), int(far["id"]))]
    assert not perp_lx.engine.children
    (listed,) = ex.fetch_open_orders(PERP, params={"trigger": True})
    assert listed["id"] == far["id"]
    assert ex.fetch_order(fired["id"], PERP, params={"trigger": True})["info"]["algoStatus"] == "FINISHED"
    by_client = ex.fapiPrivateGetAlgoOrder({"clientAlgoId": "tp1", "timestamp": ex.milliseconds()})
    assert by_client["algoStatus"] == "CANCELED" and str(by_client["algoId"]) == gone["id"]


def test_spot_working_time_is_when_the_order_started_working(spot_lx):
    """A buy limit placed at T0 fills a step later: workingTime (REST) and W (executionReport)
    stay at T0, updateTime moves. A stop has no working time (-1, no W) until it fires."""
    ex = raw_client(spot_lx)
    reports_ = reports(spot_lx, "executionReport")
    o = ex.create_order(SPOT, "limit", "buy", 100, 0.0015)
    stop = ex.create_order(SPOT, "limit", "sell", 100, 0.00153, {"takeProfitPrice": 0.00151})
    assert o["info"]["workingTime"] == T0 and stop["info"]["workingTime"] == -1
    spot_lx.step(MIN)  # 0.00152: fires the take-profit, a sell limit at 0.00153 rests
    spot_lx.step(MIN)  # 0.00149: trades through the buy at 0.0015
    done = ex.fetch_order(o["id"], SPOT)["info"]
    assert done["status"] == "FILLED" and done["updateTime"] == T0 + 2 * MIN
    assert done["workingTime"] == T0
    fired = ex.fetch_order(stop["id"], SPOT)["info"]
    assert fired["isWorking"] is True and fired["workingTime"] == T0 + MIN
    mine = [r for r in reports_ if str(r["i"]) == o["id"]]
    assert [r["X"] for r in mine] == ["NEW", "FILLED"] and {r["W"] for r in mine} == {T0}
    stops = [r for r in reports_ if str(r["i"]) == stop["id"]]
    assert [r["X"] for r in stops] == ["NEW"] and "W" not in stops[0]


def test_fired_spot_stop_limit_keeps_its_time_in_force(spot_lx):
    """A TAKE_PROFIT_LIMIT sell at 0.00153 IOC fires at 0.00152: nothing bids that high, so the
    order expires (Binance applies the time in force once it works) instead of resting."""
    ex = raw_client(spot_lx)
    o = ex.create_order(SPOT, "limit", "sell", 100, 0.00153,
                        {"takeProfitPrice": 0.00151, "timeInForce": "IOC"})
    assert o["info"]["timeInForce"] == "IOC"
    spot_lx.step(MIN)  # 0.00152: fires
    done = ex.fetch_order(o["id"], SPOT)
    assert done["status"] == "expired" and done["filled"] == 0
    assert ex.fetch_open_orders(SPOT) == [] and ex.fetch_balance()["XRP"]["used"] == 0


def algo_params(**kw):
    base = {"algoType": "CONDITIONAL", "symbol": "XRPUSDT", "side": "SELL", "type": "STOP_MARKET",
            "triggerPrice": "0.90", "quantity": "100"}
    return {k: v for k, v in {**base, **kw}.items() if v is not None}


@pytest.mark.parametrize("params, code", [
    (algo_params(closePosition="true"), -1106),  # no quantity with close-all
    (algo_params(closePosition="true", quantity=None, reduceOnly="true"), -1106),
    (algo_params(closePosition="true", quantity=None, type="STOP", price="0.90"), -4136),
    (algo_params(timeInForce="DAY"), -1115),
    (algo_params(quantity="1"), -4164),  # 0.90 of notional, not reduce-only
    (algo_params(quantity="100000000000"), -4005),
], ids=["close-all-with-quantity", "close-all-reduce-only", "close-all-limit", "day",
        "notional", "max-qty"])
def test_algo_parameters_binance_refuses_are_refused(perp_lx, params, code):
    ex = raw_client(perp_lx, "binanceusdm")
    with pytest.raises(ccxt.BaseError, match=str(code)):
        ex.fapiPrivatePostAlgoOrder({**params, "timestamp": ex.milliseconds()})
    assert perp_lx.engine.algos == {}


def test_small_reduce_only_and_close_all_algos_are_accepted(perp_lx):
    ex = raw_client(perp_lx, "binanceusdm")
    small = ex.fapiPrivatePostAlgoOrder({**algo_params(quantity="1", reduceOnly="true"),
                                         "timestamp": ex.milliseconds()})
    close = ex.fapiPrivatePostAlgoOrder({**algo_params(quantity=None, closePosition="true"),
                                         "timestamp": ex.milliseconds()})
    assert small["algoStatus"] == close["algoStatus"] == "NEW" and close["closePosition"] is True


def test_spot_max_num_algo_orders_filter(spot_lx):
    """Binance holds at most 5 open stops / take-profits per account and symbol (its
    MAX_NUM_ALGO_ORDERS filter, published in exchangeInfo); the sixth is refused, a limit is
    not, and a cancelled stop frees its place."""
    ex = raw_client(spot_lx)
    (flt,) = [f for f in ex.markets[SPOT]["info"]["filters"] if f["filterType"] == "MAX_NUM_ALGO_ORDERS"]
    assert flt["maxNumAlgoOrders"] == 5
    stops = [ex.create_order(SPOT, "market", "sell", 10, None, {"stopLossPrice": 0.00140 - i * 1e-5})
             for i in range(5)]
    with pytest.raises(ccxt.BaseError, match="MAX_NUM_ALGO_ORDERS"):
        ex.create_order(SPOT, "market", "sell", 10, None, {"stopLossPrice": 0.00130})
    ex.create_order(SPOT, "limit", "sell", 10, 0.0016)
    ex.cancel_order(stops[0]["id"], SPOT)
    assert ex.create_order(SPOT, "market", "sell", 10, None, {"stopLossPrice": 0.00130})["status"] == "open"


def test_a_fired_market_stop_is_never_on_the_book(spot_lx):
    """A STOP_LOSS of 1000 fires and sells into two levels of the book: its executionReports
    say `w` false (not on the book) all along, PARTIALLY_FILLED included, as a market order's."""
    ex = raw_client(spot_lx)
    seen = reports(spot_lx, "executionReport")
    o = ex.create_order(SPOT, "market", "sell", 1000, None, {"stopLossPrice": 0.00148})
    for _ in range(3):  # 0.00152, 0.00149, then 0.00146 fires it
        spot_lx.step(MIN)
    mine = [r for r in seen if str(r["i"]) == o["id"]]
    assert [r["X"] for r in mine] == ["NEW", "PARTIALLY_FILLED", "FILLED"]
    assert [r["w"] for r in mine] == [False, False, False]
