"""USD-M futures REST through the unmodified sync ccxt.binanceusdm client."""

from __future__ import annotations

import ccxt
import numpy as np
import pytest

from planarpy.data.sample import sample_markets
from planarpy.localexchange import Clock, Feed, point_ccxt

PERP = "XRP/USDT:USDT"
T0 = 1_700_000_400_000 // 3_600_000 * 3_600_000


@pytest.fixture
def scripted(local_exchange_factory):
    """XRP/USDT:USDT replays 1.0 (history), then 0.99, 1.01 and a crash to 0.80, a minute apart."""
    prices = [1.0, 0.99, 1.01, 0.80]
    ts = np.array([T0 + (i * 60_000 if i else -60_000) for i in range(len(prices))], dtype=np.int64)
    feed = Feed(ts, np.array(prices), np.full(len(prices), 500.0), np.zeros(len(prices), dtype=bool))
    return local_exchange_factory(markets=[sample_markets("binanceusdm")[PERP]], clock=Clock(start=T0),
                                  origin=T0, data={PERP: feed})


@pytest.fixture
def fut(scripted):
    ex = point_ccxt(ccxt.binanceusdm({"apiKey": scripted.api_key, "secret": scripted.secret}), scripted.url)
    ex.load_markets()
    return ex


def test_load_markets_and_balance(usdm):
    """binanceusdm loads the perpetual from /fapi/v1/exchangeInfo and the wallet from /fapi/v3/account."""
    m = usdm.market(PERP)
    assert m["swap"] and m["linear"] and m["precision"]["amount"] == 0.1
    assert m["limits"]["cost"]["min"] == 5.0
    assert usdm.fetch_balance()["USDT"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}


def test_set_leverage_and_margin_mode(usdm):
    """set_leverage answers Binance's reply; isolated is already set (-4046), cross is refused."""
    assert usdm.set_leverage(10, PERP)["leverage"] == 10
    with pytest.raises(ccxt.BadRequest):
        usdm.set_leverage(500, PERP)
    with pytest.raises(ccxt.MarginModeAlreadySet):
        usdm.set_margin_mode("isolated", PERP)
    with pytest.raises(ccxt.OperationRejected):
        usdm.set_margin_mode("cross", PERP)


def test_market_order_opens_isolated_position(fut):
    """A market buy opens a long with entry at the fill price and isolated margin = notional / leverage."""
    fut.set_leverage(10, PERP)
    o = fut.create_order(PERP, "market", "buy", 100)
    assert o["status"] == "closed" and o["filled"] == 100
    (p,) = fut.fetch_positions()
    assert p["side"] == "long" and p["contracts"] == 100 and p["entryPrice"] == o["average"]
    assert p["marginMode"] == "isolated" and p["collateral"] == pytest.approx(100 * o["average"] / 10)
    assert p["liquidationPrice"] < o["average"] * 0.91
    (t,) = fut.fetch_my_trades(PERP)
    assert t["fee"]["cost"] == pytest.approx(100 * o["average"] * 0.0004)
    b = fut.fetch_balance()["USDT"]
    assert b["used"] == pytest.approx(p["collateral"])


def test_close_realizes_pnl(fut, scripted):
    """Closing a long after the price rises realizes (exit - entry) * qty into the wallet."""
    fut.create_order(PERP, "market", "buy", 100)
    entry = fut.fetch_positions()[0]["entryPrice"]
    scripted.step(120_000)
    c = fut.create_order(PERP, "market", "sell", 100, None, {"reduceOnly": True})
    assert fut.fetch_positions() == []
    trades = fut.fetch_my_trades(PERP)
    pnl = float(trades[-1]["info"]["realizedPnl"])
    assert pnl == pytest.approx((c["average"] - entry) * 100)
    fees = sum(t["fee"]["cost"] for t in trades)
    assert fut.fetch_balance()["USDT"]["total"] == pytest.approx(100000 + pnl - fees)


def test_limit_order_rests_and_fills_on_replay(fut, scripted):
    """A resting futures buy at 0.995 fills when the replay prints 0.99; its margin moves into the position."""
    o = fut.create_order(PERP, "limit", "buy", 50, 0.995)
    assert o["status"] == "open"
    assert fut.fetch_balance()["USDT"]["used"] > 0
    scripted.step(60_000)
    assert fut.fetch_order(o["id"], PERP)["status"] == "closed"
    assert fut.fetch_positions()[0]["entryPrice"] == 0.995
    assert [x["id"] for x in fut.fetch_open_orders(PERP)] == []


def test_gtx_fok_ioc(fut):
    """GTX crossing is -5022, an unfillable FOK is -5021 (both InvalidOrder); IOC expires its rest."""
    ask, size = fut.fetch_order_book(PERP)["asks"][0]
    with pytest.raises(ccxt.InvalidOrder, match="-5022"):
        fut.create_order(PERP, "limit", "buy", 10, ask, {"postOnly": True})
    with pytest.raises(ccxt.InvalidOrder, match="-5021"):
        fut.create_order(PERP, "limit", "buy", size + 10, ask, {"timeInForce": "FOK"})
    o = fut.create_order(PERP, "limit", "buy", size + 10, ask, {"timeInForce": "IOC"})
    assert o["status"] == "expired" and o["filled"] == size
    bid = fut.fetch_order_book(PERP)["bids"][0][0]
    p = fut.create_order(PERP, "limit", "buy", 10, bid, {"postOnly": True})
    assert p["status"] == "open" and p["timeInForce"] == "PO"


def test_reduce_only_and_margin_checks(fut):
    """reduceOnly without a position is -2022; an order beyond the margin is -2019 InsufficientFunds."""
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        fut.create_order(PERP, "market", "sell", 10, None, {"reduceOnly": True})
    fut.set_leverage(1, PERP)
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):
        fut.create_order(PERP, "limit", "buy", 200000, 0.9)
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        fut.create_order(PERP, "limit", "buy", 1, 0.9)


def test_a_resting_reduce_only_order_fills_no_more_than_the_position_then_expires(fut, scripted):
    """A resting reduce-only order is capped at the position when it fills, and an open one
    the position leaves nothing to reduce expires, as Binance's do (a long of 100 cut to
    60: the sell at 1.01 fills 60 and expires; the one at 1.02 expires unfilled)."""
    fut.create_order(PERP, "market", "buy", 100)
    a = fut.create_order(PERP, "limit", "sell", 100, 1.01, {"reduceOnly": True})
    b = fut.create_order(PERP, "limit", "sell", 100, 1.02, {"reduceOnly": True})
    fut.create_order(PERP, "market", "sell", 40, None, {"reduceOnly": True})
    assert fut.fetch_positions()[0]["contracts"] == 60
    scripted.step(120_000)  # 0.99, then 1.01
    a, b = fut.fetch_order(a["id"], PERP), fut.fetch_order(b["id"], PERP)
    assert (a["status"], a["filled"]) == ("expired", 60)
    assert (b["status"], b["filled"]) == ("expired", 0)
    assert fut.fetch_positions() == [] and fut.fetch_open_orders(PERP) == []
    assert fut.fetch_balance()["USDT"]["used"] == 0


def test_cancel_and_unknown(fut):
    """A cancelled futures order frees its margin; unknown ids are OrderNotFound on GET and DELETE."""
    o = fut.create_order(PERP, "limit", "buy", 50, 0.9)
    assert fut.cancel_order(o["id"], PERP)["status"] == "canceled"
    assert fut.fetch_balance()["USDT"]["used"] == 0
    with pytest.raises(ccxt.OrderNotFound):
        fut.fetch_order("999999", PERP)
    with pytest.raises(ccxt.OrderNotFound):
        fut.cancel_order("999999", PERP)


def test_liquidation_loses_isolated_margin(fut, scripted):
    """A 20x long is liquidated when the replay crashes below its liquidation price; the wallet loses its margin."""
    fut.set_leverage(20, PERP)
    fut.create_order(PERP, "market", "buy", 100)
    (p,) = fut.fetch_positions()
    margin = p["collateral"]
    fee = fut.fetch_my_trades(PERP)[0]["fee"]["cost"]
    scripted.step(180_000)
    assert fut.fetch_positions() == []
    last = fut.fetch_my_trades(PERP)[-1]
    assert last["price"] == pytest.approx(p["liquidationPrice"])
    assert fut.fetch_balance()["USDT"]["total"] == pytest.approx(100000 - fee - margin)
