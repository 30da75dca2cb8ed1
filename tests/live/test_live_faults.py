"""Live orders under the faults of issue 13: each finding reproduced against the local
exchange with the real ccxt client. After each, the local orders, trades and balances
equal the exchange's, and the trace replays to the live state."""

import pytest

from planarpy import Trade, missing
from planarpy.core.errors import ConfigError
from planarpy.trace import EventTrace, trace_tail

from livekit import (Quiet, QuietPerp, counterparty, eventually, in_step, live, raw_client, replayed,
                     user_stream_up)

SYM = "XRP/ETH"
PERP = "XRP/USDT:USDT"
FAST_WINDOW = {"rate_limit": False, "options": {"recvWindow": 1000}}  # a 2 s submit window


@pytest.fixture
def trace(tmp_path):
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as t:
        yield t


def events(trace, kinds=None):
    trace.flush()
    return trace_tail(trace.path, n=100_000, kinds=kinds)


def far_bid(lx) -> float:
    return round(raw_client(lx).fetch_order_book(SYM)["bids"][0][0] * 0.5, 8)


def near_bid(lx) -> float:
    """A bid one tick above the best: filled by the next market sell."""
    return round(raw_client(lx).fetch_order_book(SYM)["bids"][0][0] + 2e-8, 8)


def settings(**table) -> dict:
    return {"exchanges": {"binance": {"rate_limit": False, **table}}}


def only_order(run):
    (order,) = run.strategy.assets[0].orders.values()
    return order


# ---- finding 1: a ghost order ------------------------------------------------------
def test_a_5xx_the_exchange_did_nothing_on_leaves_no_ghost_order(lx, trace):
    """Fire and forget, answered 503 with nothing done: the order is UNKNOWN (funds held,
    not rejected), a cancel cannot be confirmed (False, not True), and once the submit
    window has passed the exchange's "does not exist" closes it as never placed."""
    with live(lx, trace=trace, settings={"exchanges": {"binance": FAST_WINDOW}}) as run:
        lx.faults.update({"http_status": 503, "http_path": "POST /api/v3/order", "http_count": 1})
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy", waitfor=0,
                        synced=False) is missing
        order = eventually(lambda: run.strategy.assets[0].orders and only_order(run))
        eventually(lambda: order.status.value == "unknown")
        assert run.state()["committed"] > 0 and run.strategy.errors == []
        assert run.call("cancel_orders", SYM, waitfor=0.3) is False
        eventually(lambda: run.state()["assets"][SYM]["orders"] == [], timeout=10)
        assert order.status.value == "not_placed" and run.state()["committed"] == 0
        assert "was never placed" in run.strategy.errors[-1]
        assert raw_client(lx).fetch_open_orders(SYM) == []
        assert in_step(run, lx) == []
    replayed(run.strategy, trace.path)
    states = [(e["kind"], e["payload"].get("status")) for e in events(trace)
              if e["kind"] in ("order_updated", "order_closed")]
    assert states == [("order_updated", "unknown"), ("order_closed", "not_placed")]


# ---- finding 2: an accepted order marked rejected ------------------------------------
def test_an_order_accepted_after_the_client_gave_up_keeps_its_fill(lx, trace):
    """The order POST stalls past the client's timeout (the exchange executes it late)
    and the lookups answer 503: the call returns missing, not None; the order is found
    (by the stream) and its fill, on the next trade, reaches the state and on_trade."""
    with live(lx, trace=trace, settings=settings(timeout=300)) as run:
        user_stream_up(lx)
        price = near_bid(lx)
        lx.faults.update({"delay_ms": 800, "delay_path": "POST /api/v3/order", "delay_count": 1,
                          "http_status": 503, "http_path": "GET /api/v3/order"})
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.3) is missing
        order = only_order(run)
        assert run.strategy.errors == []  # not reported as rejected
        eventually(lambda: order.status.value == "open", timeout=5)  # found by the stream
        lx.faults.clear()
        counterparty(lx).create_order(SYM, "market", "sell", 100.0)
        eventually(lambda: run.state()["trades"] == 1 and not order.is_open, timeout=5)
        assert [t.order_id for t in run.strategy.fills] == [order.id]
        assert eventually(lambda: in_step(run, lx) == [], timeout=5)
    replayed(run.strategy, trace.path)


def test_a_stalled_order_found_only_by_lookup_is_adopted_with_its_fill(lx, trace):
    """The same with the user stream silent: the in-flight check's lookups find the order
    once they stop failing, filled meanwhile; its fill is fetched."""
    with live(lx, trace=trace, settings=settings(timeout=300)) as run:
        price = near_bid(lx)
        lx.faults.update({"withhold_user": True, "delay_ms": 800,
                          "delay_path": "POST /api/v3/order", "delay_count": 1,
                          "http_status": 503, "http_path": "GET /api/v3/order"})
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.3) is missing
        order = only_order(run)
        assert order.status.value == "unknown"
        eventually(lambda: raw_client(lx).fetch_open_orders(SYM))  # executed late
        counterparty(lx).create_order(SYM, "market", "sell", 100.0)
        lx.faults.update({"http_status": None})
        eventually(lambda: run.state()["trades"] == 1 and not order.is_open, timeout=5)
        assert [t.order_id for t in run.strategy.fills] == [order.id]
        lx.faults.clear()
        assert eventually(lambda: in_step(run, lx) == [], timeout=5)
    replayed(run.strategy, trace.path)


def test_a_5xx_after_the_order_was_executed_finds_it(lx, trace):
    """A 503 that comes after the exchange executed the market order: the lookup by
    client id finds it, and the call returns its Trade; one order exists."""
    with live(lx, trace=trace) as run:
        lx.faults.update({"http_status": 503, "http_path": "POST /api/v3/order", "http_count": 1,
                          "http_processed": True})
        t = run.call("market_order", SYM, 100.0, side="buy")
        assert isinstance(t, Trade) and t.amount == 100.0
        assert len([o for o in raw_client(lx).fetch_orders(SYM) if o["side"] == "buy"]) == 1
        assert eventually(lambda: in_step(run, lx) == [], timeout=5)
    replayed(run.strategy, trace.path)


def test_futures_orders_of_unknown_outcome_are_settled_too(lx, tmp_path):
    """USD-M: a market order answered 503 after it was executed is found with its fill;
    a limit order answered 503 with nothing done is closed as never placed."""
    cfg = {"exchanges": {"binanceusdm": FAST_WINDOW}}
    trace = EventTrace.open(tmp_path / "perp", strategy="QuietPerp", exchange="binanceusdm")
    with trace, live(lx, QuietPerp, trace=trace, settings=cfg) as run:
        lx.faults.update({"http_status": 503, "http_path": "POST /fapi/v1/order", "http_count": 1,
                          "http_processed": True})
        t = run.call("market_order", PERP, 100.0, side="buy")
        assert isinstance(t, Trade) and t.amount == 100.0
        eventually(lambda: run.state()["assets"][PERP]["long"] == 100.0)
        lx.faults.update({"http_status": 503, "http_path": "POST /fapi/v1/order", "http_count": 1,
                          "http_processed": False})
        bid = raw_client(lx, "binanceusdm").fetch_order_book(PERP)["bids"][0][0]
        assert run.call("limit_order", PERP, 100.0, round(bid * 0.5, 4), side="buy",
                        waitfor=0.5) is missing
        order = only_order(run)
        assert order.status.value == "unknown"
        eventually(lambda: not order.is_open, timeout=10)
        assert order.status.value == "not_placed" and run.state()["committed"] == 0
        assert eventually(lambda: run.reconcile() == [], timeout=5)
        assert run.call("close_position", PERP) is True
    replayed(run.strategy, trace.path)


# ---- finding 3: orders that appear mid-run -------------------------------------------
def test_orders_that_appear_mid_run_are_adopted(lx, trace):
    """With no order of its own (so no orders stream), a run adopts an order placed by
    hand and one of its own prefix that it does not know (the periodic sweep): free cash
    then matches the exchange's. Both adoptions are in the trace."""
    with live(lx, trace=trace, adopt_every=0.2) as run:
        price = far_bid(lx)
        hand = lx.place_by_hand("XRPETH", "buy", 100, price)["clientOrderId"]
        mine = run.session.new_client_id()
        raw_client(lx).create_order(SYM, "limit", "buy", 100.0, price, {"clientOrderId": mine})
        eventually(lambda: sorted(run.state()["assets"][SYM]["orders"]) == sorted([hand, mine]))
        # Binance spot takes a buy's fee from the base received: only the value is held
        assert run.state()["committed"] == pytest.approx(2 * 100 * price)
        assert in_step(run, lx) == []
        assert run.call("cancel_orders", SYM) is True
    replayed(run.strategy, trace.path)
    reasons = {e["payload"]["data"]["clientOrderId"]: e["payload"]["reason"]
               for e in events(trace, ["exchange_message"]) if e["payload"]["events"] == ["order_created"]}
    assert reasons == {hand: "adopted: placed by hand",
                       mine: "adopted: this strategy's order, not known here"}


def test_an_order_placed_by_hand_is_adopted_from_the_stream(lx, trace):
    """While the orders stream runs, an order placed by hand is adopted as it appears."""
    with live(lx, trace=trace) as run:
        user_stream_up(lx)
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)  # the streams
        hand = lx.place_by_hand("XRPETH", "buy", 100, far_bid(lx))["clientOrderId"]
        eventually(lambda: run.state()["assets"][SYM]["orders"] == [hand])
        assert in_step(run, lx) == []
        assert run.call("cancel_orders", SYM) is True
    replayed(run.strategy, trace.path)


def test_orders_placed_by_hand_are_ignored_when_configured(lx, trace):
    """[live] hand_orders = "ignore": an order placed by hand is left alone, and the trace
    says why."""
    cfg = {**settings(), "live": {"hand_orders": "ignore"}}
    with live(lx, trace=trace, settings=cfg, adopt_every=0.2) as run:
        hand = lx.place_by_hand("XRPETH", "buy", 100, far_bid(lx))["clientOrderId"]
        eventually(lambda: [e for e in events(trace, ["exchange_message"])
                            if e["payload"]["data"].get("clientOrderId") == hand])
        assert run.state()["assets"][SYM]["orders"] == [] and run.state()["committed"] == 0
        assert in_step(run, lx) == []
    (seen, *_) = [e["payload"] for e in events(trace, ["exchange_message"])
                  if e["payload"]["data"].get("clientOrderId") == hand]
    assert seen["outcome"] == "skipped"
    assert seen["reason"] == "placed by hand: ignored (hand_orders = 'ignore')"
    replayed(run.strategy, trace.path)


@pytest.mark.parametrize("where", ["config", "argument"])
def test_a_bad_hand_orders_setting_is_refused(lx, where):
    """hand_orders must be "adopt" or "ignore"; the error names the key and its value."""
    kw = ({"settings": {**settings(), "live": {"hand_orders": "keep"}}} if where == "config"
          else {"hand_orders": "keep"})
    with pytest.raises(ConfigError, match="hand_orders.*adopt, ignore.*'keep'"):
        live(lx, **kw)


# ---- finding 4: every exchange message is recorded -----------------------------------
def test_every_exchange_message_is_recorded_with_why_it_was_skipped(lx, trace):
    """Messages that change nothing are in the trace with the reason: the NEW report of
    an order known already, duplicated user data, a balance older than a fill applied."""
    lx.faults.update({"user_lag_ms": 500})  # the stream after the answers, as on Binance
    with live(lx, trace=trace) as run:
        user_stream_up(lx)
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy", waitfor=0.2) is missing
        lx.faults.update({"duplicate_user": True})

        def stale() -> bool:
            return any(e["payload"]["reason"] == "stale: older than a fill applied"
                       for e in events(trace, ["exchange_message"]))

        def two_orders_then_a_stale_balance() -> bool:
            # both answered before the first one's stream data comes: the balance sent
            # after the first fill is older than the second (unless the stream's balance
            # watcher reads the two balances as one: then try again)
            for side in ("buy", "sell"):
                assert isinstance(run.call("market_order", SYM, 100.0, side=side), Trade)
            try:
                return eventually(stale, timeout=2)
            except AssertionError:
                return False
        eventually(two_orders_then_a_stale_balance, timeout=30, every=0)
        lx.faults.clear()
        assert eventually(lambda: in_step(run, lx) == [], timeout=5)
    messages = [e["payload"] for e in events(trace, ["exchange_message"])]
    stream = [m for m in messages if m["source"] == "stream"]
    assert any(m["channel"] == "orders" and m["data"]["status"] == "open"
               and m["reason"] == "no change" for m in stream)
    assert any(m["channel"] == "trades" and m["reason"] == "duplicate: applied already"
               for m in stream)
    assert any(m["channel"] == "balance" and m["outcome"] == "skipped" for m in stream)
    assert all(m["exchange_ms"] for m in stream)  # the exchange's time, beside the trace's
    replayed(run.strategy, trace.path)


# ---- finding 5: event times never go back --------------------------------------------
def test_trace_times_never_go_back_when_the_clock_is_measured_again(lx, trace):
    """The exchange's clock falls 3 s behind: an order is refused (-1021), the offset is
    measured again and the exchange's time moves back 3 s; the trace's times do not."""
    with live(lx, trace=trace, clock=None) as run:  # the exchange's clock as ccxt measures it
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
        lx.faults.update({"clock_skew_ms": -3000})
        before = run.strategy.now()
        assert isinstance(run.call("market_order", SYM, 100.0, side="sell"), Trade)
        assert run.strategy.now() < before  # the exchange's time went back
        lx.faults.clear()
    stamps = [e["ts"] for e in events(trace)]
    assert "clock_resynced" in [e["kind"] for e in events(trace)]
    assert all(b >= a for a, b in zip(stamps, stamps[1:]))
    replayed(run.strategy, trace.path)


# ---- finding 10: a cancel that races its order ---------------------------------------
class CancelEveryTick(Quiet):
    """Each on_interval call: a fire-and-forget resting bid cancelled at once."""

    def reset(self) -> None:
        super().reset()
        self.price = 0.0
        self.cycles = 0
        self.cancels: list[bool] = []

    def on_interval(self, ts: int) -> None:
        from planarpy import call
        if not self.price or self.cycles >= 3:
            return
        if not self.assets[0].orders:
            call(self, "limit_order", SYM, 100.0, self.price, side="buy", waitfor=0, synced=False)
            self.cancels.append(call(self, "cancel_orders", SYM))  # at once: races the order
            self.cycles += 1


def test_a_cancel_sent_right_after_its_order_waits_for_it(lx, tmp_path):
    """A fire-and-forget bid (its POST slowed down) cancelled at once, tick after tick:
    each cancel waits until the exchange knows the order, then cancels it by client id;
    no cancel is refused (-2011) and no order is left open."""
    trace = EventTrace.open(tmp_path / "t", strategy="CancelEveryTick", exchange="binance")
    with trace, live(lx, CancelEveryTick, trace=trace, tick_interval=0.05) as run:
        lx.faults.update({"delay_ms": 150, "delay_path": "POST /api/v3/order"})
        run.strategy.price = far_bid(lx)
        eventually(lambda: run.strategy.cycles == 3 and not run.strategy.assets[0].orders, timeout=10)
        assert run.strategy.cancels == [True, True, True]
        lx.faults.clear()
        assert raw_client(lx).fetch_open_orders(SYM) == []
        assert in_step(run, lx) == []
    assert not [e for e in events(trace, ["exchange_error"]) if "-2011" in str(e["payload"])]
    assert len([e for e in events(trace, ["order_closed"])
                if e["payload"]["status"] == "canceled"]) == 3
    replayed(run.strategy, trace.path)


def test_a_cancel_right_after_a_fire_and_forget_order_from_a_script(lx, trace):
    """The same from a script's thread: the cancel finds the order even before the loop
    has created it locally, and waits for the exchange to know it."""
    with live(lx, trace=trace) as run:
        lx.faults.update({"delay_ms": 300, "delay_path": "POST /api/v3/order", "delay_count": 1})
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy", waitfor=0,
                        synced=False) is missing
        assert run.call("cancel_orders", SYM) is True
        assert run.state()["assets"][SYM]["orders"] == [] and run.state()["committed"] == 0
        assert raw_client(lx).fetch_open_orders(SYM) == []
        assert in_step(run, lx) == []
    replayed(run.strategy, trace.path)
