import time

import pytest

from planarpy import Side, Trade, missing

from livekit import Quiet, QuietPerp, eventually, live, raw_client

SYM = "XRP/ETH"


def test_market_order_returns_the_trade(lx):
    """A market buy returns the Trade the exchange reported, and cash moves by it."""
    with live(lx) as run:
        before = run.state()
        t = run.call("market_order", SYM, 100.0, side="buy")
        assert isinstance(t, Trade) and t.amount == 100.0 and t.price > 0
        after = run.state()
        assert after["cash"] == pytest.approx(before["cash"] - t.cost)
        assert after["assets"][SYM]["balance"] > before["assets"][SYM]["balance"]


def test_resting_limit_returns_missing_then_cancels(lx):
    """A GTC limit far from the market returns missing; cancel_orders closes it."""
    with live(lx) as run:
        t0 = time.perf_counter()
        r = run.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.5)
        assert r is missing and 0.5 <= time.perf_counter() - t0 < 2.0  # waited for a fill
        assert len(run.state()["assets"][SYM]["orders"]) == 1 and run.state()["committed"] > 0
        assert run.call("cancel_orders", SYM) is True
        assert run.state()["assets"][SYM]["orders"] == [] and run.state()["committed"] == 0


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_ioc_fok_that_cannot_fill_return_none(lx, tif):
    """IOC and FOK far from the market are expired by the exchange: None."""
    with live(lx) as run:
        assert run.call("limit_order", SYM, 100.0, 0.0005, side="buy", tif=tif) is None
        assert run.state()["committed"] == 0 and run.state()["assets"][SYM]["orders"] == []


@pytest.mark.parametrize("tif", ["GTC", "IOC", "FOK"])
def test_marketable_limit_returns_a_trade(lx, tif):
    """A limit buy above the market fills at once for GTC, IOC and FOK."""
    with live(lx) as run:
        t = run.call("limit_order", SYM, 100.0, 0.01, side="buy", tif=tif)
        assert isinstance(t, Trade) and t.price <= 0.01


def test_post_only_that_would_take_is_refused(lx):
    """A post-only order that would take liquidity returns None with the exchange's reason."""
    with live(lx) as run:
        assert run.call("limit_order", SYM, 100.0, 0.01, side="buy", tif="PO") is None
        assert run.strategy.errors and run.state()["committed"] == 0


def test_local_checks_refuse_before_sending(lx):
    """Off-step amounts and too little cash are refused locally: None and a reason."""
    with live(lx) as run:
        assert run.call("market_order", SYM, 10.5, side="buy") is None
        assert "more decimals than XRP/ETH allows" in run.strategy.errors[-1]
        assert run.call("limit_order", SYM, 10_000_000.0, 0.001, side="buy") is None
        assert "not enough cash" in run.strategy.errors[-1]


def test_fire_and_forget_returns_at_once(lx):
    """waitfor=0, synced=False returns missing at once; the fill arrives later (the
    exchange answers after 1 s: a call that waited for the reply would take that)."""
    with live(lx) as run:
        lx.faults.update({"delay_ms": 1000})
        t0 = time.perf_counter()
        r = run.call("market_order", SYM, 100.0, side="buy", waitfor=0, synced=False)
        assert r is missing and time.perf_counter() - t0 < 0.5
        eventually(lambda: run.state()["trades"] == 1, timeout=10)
        lx.faults.clear()


def test_withheld_user_stream_synced_fetches_the_fill(lx):
    """With user-data events withheld, synced=True still returns the fill by fetching it."""
    with live(lx) as run:
        lx.faults.update({"withhold_user": True})
        t = run.call("market_order", SYM, 100.0, side="buy", waitfor=0.3)
        assert isinstance(t, Trade)
        assert run.state()["trades"] == 1


def test_order_update_hook_sees_before_and_after(lx):
    """on_order_update gets the order before and after each exchange update."""
    with live(lx) as run:
        run.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.2)
        run.call("cancel_orders", SYM)
        before, after = eventually(lambda: [u for u in run.strategy.updates
                                            if u[1]["status"] == "canceled"])[0]
        assert before["status"] == "open" and after["status"] == "canceled"


def test_isolated_margin_leverage_position_close(lx):
    """Futures: set leverage, open a long, see the position, close it."""
    with live(lx, QuietPerp) as run:
        assert run.call("update_leverage", "XRP/USDT:USDT", 5) is True
        t = run.call("market_order", "XRP/USDT:USDT", 100.0, side="buy")
        assert isinstance(t, Trade) and t.leverage == 5
        eventually(lambda: run.state()["assets"]["XRP/USDT:USDT"]["long"] == 100.0)
        assert run.call("close_position", "XRP/USDT:USDT") is True
        eventually(lambda: run.state()["assets"]["XRP/USDT:USDT"]["long"] == 0.0)


def test_an_amount_a_hair_below_a_step_multiple_is_sent_as_that_multiple(lx):
    """999.9999999999999 XRP (a computed size, one float ulp below 1000) passes the market
    rules as on the step, as in the sim, which fills it whole. ccxt truncates amounts to
    the step, so it went to the exchange as 999: one step less than the sim would trade.
    It is sent as the multiple it stands for."""
    amount = 1000.0 - 1e-13
    assert amount < 1000.0
    with live(lx) as run:
        trade = run.call("market_order", SYM, amount, side="buy")
        assert isinstance(trade, Trade)
        ai = run.strategy.assets[0]
        filled = eventually(lambda: sum(t.amount for t in ai.trades
                                        if t.order_id == trade.order_id) >= 999.0 and
                            not ai.orders and sum(t.amount for t in ai.trades
                                                  if t.order_id == trade.order_id))
        assert filled == 1000.0


def quiet_trace(tmp_path, name="t", strategy="Quiet"):
    """A trace that runs of one test append to (a restart resumes the earlier runs)."""
    from planarpy.trace import EventTrace
    return EventTrace.open(tmp_path / name, strategy=strategy, exchange="binance")


def xrp(lx) -> float:
    return raw_client(lx).fetch_balance()["total"]["XRP"]


def sells_own(lx, trace, bought: Trade) -> None:
    """A run on `trace` closes what `bought` bought (less its fee in XRP), nothing else."""
    held = xrp(lx)
    with live(lx, trace=trace, on_stop="keep") as run:
        ai = run.strategy.assets[0]
        own = bought.amount - (bought.fee if bought.fee_currency == "XRP" else 0.0)
        assert run.call("close_position", SYM) is True
        sold = ai.trades[-1]
        assert sold.side is Side.SELL and sold.amount == ai.market.floor_amount(own)
        eventually(lambda: xrp(lx) == pytest.approx(held - sold.amount))


def test_a_run_resuming_its_trace_closes_what_the_earlier_run_bought(lx, tmp_path):
    """On spot, `close_position` sells what the strategy's own fills bought, never coins
    held before. A run that resumes the trace of an earlier one (a restart, a crash) owns
    that run's fills too: they were history, so after a restart close_position, on_stop
    "close" and a halt's close sold nothing the strategy had bought. A run on another
    trace still sells nothing of them: the exchange's history of orders its trace does
    not know is not known to be its position."""
    with live(lx, trace=quiet_trace(tmp_path, "a"), on_stop="keep") as run:
        bought = run.call("market_order", SYM, 100.0, side="buy")
        assert isinstance(bought, Trade)
    held = xrp(lx)
    with live(lx, trace=quiet_trace(tmp_path, "b"), on_stop="keep") as run:  # another trace
        assert run.call("close_position", SYM) is True
        assert run.strategy.assets[0].trades  # it sees the fill, as history
    assert xrp(lx) == held
    sells_own(lx, quiet_trace(tmp_path, "a"), bought)  # resumes its own trace


def test_a_restart_of_a_restart_still_sells_only_what_its_trace_bought(lx, tmp_path):
    """The exchange's history a resumed run's sync found (fills of orders its trace does
    not know) stays not-own in the runs that resume it in turn: the earlier runs' fills
    carried into a run are their own fills, not what their syncs found (a third run on
    the trace sold another trace's 100 XRP too)."""
    with live(lx, trace=quiet_trace(tmp_path, "b"), on_stop="keep") as run:  # another's fill
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
    with live(lx, trace=quiet_trace(tmp_path, "a"), on_stop="keep") as run:
        bought = run.call("market_order", SYM, 50.0, side="buy")
        assert isinstance(bought, Trade)
    for _ in range(2):  # a restart, then a restart of the restart
        with live(lx, trace=quiet_trace(tmp_path, "a"), on_stop="keep"):
            pass
    sells_own(lx, quiet_trace(tmp_path, "a"), bought)


def test_a_live_run_on_a_trace_a_paper_run_bought_on_sells_nothing_of_it(lx, tmp_path):
    """A paper run's fills are simulated: a live run on the same trace (paper and live
    runs of one strategy record to one trace) resumes only the earlier live runs, so
    close_position finds nothing of its own to sell, and the coins the account held
    stay."""
    from planarpy.modes.paper import start_paper

    paper = start_paper(Quiet, exchange_url=lx.url, clock=lx.clock, trace=quiet_trace(tmp_path),
                        cash=1.0,
                        settings={}, stall_after=2.0)
    try:
        assert isinstance(paper.call("market_order", SYM, 100.0, side="buy"), Trade)
    finally:
        paper.stop()
    held = xrp(lx)
    with live(lx, trace=quiet_trace(tmp_path), on_stop="keep") as run:
        assert run.call("close_position", SYM) is True
        assert run.strategy.assets[0].trades == [] and run.strategy.fills == []
    assert xrp(lx) == held


class TwoCoins(Quiet):
    universe = ("XRP/ETH", "ADA/ETH")


def test_another_symbols_trade_of_the_same_id_leaves_the_history_unsold(
        local_exchange_factory, tmp_path):
    """The exchange numbers trades per symbol (Binance), so an ADA fill found as history
    may have the id of an XRP fill of the trace: the ADA fill is still history (a resumed
    run took it for its own and sold another trace's 100 ADA)."""
    from planarpy.data import sample
    from planarpy.localexchange.server import bundled_data, bundled_markets

    base = sample.sample_markets("binance")["XRP/ETH"]
    ada = {**base, "id": "ADAETH", "symbol": "ADA/ETH", "base": "ADA"}
    markets = [m for m in bundled_markets() if m.symbol == "XRP/ETH"]
    lx = local_exchange_factory(markets=[*markets, ada],
                                data={"ADA/ETH": bundled_data(markets[0])})
    lx.step(3_600_000)

    def trace(name):
        return quiet_trace(tmp_path, name, "TwoCoins")

    def held():
        return raw_client(lx).fetch_balance()["total"]

    with live(lx, TwoCoins, trace=trace("b"), on_stop="keep") as run:  # another trace's fill
        theirs = run.call("market_order", "ADA/ETH", 100.0, side="buy")
    with live(lx, TwoCoins, trace=trace("a"), on_stop="keep") as run:
        ours = run.call("market_order", SYM, 50.0, side="buy")
    assert isinstance(theirs, Trade) and isinstance(ours, Trade) and theirs.id == ours.id
    before = held()
    with live(lx, TwoCoins, trace=trace("a"), on_stop="keep") as run:
        assert run.call("close_position", "ADA/ETH") is True
        assert run.call("close_position", SYM) is True
        assert [(t.symbol, t.side) for t in run.strategy.fills] == [(SYM, Side.SELL)]
    after = held()
    assert after["ADA"] == before["ADA"] and after["XRP"] < before["XRP"]


def test_a_fill_while_the_run_was_down_is_the_resumed_runs_own(lx, tmp_path):
    """A resting buy of the run fills in part while the run is down: the restarted run
    settles the carried order (its fill applied once) and close_position cancels the rest
    and sells what the fill bought, less its fee in XRP; nothing else."""
    from livekit import counterparty

    def trace():
        return quiet_trace(tmp_path)

    price = round(raw_client(lx).fetch_order_book(SYM)["bids"][0][0] + 2e-8, 8)  # the best bid
    with live(lx, trace=trace(), on_stop="keep") as run:
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0) is missing
        eventually(lambda: len(raw_client(lx).fetch_open_orders(SYM)) == 1)
    counterparty(lx).create_order(SYM, "market", "sell", 30.0)
    with live(lx, trace=trace(), on_stop="keep") as run:
        ai = run.strategy.assets[0]
        (fill,) = [t for t in ai.trades if t.side is Side.BUY]
        assert fill.amount == 30.0
        own = fill.amount - (fill.fee if fill.fee_currency == "XRP" else 0.0)
        assert run.call("close_position", SYM) is True
        assert ai.orders == {} and raw_client(lx).fetch_open_orders(SYM) == []
        sold = [t for t in ai.trades if t.side is Side.SELL]
        assert sum(t.amount for t in sold) == ai.market.floor_amount(own)
