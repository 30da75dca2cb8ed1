"""The periodic reconciliation and its policies, against the local exchange (real ccxt)."""

import time

import pytest

from planarpy.core.risk import TradingState
from planarpy.trace import EventTrace, trace_tail

from livekit import Quiet, eventually, in_step, live, raw_client, replayed

SYM = "XRP/ETH"
EVERY = 0.5  # seconds between reconciliations


class Watching(Quiet):
    def reset(self) -> None:
        super().reset()
        self.alignments: list = []

    def on_reconcile(self, alignment) -> None:
        self.alignments.append(alignment)


def reconciled(path, trace) -> list[dict]:
    trace.flush()
    return [e["payload"] for e in trace_tail(path, n=10_000, kinds="reconciled")]


def alerts_of(trace, path) -> set[str]:
    trace.flush()
    return {e["payload"]["kind"] for e in trace_tail(path, n=1000, kinds="alert")}


def run_with(lx, tmp_path, policy: str):
    trace = EventTrace.open(tmp_path / "t", strategy="Watching", exchange="binance")
    return trace, live(lx, Watching, trace=trace, reconcile_every=EVERY, reconcile_policy=policy)


def found(run, what: str):
    """The first alignment the strategy was told of that mentions `what`."""
    return next((a for a in list(run.strategy.alignments) if any(what in x for x in a.lines())),
                None)


def test_agreement_is_recorded_and_tells_nobody(lx, tmp_path):
    trace, run = run_with(lx, tmp_path, "warn")
    with trace, run:
        eventually(lambda: len(reconciled(tmp_path / "t", trace)) >= 2, timeout=5)
        assert run.strategy.alignments == []
    assert all(p["ok"] for p in reconciled(tmp_path / "t", trace))


def test_warn_finds_a_hand_order_and_a_deposit_within_one_interval(lx, tmp_path):
    """An order placed by hand and a silent deposit: each found by the next reconciliation,
    the deposit as a transfer (not a fill); an alert and on_reconcile, nothing changed."""
    trace, run = run_with(lx, tmp_path, "warn")
    with trace, run:
        hand = lx.place_by_hand("XRPETH", "buy", 100, "0.0005")
        began = time.monotonic()
        a = eventually(lambda: found(run, hand["clientOrderId"]), timeout=5)
        assert time.monotonic() - began < 2 * EVERY + 1.0
        assert a.only_exchange == (f"{SYM} {hand['clientOrderId']}",)
        assert run.state()["assets"][SYM]["orders"] == []  # warn changes nothing
        lx.transfer("ETH", 5, notify=False)
        began = time.monotonic()
        eventually(lambda: found(run, "ETH: local"), timeout=5)  # a difference, at once
        assert time.monotonic() - began < 2 * EVERY + 1.0
        a = eventually(lambda: found(run, "deposit"), timeout=5)  # seen twice: a deposit
        (d,) = [d for d in a.differences if d.what == "ETH"]
        assert d.why == "transfer" and d.amount == pytest.approx(5.0)
        assert run.state()["trades"] == 0  # a deposit is no fill
        # recognised once: the next rounds count the deposit in
        eventually(lambda: (r := reconciled(tmp_path / "t", trace)[-1])["transfers"] == {}
                   and not r["differences"], timeout=5)
    alerts = [e["payload"] for e in trace_tail(tmp_path / "t", n=1000, kinds="alert")]
    assert sum(p["kind"] == "reconciliation" and "deposit" in p["message"] for p in alerts) == 1


def test_adjust_moves_the_local_state_to_the_exchange_and_replay_follows(lx, tmp_path):
    trace, run = run_with(lx, tmp_path, "adjust")
    with trace, run:
        hand = lx.place_by_hand("XRPETH", "buy", 100, "0.0005")
        lx.transfer("ETH", -2, notify=False)
        eventually(lambda: run.state()["assets"][SYM]["orders"] == [hand["clientOrderId"]],
                   timeout=5)
        eventually(lambda: in_step(run, lx) == [], timeout=5)
        raw_client(lx).cancel_order(str(hand["orderId"]), SYM)  # gone behind the run's back
        eventually(lambda: run.state()["assets"][SYM]["orders"] == [], timeout=5)
        eventually(lambda: in_step(run, lx) == [], timeout=5)
        eventually(lambda: found(run, "withdrawal"), timeout=5)  # seen twice: a withdrawal
        strategy = run.strategy
    replayed(strategy, tmp_path / "t")


def test_halt_stops_trading(lx, tmp_path):
    trace, run = run_with(lx, tmp_path, "halt")
    with trace, run:
        lx.place_by_hand("XRPETH", "buy", 100, "0.0005")
        eventually(lambda: run.strategy.state.risk.trading is TradingState.HALTED, timeout=5)
        assert "DIFFERS from the exchange" in run.status()
        assert eventually(lambda: alerts_of(trace, tmp_path / "t") >= {"halt", "reconciliation"})
        assert not run.call("limit_order", SYM, 100.0, 0.0004, side="buy")
        assert [o for o in raw_client(lx).fetch_open_orders(SYM)
                if not o["clientOrderId"].startswith("web_")] == []


def test_on_demand_and_its_cost(lx):
    with live(lx, reconcile_every=3600) as run:
        a = run.align()
        assert a.ok and a.ms > 0
        assert run.session.aligner.runs == 1


def test_bad_policy_and_interval_are_refused(lx):
    from planarpy.core.errors import ConfigError
    with pytest.raises(ConfigError, match="reconcile_policy must be one of"):
        live(lx, reconcile_policy="fix")
    with pytest.raises(ConfigError, match=r"\[live\] reconcile_every must be"):
        live(lx, settings={"live": {"reconcile_every": -1},
                           "exchanges": {"binance": {"rate_limit": False}}})


def test_could_not_ask_is_not_agreement(lx, tmp_path):
    """The exchange fails the fills request: no verdict is recorded (not "in step"), the
    failure is reported, and align() says it could not ask."""
    from planarpy.core.errors import ExchangeRequestError
    trace, run = run_with(lx, tmp_path, "warn")
    with trace, run:
        eventually(lambda: reconciled(tmp_path / "t", trace), timeout=5)
        lx.faults.update({"http_status": 503, "http_path": "myTrades"})
        before = len(reconciled(tmp_path / "t", trace))
        eventually(lambda: any("ExchangeNotAvailable" in e for e in run.session.errors[-3:]),
                   timeout=5)
        with pytest.raises(ExchangeRequestError, match="align: could not ask"):
            run.align()
        assert len(reconciled(tmp_path / "t", trace)) == before
        lx.faults.clear()
        eventually(lambda: len(reconciled(tmp_path / "t", trace)) > before, timeout=5)


def test_a_futures_deposit_is_found_and_adjusted(lx, tmp_path):
    from livekit import QuietPerp, perp_in_step
    trace = EventTrace.open(tmp_path / "p", strategy="QuietPerp", exchange="binanceusdm")
    # on margin there is no ledger: a deposit is told apart only by the reconciliation
    # that sees it before a balance update does (stall_after: no REST refresh meanwhile)
    with trace, live(lx, QuietPerp, trace=trace, reconcile_every=EVERY, stall_after=30.0,
                     reconcile_policy="adjust") as run:
        run.call("market_order", "XRP/USDT:USDT", 100.0, side="buy")
        lx.transfer("USDT", 250, notify=False, futures=True)
        eventually(lambda: any(p["transfers"].get("USDT") == pytest.approx(250.0)
                               for p in reconciled(tmp_path / "p", trace)), timeout=5)
        eventually(lambda: perp_in_step(run, lx) == [], timeout=5)
        strategy = run.strategy
    replayed(strategy, tmp_path / "p")


def test_a_withdrawal_is_no_loss_to_the_breakers(lx, tmp_path):
    """20% of the equity withdrawn behind the run's back: recognised as a withdrawal, it
    moves the drawdown's peak too, and the 10% drawdown breaker does not trip at the next
    close (it did: the withdrawal looked like a loss)."""
    trace = EventTrace.open(tmp_path / "t", strategy="Watching", exchange="binance")
    with trace, live(lx, Watching, trace=trace, reconcile_every=EVERY,
                     reconcile_policy="adjust", risk={"max_drawdown": 0.1}) as run:
        eventually(lambda: run.strategy.state.risk.day is not None)
        lx.transfer("ETH", -50, notify=False)
        eventually(lambda: found(run, "withdrawal"), timeout=5)
        eventually(lambda: run.state()["cash"] == pytest.approx(50.0), timeout=5)
        ticks = run.session.ticks
        lx.step(60_000)
        eventually(lambda: run.session.ticks > ticks, timeout=10)
        assert run.strategy.state.risk.trading is TradingState.ACTIVE
        strategy = run.strategy
    replayed(strategy, tmp_path / "t")
