"""What a live run must get right beside others and over time: strategies sharing a key,
a clock that drifts, callbacks that fail, restarts with a position, idle watchers, and
a start-up the exchange refuses."""

import re
import time
import traceback

import pytest

from planarpy import Trade, missing
from planarpy.core.errors import ConfigError, StartupError
from planarpy.exchanges import ApiKeys, load_keys
from planarpy.localexchange import AccountSpec, LocalExchange
from planarpy.localexchange.clock import Clock
from planarpy.modes.live import start_live
from planarpy.trace import EventTrace, trace_tail

from livekit import (Quiet, QuietPerp, conns, counterparty, eventually, live, never, raw_client,
                     user_streams)

SYM = "XRP/ETH"
PERP = "XRP/USDT:USDT"


class Other(Quiet):
    """A second strategy class on the same key."""


def test_two_runs_of_one_strategy_on_one_key_need_their_own_ids(lx):
    """A second run of the same strategy on the same key is refused (each would take the
    other's orders for its own) unless each has its own strategy_id."""
    with live(lx):
        with pytest.raises(ConfigError, match="give each run its own strategy_id"):
            live(lx)
        with live(lx, strategy_id="Quiet-2") as second:
            assert second.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.1) is missing
            assert second.reconcile() == []
            assert second.call("cancel_orders", SYM) is True
    with live(lx):  # the first run's claim ended with it
        pass


def test_strategies_on_one_key_keep_to_their_own_orders(lx):
    """B, started beside A on A's key, neither adopts A's resting order nor cancels it on
    its stop; both runs agree with the exchange about what is theirs."""
    with live(lx) as a:
        assert a.call("limit_order", SYM, 100.0, 0.0005, side="buy", waitfor=0.1) is missing
        (mine,) = a.state()["assets"][SYM]["orders"]
        with live(lx, Other, cancel_on_stop=True) as b:
            assert b.state()["assets"][SYM]["orders"] == [] and b.state()["committed"] == 0
            assert b.call("limit_order", SYM, 100.0, 0.0004, side="buy", waitfor=0.1) is missing
            assert b.reconcile() == [] and a.reconcile() == []
        assert [o["clientOrderId"] for o in raw_client(lx).fetch_open_orders(SYM)] == [mine]
        assert a.state()["assets"][SYM]["orders"] == [mine]
        assert a.call("cancel_orders", SYM) is True


def test_an_order_placed_by_hand_is_adopted(lx):
    """An open order this key placed outside planarpy (a web order) becomes a local order."""
    raw_client(lx).create_order(SYM, "limit", "buy", 100.0, 0.0005, {"clientOrderId": "web_123"})
    with live(lx) as run:
        assert run.state()["assets"][SYM]["orders"] == ["web_123"]
        assert run.call("cancel_orders", SYM) is True


def test_a_clock_that_drifts_after_the_start_is_measured_again(lx, tmp_path):
    """The exchange's clock jumps 30 s after the start: the next signed request is refused
    (-1021), the offset is measured again, and the order goes through once."""
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as run:
            lx.faults.update({"clock_skew_ms": 30_000})
            t = run.call("market_order", SYM, 100.0, side="buy")
            assert isinstance(t, Trade)
            assert run.reconcile() == []
        trace.flush()
    lx.faults.update({"clock_skew_ms": 0})  # for the plain client below
    kinds = [e["kind"] for e in trace_tail(tmp_path / "t", n=1000)]
    assert kinds.count("clock_resynced") == 1
    assert len([o for o in raw_client(lx).fetch_closed_orders(SYM) if o["side"] == "buy"]) == 1


def test_order_updates_reach_the_hook_when_a_resting_order_fills(lx):
    """A resting bid filled by another account: the order-update hook sees it go from open
    to closed, whichever stream (orders or trades) applied the fill."""
    with live(lx) as run:
        bid = raw_client(lx).fetch_order_book(SYM)["bids"][0][0]
        assert run.call("limit_order", SYM, 100.0, round(bid + 2e-8, 8), side="buy",
                        waitfor=0.1) is missing
        counterparty(lx).create_order(SYM, "market", "sell", 100.0)
        eventually(lambda: run.state()["trades"] == 1)
        updates = eventually(lambda: [u for u in run.strategy.updates if u[1]["filled"] == 100.0])
        before, after = updates[0]
        assert before["status"] == "open" and before["filled"] == 0.0
        assert run.reconcile() == []


class Faulty(Quiet):
    """Callbacks that raise."""

    def on_trade(self, ai, trade) -> None:
        raise RuntimeError("bug in on_trade")

    def on_error(self, where: str, message: str) -> None:
        super().on_error(where, message)
        raise RuntimeError("bug in on_error")


def test_failing_callbacks_stop_nothing(lx, caplog):
    """on_trade and on_error raising: the fills still apply, the watchers survive a dropped
    connection, and the bugs are logged and passed to on_error."""
    with live(lx, Faulty) as run:
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
        dropped = conns(lx)
        lx.faults.drop_websockets()
        eventually(lambda: [c for c in user_streams(lx) if c not in dropped])  # reconnected
        assert isinstance(run.call("market_order", SYM, 100.0, side="sell"), Trade)
        eventually(lambda: run.state()["trades"] == 2)
        assert all(w.running for w in run.session.watchers.values())
        assert eventually(lambda: run.reconcile() == [], timeout=5)
        seen = run.strategy.seen_errors
    assert any(w == "callback" and "on_trade raised RuntimeError: bug in on_trade" in m
               for w, m in seen)
    assert "on_error raised" in caplog.text and "bug in on_trade" in caplog.text


def test_a_restart_with_an_open_position_starts_with_the_exchange_cash(lx):
    """Isolated margin: restarting with a position open, the first state already equals
    the exchange's (the cash is the balance less the position's margin)."""
    with live(lx, QuietPerp) as first:
        assert isinstance(first.call("market_order", PERP, 100.0, side="buy"), Trade)
        eventually(lambda: first.state()["assets"][PERP]["long"] == 100.0)
    with live(lx, QuietPerp, tick_interval=60) as second:
        assert second.state()["assets"][PERP]["long"] == 100.0
        assert second.reconcile() == []
        assert second.call("close_position", PERP) is True


def test_a_balance_without_the_quote_currency_means_none(lx):
    """Exchanges leave zero balances out: a key with no ETH at all starts with cash 0,
    not the strategy's default cash."""
    lx.add_account(AccountSpec(name="noeth", api_key="noeth-key", secret="noeth-secret",
                               spot={"XRP": 500}))
    settings = {"exchanges": {"binance": {"rate_limit": False}}}
    with start_live(Quiet, exchange_url=lx.url, keys=ApiKeys("noeth-key", "noeth-secret"),
                    settings=settings, tick_interval=60, trace=None) as run:
        assert run.state()["cash"] == 0.0
        assert run.state()["assets"][SYM]["balance"] == 500.0
        assert run.reconcile() == []


def test_close_on_stop_sells_only_what_the_run_bought(lx):
    """Spot, close_on_stop: the XRP held before the run stays, and so does what another
    strategy on the key bought meanwhile; what the run's own fills bought is sold."""
    before = raw_client(lx).fetch_balance()["total"]["XRP"]
    with live(lx, Other) as other:
        with live(lx, close_on_stop=True) as run:
            assert isinstance(run.call("market_order", SYM, 300.0, side="buy"), Trade)
            bought = other.call("market_order", SYM, 200.0, side="buy")
        after = raw_client(lx).fetch_balance()["total"]["XRP"]
    held = before + bought.amount - bought.fee
    assert 0 <= after - held < 1  # what is left is dust below XRP/ETH's amount step of 1


def test_orders_watchers_stop_when_idle_despite_the_stall_guard(lx):
    """The stall guard's REST polls are not order activity: with the guard firing every
    0.3 s, the orders and trades watchers still stop after 1 s without orders."""
    with live(lx, stall_after=0.3, idle_stop=1.0, tick_interval=0.1) as run:
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
        ws = run.session.watchers
        assert ws["orders"].running
        eventually(lambda: not ws["orders"].running and not ws["trades"].running, timeout=5)


def test_a_refused_start_says_why_without_credentials(lx):
    """The exchange fails the start-up's account request: StartupError, with no signature,
    key or secret in its message or its traceback's chain."""
    lx.faults.update({"http_status": 500, "http_path": "/api/v3/account"})
    with pytest.raises(StartupError) as e:
        live(lx)
    text = "".join(traceback.format_exception(e.value))  # what a user is shown
    assert "could not start" in text and "ExchangeNotAvailable" in text
    assert not re.search(r"signature=[0-9a-f]", text), text
    assert lx.api_key not in text and lx.secret not in text


def test_keys_are_found_under_the_project_home(tmp_path, monkeypatch):
    """user/keys is looked up under $PLANARPY_HOME, like the config, not the current directory."""
    home = tmp_path / "home"
    (home / "user" / "keys").mkdir(parents=True)
    (home / "user" / "keys" / "binance.toml").write_text('apiKey = "k"\nsecret = "s"\n')
    monkeypatch.setenv("PLANARPY_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert load_keys("binance") == ApiKeys("k", "s")


def test_a_restart_rebuilds_recent_history(lx, tmp_path):
    """A restart finds the run's recent closed orders and trades: the trades (named by
    their orders' client ids) are the state's history, the orders are in the start-up
    summary; another strategy's are in neither."""
    with live(lx, Other) as other:  # a resting bid, half filled, then cancelled
        bid = raw_client(lx).fetch_order_book(SYM)["bids"][0][0]
        assert other.call("limit_order", SYM, 100.0, round(bid + 2e-8, 8), side="buy",
                          waitfor=0.1) is missing
        counterparty(lx).create_order(SYM, "market", "sell", 50.0)
        eventually(lambda: other.state()["trades"] == 1)
        assert other.call("cancel_orders", SYM) is True
    with live(lx) as first:
        t = first.call("market_order", SYM, 200.0, side="buy")
        assert isinstance(t, Trade)
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace:
        with live(lx, trace=trace) as second:
            history = second.strategy.state.trades
            assert [(h.order_id, h.amount) for h in history] == [(t.order_id, 200.0)]
        trace.flush()
    (summary,) = trace_tail(tmp_path / "t", kinds=["sync_result"])
    closed = summary["payload"]["closed_orders"]
    assert [(o["id"], o["status"], o["filled"]) for o in closed] == [(t.order_id, "closed", 200.0)]


def test_a_rate_limited_order_waits_as_asked_then_goes_once(lx):
    """The exchange answers the order 429 with Retry-After 1: the submit waits that long
    before looking the order up and sending it again, and one order exists."""
    with live(lx) as run:
        lx.faults.update({"http_status": 429, "http_count": 1, "http_path": "/api/v3/order",
                          "retry_after": 1})
        t0 = time.monotonic()
        t = run.call("market_order", SYM, 100.0, side="buy", waitfor=5)
        assert isinstance(t, Trade) and time.monotonic() - t0 >= 1.0
    buys = [o for o in raw_client(lx).fetch_orders(SYM) if o["side"] == "buy"]
    assert len(buys) == 1


def test_a_rate_limit_longer_than_the_wait_fails_at_once(lx):
    """Retry-After beyond the call's waitfor: the order is not sent again; the call
    returns None without waiting it out, and nothing was placed."""
    with live(lx) as run:
        lx.faults.update({"http_status": 429, "http_count": 1, "http_path": "/api/v3/order",
                          "retry_after": 4})
        t0 = time.monotonic()
        assert run.call("market_order", SYM, 100.0, side="buy", waitfor=0.3) is None
        assert time.monotonic() - t0 < 2.0
        assert "DDoSProtection" in run.strategy.errors[-1]
    assert [o for o in raw_client(lx).fetch_orders(SYM) if o["side"] == "buy"] == []


def test_an_ip_ban_is_not_made_longer(lx):
    """A 418 (banned) is never followed by a second try of the order."""
    with live(lx) as run:
        lx.faults.update({"http_status": 418, "http_count": 2, "http_path": "/api/v3/order",
                          "retry_after": 0})
        assert run.call("market_order", SYM, 100.0, side="buy", waitfor=3) is None
        assert lx.faults.http_count == 1  # one of the two refusals is still unused


def test_a_lagging_stream_never_takes_the_state_back():
    """User data delayed 100 ms behind the order replies: a spot balance bought and sold
    from the replies does not rise again when the older balance updates arrive. (The
    exchange's clock runs in real time here: updates are told old by their times.)"""
    with LocalExchange(clock=Clock(speed=1.0)) as lx:
        lx.faults.update({"ws_delay_ms": 100})
        with live(lx) as run:
            start = run.state()["assets"][SYM]["balance"]
            for _ in range(3):
                run.call("market_order", SYM, 100.0, side="buy")
            peak = run.state()["assets"][SYM]["balance"]
            run.call("market_order", SYM, 300.0, side="sell")
            assert never(lambda: run.state()["assets"][SYM]["balance"] > start + 1, 1.0), peak
            assert eventually(lambda: run.reconcile() == [], timeout=5)
