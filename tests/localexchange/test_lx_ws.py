"""WebSocket streams through the unmodified ccxt.pro clients: each watch sees what REST implies."""

from __future__ import annotations

import asyncio

import ccxt.pro

from livekit import started, streaming, until, user_streams

SPOT = "XRP/ETH"
PERP = "XRP/USDT:USDT"


async def step_until(lx, task: asyncio.Future, step: int = 60_000, tries: int = 60):
    """Step the replay a minute at a time until the watch resolves."""
    for _ in range(tries):
        lx.step(step)
        done, _ = await asyncio.wait([task], timeout=0.05)
        if done:
            return task.result()
    return await asyncio.wait_for(task, 2)


def test_watch_orders_trades_balance_spot(run_pro, local_exchange):
    """A market buy reaches watch_orders, watch_my_trades and watch_balance via the WebSocket API."""
    lx = local_exchange

    async def body(ex):
        orders = await started(ex, ex.watch_orders(SPOT), lambda: user_streams(lx))
        trades = await started(ex, ex.watch_my_trades(SPOT))
        balance = await started(ex, ex.watch_balance())
        o = await ex.create_order(SPOT, "market", "buy", 100)
        got = await asyncio.wait_for(orders, 3)
        assert got[-1]["id"] == o["id"]
        (t,) = await asyncio.wait_for(trades, 3)
        assert (t["order"], t["amount"], t["price"]) == (o["id"], 100, o["average"])
        b = await asyncio.wait_for(balance, 3)
        rest = await ex.fetch_balance()
        assert b["XRP"]["free"] == rest["XRP"]["free"] and b["ETH"]["free"] == rest["ETH"]["free"]
    run_pro(body)


def test_watch_orders_sees_cancel_and_fill_status(run_pro, local_exchange):
    """An order's stream goes open then canceled, with the original client id on the cancel."""
    async def body(ex):
        bid = (await ex.fetch_order_book(SPOT))["bids"][0][0]
        orders = await started(ex, ex.watch_orders(SPOT), lambda: user_streams(local_exchange))
        o = await ex.create_order(SPOT, "limit", "buy", 100, round(bid * 0.99, 8))
        assert (await asyncio.wait_for(orders, 3))[-1]["status"] == "open"
        orders = asyncio.ensure_future(ex.watch_orders(SPOT))
        await ex.cancel_order(o["id"], SPOT)
        last = (await asyncio.wait_for(orders, 3))[-1]
        assert last["status"] == "canceled" and last["clientOrderId"] == o["clientOrderId"]
    run_pro(body)


def test_watch_trades_ohlcv_ticker_follow_replay(run_pro, local_exchange):
    """Replayed trades reach watch_trades, and the candle and ticker streams agree with REST."""
    async def body(ex):
        lx = local_exchange
        trades = await started(ex, ex.watch_trades(SPOT), lambda: streaming(lx, "xrpeth@trade"))
        await step_until(lx, trades)
        # the stepped clock stands still: the stream catches up with REST and stays there
        rest_id = (await ex.fetch_trades(SPOT, limit=1))[-1]["id"]
        last = await until(lambda: ex.trades[SPOT][-1]["id"] == rest_id and ex.trades[SPOT][-1])
        assert last["timestamp"] <= lx.clock.now()
        ohlcv = await started(ex, ex.watch_ohlcv(SPOT, "1m"),
                              lambda: streaming(lx, "xrpeth@kline_1m"))
        await step_until(lx, ohlcv)
        rest = (await ex.fetch_ohlcv(SPOT, "1m", limit=1))[-1]
        await until(lambda: ex.ohlcvs[SPOT]["1m"][-1] == rest)
        ticker = await started(ex, ex.watch_ticker(SPOT), lambda: streaming(lx, "xrpeth@miniTicker"))
        await step_until(lx, ticker)
        rest_last = (await ex.fetch_ticker(SPOT))["last"]
        await until(lambda: ex.tickers[SPOT]["last"] == rest_last)
    run_pro(body)


def test_watch_order_book_tracks_user_orders(run_pro, local_exchange):
    """watch_order_book starts from the REST snapshot and applies diffs: a new resting bid shows up."""
    async def body(ex):
        book = await started(ex, ex.watch_order_book(SPOT),
                             lambda: streaming(local_exchange, "xrpeth@depth"))
        snap = await asyncio.wait_for(book, 3)
        best = snap["bids"][0][0]
        price = round(best + 1e-8, 8)
        update = asyncio.ensure_future(ex.watch_order_book(SPOT))
        await ex.create_order(SPOT, "limit", "buy", 77, price)
        new = await asyncio.wait_for(update, 3)
        assert new["bids"][0] == [price, 77.0]
        rest = await ex.fetch_order_book(SPOT)
        assert new["bids"][:5] == rest["bids"][:5] and new["asks"][:5] == rest["asks"][:5]
    run_pro(body)


def test_watch_book_ticker(run_pro, local_exchange):
    """watch_bids_asks (bookTicker) reports the best bid and ask of the book."""
    async def body(ex):
        task = await started(ex, ex.watch_bids_asks([SPOT]),
                             lambda: streaming(local_exchange, "xrpeth@bookTicker"))
        await step_until(local_exchange, task)
        book = await ex.fetch_order_book(SPOT, 1)
        best = (book["bids"][0][0], book["asks"][0][0])
        # the stepped clock stands still: the stream catches up with the book and stays there
        await until(lambda: (ex.bidsasks[SPOT]["bid"], ex.bidsasks[SPOT]["ask"]) == best)
    run_pro(body)


def test_futures_watch_positions_orders_balance(run_pro, local_exchange):
    """Futures user data by listen key: positions snapshot, then ORDER_TRADE_UPDATE and ACCOUNT_UPDATE."""
    async def body(ex):
        assert await asyncio.wait_for(ex.watch_positions(), 3) == []
        positions = await started(ex, ex.watch_positions(), lambda: user_streams(local_exchange))
        orders = await started(ex, ex.watch_orders(PERP))
        trades = await started(ex, ex.watch_my_trades(PERP))
        balance = await started(ex, ex.watch_balance())
        o = await ex.create_order(PERP, "market", "sell", 100)
        (p,) = await asyncio.wait_for(positions, 3)
        assert (p["side"], p["contracts"], p["entryPrice"]) == ("short", 100, o["average"])
        assert (await asyncio.wait_for(orders, 3))[-1]["status"] == "closed"
        assert (await asyncio.wait_for(trades, 3))[-1]["amount"] == 100
        b = await asyncio.wait_for(balance, 3)
        assert b["USDT"]["total"] == float((await ex.fetch_balance())["info"]["totalWalletBalance"])
    run_pro(body, ccxt.pro.binanceusdm)


def test_futures_public_streams(run_pro, local_exchange):
    """Futures market streams come from /fstream/...: trades and the order book."""
    async def body(ex):
        trades = await started(ex, ex.watch_trades(PERP),
                               lambda: streaming(local_exchange, "xrpusdt@trade"))
        got = await step_until(local_exchange, trades, step=300_000)
        assert got[-1]["symbol"] == PERP
        book = await asyncio.wait_for(ex.watch_order_book(PERP), 3)
        rest = await ex.fetch_order_book(PERP)
        assert book["bids"][0] == rest["bids"][0]
    run_pro(body, ccxt.pro.binanceusdm)
