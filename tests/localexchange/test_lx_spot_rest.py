"""Spot REST through the unmodified sync ccxt.binance client."""

from __future__ import annotations

import ccxt
import numpy as np
import pytest

from planarpy.data.ohlcv import load_csv
from planarpy.data.sample import sample_path
from planarpy.localexchange import AccountSpec, Clock

from tapekit import T0, by_minute

SPOT = "XRP/ETH"


@pytest.fixture
def scripted(local_exchange_factory):
    """An exchange whose XRP/ETH replays 0.0015, then 0.00148, 0.00152, 0.0015 one minute apart."""
    from planarpy.data.sample import sample_markets
    m = sample_markets("binance")[SPOT]
    return local_exchange_factory(markets=[m], clock=Clock(start=T0), origin=T0,
                                  data={SPOT: by_minute([0.0015, 0.00148, 0.00152, 0.0015], 50.0)})


@pytest.fixture
def sspot(scripted):
    ex = ccxt.binance({"apiKey": scripted.api_key, "secret": scripted.secret})
    from planarpy.localexchange import point_ccxt
    point_ccxt(ex, scripted.url).load_markets()
    return ex


def test_load_markets_gives_bundled_rules(spot):
    """load_markets reads exchangeInfo: the bundled XRP/ETH precision and limits come back."""
    m = spot.market(SPOT)
    assert m["precision"] == {"amount": 1.0, "price": 1e-08, "base": 1e-08, "quote": 1e-08}
    assert m["limits"]["amount"]["min"] == 1.0 and m["limits"]["cost"]["min"] == 0.001
    assert set(spot.markets) == {"ETH/BTC", "XRP/ETH"}


def test_fetch_balance_starting_balances(spot):
    """fetch_balance reports the test account's starting balances, all free."""
    b = spot.fetch_balance()
    assert b["ETH"] == {"free": 100.0, "used": 0.0, "total": 100.0}
    assert b["XRP"]["total"] == 100000.0


def test_limit_gtc_rests_locks_and_cancels(spot):
    """A passive limit buy rests open, locks its cost, is fetched, listed, then cancelled and unlocked."""
    bid = spot.fetch_order_book(SPOT)["bids"][0][0]
    price = round(bid * 0.99, 8)
    o = spot.create_order(SPOT, "limit", "buy", 100, price)
    assert o["status"] == "open" and o["filled"] == 0
    assert spot.fetch_balance()["ETH"]["used"] == pytest.approx(100 * price)
    assert spot.fetch_order(o["id"], SPOT)["status"] == "open"
    assert [x["id"] for x in spot.fetch_open_orders(SPOT)] == [o["id"]]
    c = spot.cancel_order(o["id"], SPOT)
    assert c["status"] == "canceled" and c["info"]["origClientOrderId"] == o["clientOrderId"]
    assert spot.fetch_order(o["id"], SPOT)["status"] == "canceled"
    assert spot.fetch_balance()["ETH"] == {"free": 100.0, "used": 0.0, "total": 100.0}
    assert spot.fetch_open_orders(SPOT) == []


def test_market_buy_takes_synthetic_asks(spot):
    """A market buy fills at the best ask as taker; the fee is taken in XRP and shows in my trades."""
    ask = spot.fetch_order_book(SPOT)["asks"][0][0]
    o = spot.create_order(SPOT, "market", "buy", 100)
    assert o["status"] == "closed" and o["filled"] == 100 and o["average"] == ask
    assert o["fee"] == {"currency": "XRP", "cost": 0.1}
    (t,) = spot.fetch_my_trades(SPOT)
    assert t["order"] == o["id"] and t["takerOrMaker"] == "taker" and t["price"] == ask
    b = spot.fetch_balance()
    assert b["XRP"]["total"] == pytest.approx(100000 + 99.9)
    assert b["ETH"]["total"] == pytest.approx(100 - 100 * ask)


def test_market_buy_with_price_uses_quote_quantity(spot):
    """ccxt sends a priced market buy as quoteOrderQty: the filled amount is what that cost buys."""
    ask = spot.fetch_order_book(SPOT)["asks"][0][0]
    o = spot.create_order(SPOT, "market", "buy", 100, ask)
    assert o["info"]["origQuoteOrderQty"] == f"{100 * ask:.8f}"
    assert o["filled"] <= 100 and o["cost"] <= 100 * ask + 1e-12


def test_market_sell_sweeps_levels(spot):
    """A market sell larger than the best bid fills across several synthetic levels."""
    book = spot.fetch_order_book(SPOT)
    first = book["bids"][0][1]
    o = spot.create_order(SPOT, "market", "sell", first + 10)
    assert o["status"] == "closed" and o["filled"] == first + 10
    assert book["bids"][1][0] <= o["average"] < book["bids"][0][0]


def test_ioc_partial_fill_expires_rest(spot):
    """An IOC buy at the best ask fills that level's size and expires the remainder."""
    ask, size = spot.fetch_order_book(SPOT)["asks"][0]
    o = spot.create_order(SPOT, "limit", "buy", size + 5, ask, {"timeInForce": "IOC"})
    assert o["status"] == "expired" and o["filled"] == size
    assert spot.fetch_balance()["ETH"]["used"] == 0


def test_fok_all_or_nothing(spot):
    """FOK fills completely when the book allows, and otherwise expires without a fill."""
    ask, size = spot.fetch_order_book(SPOT)["asks"][0]
    o = spot.create_order(SPOT, "limit", "buy", size + 5, ask, {"timeInForce": "FOK"})
    assert o["status"] == "expired" and o["filled"] == 0
    o = spot.create_order(SPOT, "limit", "buy", size, ask, {"timeInForce": "FOK"})
    assert o["status"] == "closed" and o["filled"] == size


def test_post_only_rejected_when_crossing(spot):
    """Post-only goes out as LIMIT_MAKER: crossing is refused (-2010), a passive one rests."""
    book = spot.fetch_order_book(SPOT)
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        spot.create_order(SPOT, "limit", "buy", 10, book["asks"][0][0], {"postOnly": True})
    o = spot.create_order(SPOT, "limit", "buy", 10, book["bids"][0][0], {"postOnly": True})
    assert o["status"] == "open" and o["postOnly"] and o["info"]["type"] == "LIMIT_MAKER"


def test_resting_order_fills_when_replay_trades_through(sspot, scripted):
    """A resting buy at 0.00149 fills as maker when the replay prints 0.00148; the sell side follows."""
    o = sspot.create_order(SPOT, "limit", "buy", 100, 0.00149)
    assert o["status"] == "open"
    assert scripted.step(60_000) == 1
    f = sspot.fetch_order(o["id"], SPOT)
    assert f["status"] == "closed" and f["filled"] == 100 and f["average"] == 0.00149
    (t,) = sspot.fetch_my_trades(SPOT)
    assert t["takerOrMaker"] == "maker" and t["fee"]["cost"] == pytest.approx(0.1)
    s = sspot.create_order(SPOT, "limit", "sell", 50, 0.00151)
    scripted.step(60_000)
    assert sspot.fetch_order(s["id"], SPOT)["filled"] == 50


def test_taken_synthetic_liquidity_comes_back_after_refill_window(sspot, scripted):
    """A taker empties the best ask; it stays taken until REFILL_MS of market time has passed
    since the take, then the synthetic makers restore it (no replayed trade needed)."""
    from planarpy.localexchange.book import REFILL_MS
    ask, size = sspot.fetch_order_book(SPOT)["asks"][0]
    sspot.create_order(SPOT, "market", "buy", size)
    assert sspot.fetch_order_book(SPOT)["asks"][0][0] > ask
    assert scripted.step(REFILL_MS - 1) == 0
    assert sspot.fetch_order_book(SPOT)["asks"][0][0] > ask
    assert scripted.step(1) == 0
    assert sspot.fetch_order_book(SPOT)["asks"][0] == [ask, size]


def test_order_at_replayed_price_shares_trade_quantity(sspot, scripted):
    """An order exactly at the replayed price fills only the trade's size (50): a partial fill."""
    o = sspot.create_order(SPOT, "limit", "buy", 80, 0.00148)
    scripted.step(60_000)
    f = sspot.fetch_order(o["id"], SPOT)
    assert f["status"] == "open" and f["filled"] == 50 and f["remaining"] == 30


def test_fetch_ohlcv_matches_bundled_candles(local_exchange_factory):
    """Candle replay rebuilds the source candles: fetch_ohlcv returns the CSV's rows, moved in time."""
    from planarpy.data.sample import sample_markets
    from planarpy.localexchange import point_ccxt
    raw = load_csv(sample_path("binance", "ETH/BTC", "5m"))
    origin = int(raw.timestamp[100])
    lx = local_exchange_factory(markets=[sample_markets("binance")["ETH/BTC"]], clock=Clock(start=T0),
                                origin=origin)
    ex = point_ccxt(ccxt.binance({}), lx.url)
    ex.load_markets()
    rows = ex.fetch_ohlcv("ETH/BTC", "5m", limit=50)
    shift = (T0 - origin) // 3_600_000 * 3_600_000
    source = {int(t) + shift: r for t, *r in raw.to_rows()}
    closed = [r for r in rows if r[0] + 300_000 <= lx.clock.now()]
    assert len(closed) >= 49
    for t, *ohlcv in closed:
        assert np.allclose(ohlcv, source[t])


def test_public_endpoints(spot, local_exchange):
    """Ticker, trades and time answer from the replay: last price equals the last public trade."""
    trades = spot.fetch_trades(SPOT, limit=5)
    assert len(trades) == 5 and all(t["timestamp"] <= local_exchange.clock.now() for t in trades)
    assert spot.fetch_ticker(SPOT)["last"] == trades[-1]["price"]
    assert abs(spot.fetch_time() - local_exchange.server_time()) < 2000


def test_unknown_orders(spot):
    """Fetching an unknown order is -2013 and cancelling one is -2011: both OrderNotFound."""
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        spot.fetch_order("424242", SPOT)
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        spot.cancel_order("424242", SPOT)


def test_insufficient_balance(spot):
    """An order costing more than the free quote is -2010 InsufficientFunds."""
    bid = spot.fetch_order_book(SPOT)["bids"][0][0]
    with pytest.raises(ccxt.InsufficientFunds):
        spot.create_order(SPOT, "limit", "buy", 1_000_000, bid)


def test_filter_failures(spot):
    """Off-step amounts and off-tick prices fail LOT_SIZE / PRICE_FILTER, a tiny cost fails NOTIONAL."""
    bid = spot.fetch_order_book(SPOT)["bids"][0][0]
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        spot.privatePostOrder({"symbol": "XRPETH", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                               "quantity": "10.5", "price": f"{bid:.8f}"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        spot.privatePostOrder({"symbol": "XRPETH", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                               "quantity": "10", "price": "0.000000005"})
    eth_bid = spot.fetch_order_book("ETH/BTC")["bids"][0][0]
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        spot.create_order("ETH/BTC", "limit", "buy", 0.0002, eth_bid)


def test_duplicate_client_order_id(spot):
    """A second open order with the same client id is -2010 'Duplicate order sent.' (InvalidOrder)."""
    bid = spot.fetch_order_book(SPOT)["bids"][0][0]
    params = {"clientOrderId": "mine-1"}
    o = spot.create_order(SPOT, "limit", "buy", 10, round(bid * 0.99, 8), params)
    assert o["clientOrderId"] == "mine-1"
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate"):
        spot.create_order(SPOT, "limit", "buy", 10, round(bid * 0.99, 8), params)
    assert spot.fetch_order(None, SPOT, {"clientOrderId": "mine-1"})["id"] == o["id"]


def test_fetch_orders_history_and_cancel_all(spot):
    """allOrders lists every order; cancelling all open orders leaves none open."""
    bid = spot.fetch_order_book(SPOT)["bids"][0][0]
    ids = [spot.create_order(SPOT, "limit", "buy", 10, round(bid * (0.99 - i / 100), 8))["id"] for i in range(3)]
    spot.create_order(SPOT, "market", "buy", 10)
    assert [o["id"] for o in spot.fetch_orders(SPOT)][:3] == ids
    spot.cancel_all_orders(SPOT)
    assert spot.fetch_open_orders(SPOT) == []


def test_two_accounts_trade_with_each_other(local_exchange_factory):
    """A resting order of one account is the taker's counterparty before synthetic liquidity at its price."""
    from planarpy.localexchange import point_ccxt
    lx = local_exchange_factory(accounts=[AccountSpec(), AccountSpec("b", "key-b", "secret-b")])
    a = point_ccxt(ccxt.binance({"apiKey": lx.api_key, "secret": lx.secret}), lx.url)
    b = point_ccxt(ccxt.binance({"apiKey": "key-b", "secret": "secret-b"}), lx.url)
    a.load_markets(), b.load_markets()
    ask = a.fetch_order_book(SPOT)["asks"][0][0]
    price = round(ask - 1e-8, 8)
    rest = a.create_order(SPOT, "limit", "sell", 40, price)
    take = b.create_order(SPOT, "market", "buy", 40)
    assert take["average"] == price
    assert a.fetch_order(rest["id"], SPOT)["status"] == "closed"
    assert a.fetch_my_trades(SPOT)[0]["takerOrMaker"] == "maker"
