"""A balance or position snapshot that already shows a fill, applied before the fill: the
fill is recorded (trade, order) and counts once. The faults force the order: the user
stream's balance update sent before the fill's report (as Binance USD-M sends them), or
REST snapshots taken while the fill's report is held back."""

import pytest

from planarpy.localexchange import AccountSpec, Clock, LocalExchange
from planarpy.trace import EventTrace, trace_tail

from livekit import (QuietPerp, counterparty, eventually, in_step, live, never, perp_in_step,
                     raw_client, replayed)

SYM = "XRP/ETH"
PERP = "XRP/USDT:USDT"
QUIET = 60.0  # stall_after: no REST snapshot comes to mend what a test looks at


def near_bid(lx, exchange: str = "binance", symbol: str = SYM) -> float:
    """A bid one tick above the best: filled by the next market sell."""
    book = raw_client(lx, exchange).fetch_order_book(symbol)
    step = 2e-8 if exchange == "binance" else 1e-4
    return round(book["bids"][0][0] + step, 8)


def unlocked(check):
    """`check` of the live state read without its lock: a test that takes the lock while
    the watchers apply would change the order they apply in."""
    return lambda: check()


def shown(trace) -> list[dict]:
    trace.flush()
    return [e["payload"] for e in trace_tail(trace.path, n=100_000, kinds=["trade_created"])
            if e["payload"].get("in_balance") or e["payload"].get("in_position")]


def seller(lx) -> str:
    """A second account, with a futures wallet, to take the other side."""
    try:
        lx.account("other")
    except KeyError:
        lx.add_account(AccountSpec(name="other", api_key="other-key", secret="other-secret"))
    return "other"


def test_spot_balance_update_before_the_fill_report(lx, tmp_path):
    """A resting bid filled by someone else; the user stream sends the balance update
    before the fill's report. The balance shows the fill already: the fill is recorded,
    and holdings and cash move once."""
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace, \
            live(lx, trace=trace, stall_after=QUIET) as run:
        ai = run.strategy.assets[0]
        start = ai.balance
        assert not run.call("limit_order", SYM, 100.0, near_bid(lx), side="buy", waitfor=0.2)
        lx.faults.update({"reorder_user": True})  # the next two events, swapped
        counterparty(lx).create_order(SYM, "market", "sell", 100.0)
        eventually(unlocked(lambda: not ai.orders and len(ai.trades) == 1), timeout=10)
        lx.faults.clear()
        assert run.state()["assets"][SYM]["balance"] == pytest.approx(start + 100 * 0.999)
        assert in_step(run, lx) == []
        assert [p["in_balance"] for p in shown(trace)] == [True]
    replayed(run.strategy, trace.path)


def test_usdm_account_update_before_the_fill_report(lx, tmp_path):
    """USD-M isolated: a resting long filled by someone else; ACCOUNT_UPDATE (wallet and
    position) comes before ORDER_TRADE_UPDATE, as Binance sends them. The position is
    20, not 40; cash is the wallet less the position's margin."""
    with EventTrace.open(tmp_path / "t", strategy="QuietPerp", exchange="binanceusdm") as trace, \
            live(lx, QuietPerp, trace=trace, stall_after=QUIET) as run:
        ai = run.strategy.assets[0]
        price = near_bid(lx, "binanceusdm", PERP)
        assert not run.call("limit_order", PERP, 20.0, price, side="buy", waitfor=0.2)
        lx.faults.update({"reorder_user": True})
        lx.place_by_hand("XRPUSDT", "sell", 20, account=seller(lx), futures=True)
        eventually(unlocked(lambda: not ai.orders and len(ai.trades) == 1), timeout=10)
        lx.faults.clear()
        assert run.state()["assets"][PERP]["long"] == 20.0
        assert perp_in_step(run, lx) == []
        assert [(p["in_balance"], p["in_position"]) for p in shown(trace)] == [(True, True)]
    replayed(run.strategy, trace.path)


def lost_answer(lx, exchange: str = "binance", lookups_fail: str | None = None) -> None:
    """The next order executes after the client's timeout (its answer is lost), the order
    lookups fail with 503, and user data is withheld: only REST can show the fill."""
    api = "/api/v3" if exchange == "binance" else "/fapi/v1"
    lx.faults.update({"withhold_user": True, "delay_ms": 800, "delay_count": 1,
                      "delay_path": f"POST {api}/order", "http_status": 503,
                      "http_path": lookups_fail or f"GET {api}/order"})


@pytest.fixture(params=["stepped", "real time"])
def any_clock(request, local_exchange_factory):
    """A local exchange on a stepped clock (every event of one millisecond) or on the wall
    clock (the snapshot is newer than the fill)."""
    if request.param == "stepped":
        lx = local_exchange_factory()
        lx.step(3_600_000)
        return lx
    return local_exchange_factory(clock=Clock(speed=1.0))


def thin_best_ask(lx, leave: float) -> None:
    """Someone else buys the best ask down to `leave`: a larger market buy takes two
    fills. (On a stepped clock the book stays so until the clock moves.)"""
    best = raw_client(lx).fetch_order_book(SYM)["asks"][0][1]
    counterparty(lx).create_order(SYM, "market", "buy", best - leave)


def fill_ids(lx, client_id: str) -> list[str]:
    """The exchange's fills of our order `client_id`, by trade id."""
    client = raw_client(lx)
    exid = client.fetch_order(None, SYM, {"origClientOrderId": client_id})["id"]
    return sorted(t["id"] for t in client.fetch_my_trades(SYM) if t["order"] == exid)


def test_spot_fill_found_by_rest_after_the_balance_showed_it(any_clock, tmp_path):
    """A market buy whose answer is lost: the balance watcher's REST snapshot shows its fill
    while the order lookups fail; the in-flight check then finds the order with its fills
    (the trades watcher kept them). Holdings and cash move once. The buy takes as many
    fills as the book makes it: on the stepped clock two (the best ask is thinned first),
    on the wall clock one or more, as the replayed book at that time of the hour holds."""
    lx = any_clock
    if lx.clock.stepped:
        thin_best_ask(lx, leave=40.0)
    settings = {"exchanges": {"binance": {"rate_limit": False, "timeout": 300}}}
    with EventTrace.open(tmp_path / "t", strategy="Quiet", exchange="binance") as trace, \
            live(lx, trace=trace, settings=settings, stall_after=0.3, inflight_every=0.1) as run:
        ai = run.strategy.assets[0]
        start = ai.balance
        lost_answer(lx)
        assert not run.call("market_order", SYM, 100.0, side="buy", waitfor=0.3)
        order = next(iter(ai.orders.values()))
        eventually(lambda: run.state()["assets"][SYM]["balance"] > start, timeout=10)
        assert order.status.value == "unknown"  # the balance came first
        lx.faults.update({"http_path": "GET /api/v3/account"})  # no REST balance from now
        fills = fill_ids(lx, order.id)
        assert len(fills) >= (2 if lx.clock.stepped else 1)
        eventually(lambda: not order.is_open and run.state()["trades"] == len(fills), timeout=10)
        assert run.state()["assets"][SYM]["balance"] == pytest.approx(start + 100 * 0.999)
        lx.faults.clear()
        assert in_step(run, lx) == []
        assert sorted((p["id"], p["in_balance"]) for p in shown(trace)) == [(i, True) for i in fills]
    replayed(run.strategy, trace.path)


def test_usdm_fill_found_by_rest_after_the_snapshots_showed_it(lx, tmp_path):
    """The same on USD-M isolated: the positions and balance watchers' REST snapshots show
    the long of 20 first; the fill found after moves neither again."""
    settings = {"exchanges": {"binanceusdm": {"rate_limit": False, "timeout": 300}}}
    with EventTrace.open(tmp_path / "t", strategy="QuietPerp", exchange="binanceusdm") as trace, \
            live(lx, QuietPerp, trace=trace, settings=settings, stall_after=0.3,
                 inflight_every=0.1) as run:
        ai = run.strategy.assets[0]
        lost_answer(lx, "binanceusdm")
        assert not run.call("market_order", PERP, 20.0, side="buy", waitfor=0.3)
        order = next(iter(ai.orders.values()))
        eventually(lambda: run.state()["assets"][PERP]["long"] == 20.0, timeout=10)
        assert order.status.value == "unknown"
        lx.faults.update({"http_path": "GET /fapi/v3/"})  # no REST balance or position now
        eventually(lambda: not order.is_open and run.state()["trades"] == 1, timeout=10)
        assert run.state()["assets"][PERP]["long"] == 20.0
        lx.faults.clear()
        assert perp_in_step(run, lx) == []
        assert [p.get("in_position") for p in shown(trace)] == [True]
    replayed(run.strategy, trace.path)


def test_a_lagging_stream_never_doubles_a_position(tmp_path):
    """USD-M, user data 100 ms behind the replies, on the wall clock: ccxt's first answer
    to watch_positions is a REST snapshot, taken while the first order fills, and each
    ACCOUNT_UPDATE races its fill. The long never shows more than was bought, the close
    leaves it flat, and the state equals the exchange's and the replay."""
    with LocalExchange(clock=Clock(speed=1.0)) as lx, \
            EventTrace.open(tmp_path / "t", strategy="QuietPerp",
                            exchange="binanceusdm") as trace:
        lx.faults.update({"ws_delay_ms": 100})
        with live(lx, QuietPerp, trace=trace) as run:
            for k in (1, 2, 3):
                assert run.call("market_order", PERP, 20.0, side="buy") is not None
                assert never(lambda: run.state()["assets"][PERP]["long"] > 20.0 * k, 0.3)
            assert run.call("market_order", PERP, 60.0, side="sell", reduce_only=True)
            assert never(lambda: run.state()["assets"][PERP]["long"] > 0, 0.3)
            assert eventually(lambda: perp_in_step(run, lx) == [], timeout=5)
        replayed(run.strategy, trace.path)
