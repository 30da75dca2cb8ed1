"""Venues: what each exchange's errors and reports mean, asked of ccxt's own exceptions and
structures (as the live code asks them)."""

import ccxt
import pytest

from planarpy.exchanges.venues import Binance, Venue, venue_for

NOT_FOUND = ccxt.OrderNotFound('binance {"code": -2013, "msg": "Order does not exist."}')
UNKNOWN_ORDER = ccxt.OrderNotFound('binance {"code": -2011, "msg": "Unknown order sent."}')
UNAVAILABLE = ccxt.ExchangeNotAvailable("binance GET http://x/api/v3/order 503")


def test_the_table_is_explicit():
    """binance and binanceusdm get the Binance venue; any other exchange the ccxt base."""
    assert type(venue_for("binance")) is Binance and type(venue_for("binanceusdm")) is Binance
    assert type(venue_for("kraken")) is Venue


@pytest.mark.parametrize("error", [UNAVAILABLE, ccxt.RequestTimeout("timed out"),
                                   ccxt.RateLimitExceeded("429"), ccxt.NetworkError("reset")])
def test_could_not_ask_is_never_does_not_exist(error):
    for venue in (venue_for("binance"), venue_for("kraken")):
        assert not venue.does_not_exist(error) and not venue.cancel_unknown(error)


def test_binance_does_not_exist_and_unknown_order():
    """-2013 (lookup) and -2011 (cancel) are "does not exist"; only -2011 answers a cancel."""
    b = venue_for("binance")
    assert b.does_not_exist(NOT_FOUND) and b.does_not_exist(UNKNOWN_ORDER)
    assert b.cancel_unknown(UNKNOWN_ORDER) and not b.cancel_unknown(NOT_FOUND)
    assert not b.does_not_exist(ccxt.OrderNotFound("no code at all"))


def test_binance_duplicates_bans_and_leverage():
    b = venue_for("binanceusdm")
    assert b.is_duplicate(ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'))
    assert b.is_duplicate(ccxt.InvalidOrder('{"code":-4116,"msg":"ClientOrderId is duplicated."}'))
    assert not b.is_duplicate(ccxt.InvalidOrder("Account has insufficient balance"))
    assert b.is_ban(ccxt.DDoSProtection("Way too many requests; IP(1.2.3.4) banned until 1"))
    assert not b.is_ban(ccxt.RateLimitExceeded("Too many requests"))
    assert b.leverage_error(2.5) and b.leverage_error(3.0) is None and b.leverage_arg(3.0) == 3


def test_binance_orders_by_client_id_and_their_times():
    """Lookups name origClientOrderId; client ids and event times come from `info` when
    ccxt leaves them out (a trade, a futures update, a balance)."""
    b = venue_for("binance")
    assert b.by_client_id("abc") == {"origClientOrderId": "abc"}
    assert b.order_params("abc") == {"clientOrderId": "abc"}
    assert b.client_id({"info": {"c": "fromtrade"}}) == "fromtrade"
    assert b.client_id({"info": {"o": {"c": "nested"}}}) == "nested"
    assert b.event_time({"info": {"E": 123}}) == 123 and b.event_time({"timestamp": 5}) == 5
    assert b.position_side({"info": {"ps": "SHORT"}}) == "short"
    assert b.position_margin({"info": {"isolatedWallet": "2.5"}}) == 2.5


def test_the_submit_window_follows_recv_window():
    """Binance refuses a request recvWindow after its time stamp (1 s more for a clock
    ahead); an exchange that says nothing gets a minute."""
    client = type("C", (), {"options": {"recvWindow": 5000}})()
    assert venue_for("binance").submit_window(client) == 6.0
    assert venue_for("kraken").submit_window(client) == 60.0


def test_binance_says_what_each_part_of_a_failed_cancel_replace_did():
    """Binance answers a cancel-replace that failed in part with what each part did
    (`data`), and ccxt raises it as BadResponse (as if there were no answer) or, by its
    message, as anything: the venue reads the answer itself. Without `data`, -2021 under
    STOP_ON_FAILURE (what ccxt sends) is the cancel done and the new order refused; -2022
    neither. USD-M's -2021 ("would immediately trigger") is a plain refusal."""
    spot, usdm = venue_for("binance"), venue_for("binanceusdm")
    new_refused = ccxt.BadResponse(
        'binance {"code":-2021,"msg":"Order cancel-replace partially failed.","data":'
        '{"cancelResult":"SUCCESS","newOrderResult":"FAILURE","cancelResponse":{},'
        '"newOrderResponse":{"code":-2010,"msg":"Order would immediately trigger."}}}')
    cancel_failed = ccxt.InvalidOrder(  # ALLOW_FAILURE: the cancel failed, the new one placed
        'binance {"code":-2021,"msg":"Order cancel-replace partially failed.","data":'
        '{"cancelResult":"FAILURE","newOrderResult":"SUCCESS","cancelResponse":'
        '{"code":-2011,"msg":"Unknown order sent."},"newOrderResponse":{"orderId":1}}}')
    neither = ccxt.BadResponse('binance {"code":-2022,"msg":"Order cancel-replace failed.",'
                               '"data":{"cancelResult":"FAILURE","newOrderResult":'
                               '"NOT_ATTEMPTED","cancelResponse":{},"newOrderResponse":null}}')
    bare = ccxt.BadResponse('binance {"code":-2021,"msg":"Order cancel-replace partially failed."}')
    assert spot.replace_outcome(new_refused) == (True, False)
    assert spot.replace_outcome(cancel_failed) == (False, True)
    assert spot.replace_outcome(neither) == (False, False)
    assert spot.replace_outcome(bare) == (True, False)
    for other in (UNAVAILABLE, NOT_FOUND, ccxt.BadResponse("binance <html>502</html>")):
        assert spot.replace_outcome(other) is None
    immediate = ccxt.OrderImmediatelyFillable(
        'binanceusdm {"code":-2021,"msg":"Order would immediately trigger."}')
    assert usdm.replace_outcome(immediate) is None and venue_for("kraken").replace_outcome(
        new_refused) is None


def test_only_usdm_conditional_orders_wait_without_funds():
    """A USD-M algo order holds no margin until it fires; a spot stop locks what it sells
    (or buys with), and the base assumes an exchange's do."""
    assert Binance("binanceusdm").conditional_holds_funds() is False
    assert Binance("binance").conditional_holds_funds() is True
    assert Venue("kraken").conditional_holds_funds() is True


def test_binance_reads_a_conditional_order_off_its_report():
    """What a found order is, from Binance's own fields in `info` (ccxt calls a spot
    STOP_LOSS "market"): spot REST and executionReport forms, trailing stops, fired
    stop-limits, USD-M algo orders; a plain order or a type planarpy has none of."""
    from planarpy.exchanges.venues.base import Conditional
    spot, usdm = venue_for("binance"), venue_for("binanceusdm")
    rest = {"type": "market", "info": {"type": "STOP_LOSS", "stopPrice": "0.00145000",
                                        "isWorking": False}}
    assert spot.conditional(rest) == Conditional("stop_market", 0.00145)
    stream = {"type": "limit", "info": {"o": "TAKE_PROFIT_LIMIT", "P": "0.0016", "w": True}}
    assert spot.conditional(stream) == Conditional("take_profit_limit", 0.0016, fired=True)
    trailing = {"info": {"type": "STOP_LOSS", "stopPrice": "0", "trailingDelta": 150}}
    assert spot.conditional(trailing) == Conditional("trailing_stop_market", 0.0, trail=0.015)
    activated = {"info": {"o": "TAKE_PROFIT", "P": "0.0016", "d": 200}}
    assert spot.conditional(activated) == Conditional("trailing_stop_market", 0.0, trail=0.02,
                                                      activation=0.0016)
    # trailing once a fall reaches stopPrice, or a trailing stop-limit: no planarpy type
    assert spot.conditional({"info": {"type": "STOP_LOSS", "stopPrice": "0.0014",
                                      "trailingDelta": 150}}).kind == ""
    assert spot.conditional({"info": {"type": "STOP_LOSS_LIMIT", "trailingDelta": 150}}).kind == ""
    assert spot.conditional({"info": {"type": "LIMIT", "isWorking": True}}) is None
    assert spot.conditional({"info": {"o": {"c": "futures order nested"}}}) is None
    assert usdm.conditional({"info": {"type": "STOP_MARKET"}}) is None  # an order, not an algo
    algo = {"triggerPrice": 0.98, "info": {"algoId": 1, "algoStatus": "NEW",
                                           "orderType": "STOP_MARKET"}}
    assert usdm.conditional(algo) == Conditional("stop_market", 0.98)
    trail = {"info": {"aid": 2, "X": "NEW", "o": "TRAILING_STOP_MARKET", "tp": "1.02",
                      "cr": "1.5", "AP": "1.05"}}
    assert usdm.conditional(trail) == Conditional("trailing_stop_market", 1.02, trail=0.015,
                                                  activation=1.05)
    assert Venue("kraken").conditional(rest) is None
