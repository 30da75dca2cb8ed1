"""Risk rules in paper mode: read from planar.toml or given, enforced by the same gate."""

from __future__ import annotations

from planarpy import RiskRules, Strategy, TradingState, missing

SYM = "XRP/ETH"


class Watched(Strategy):
    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SYM,)

    def reset(self) -> None:
        self.errors: list[str] = []
        self.risk_events: list = []

    def on_order_error(self, ai, reason, request) -> None:
        self.errors.append(reason)

    def on_risk(self, event) -> None:
        self.risk_events.append(event)


def test_rules_from_planar_toml_deny_an_order_that_would_fill(paper):
    """[risk.Watched] applies to a paper run: a market order above max_order_notional is
    denied (None, risk_denied, on_risk) though the book could fill it; a smaller one fills."""
    run = paper(Watched, cash=5.0, settings={"risk": {"Watched": {"max_order_notional": 0.2}}})
    s = run.strategy
    assert s.state.risk.rules == RiskRules(max_order_notional=0.2)
    assert run.call("market_order", SYM, 500.0, side="buy") is None
    (event,) = s.risk_events
    assert (event.kind, event.rule, event.request["amount"]) == ("denied", "max_order_notional",
                                                                 500.0)
    assert run.state()["trades"] == 0 and s.errors == []
    assert run.call("market_order", SYM, 10.0, side="buy")


def test_a_reset_after_a_halt_lets_orders_go_again(paper):
    """Three order errors within a minute halt a run with max_errors_per_minute = 2; the
    next order is denied; reset_trading_state makes it ACTIVE, and an order goes."""
    run = paper(Watched, cash=5.0, risk=RiskRules(max_errors_per_minute=2))
    s = run.strategy
    for _ in range(3):
        assert run.call("market_order", SYM, 0.5, side="buy") is None  # below the minimum
    assert s.state.risk.trading is TradingState.HALTED
    assert run.call("limit_order", SYM, 10.0, 0.0001, side="buy") is None
    assert [e.rule for e in s.risk_events] == ["max_errors_per_minute", "trading_state"]
    assert run.call("reset_trading_state", "checked") is True
    assert run.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing


def test_run_halt_in_paper_cancels_and_denies(paper):
    """The kill switch from Python: the resting order is cancelled, trading is halted by
    "kill_switch", and the next order is denied."""
    run = paper(Watched, cash=5.0)
    assert run.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing
    assert run.halt("manual") is True
    state = run.state()
    assert state["assets"][SYM]["orders"] == [] and state["committed"] == 0
    assert state["trading"] == "halted"
    assert run.call("market_order", SYM, 10.0, side="buy") is None
    assert [(e.kind, e.rule) for e in run.strategy.risk_events] == [
        ("state_changed", "kill_switch"), ("denied", "trading_state")]


def test_a_halt_survives_a_restart_on_the_same_trace_with_a_fresh_account(paper, tmp_path):
    """A paper run halted by the kill switch and started again on its trace starts
    halted (an order is denied until a reset), with the cash it is given: the trading
    state carries over, the simulated account does not."""
    from planarpy.trace import EventTrace, replay_from_trace
    first = paper(Watched, cash=5.0,
                  trace=EventTrace.open(tmp_path / "t", strategy="Watched", exchange="binance"))
    assert first.halt("manual") is True
    first.stop()
    second = paper(Watched, cash=3.0,
                   trace=EventTrace.open(tmp_path / "t", strategy="Watched", exchange="binance"))
    s = second.strategy
    assert second.state()["trading"] == "halted" and s.cash == 3.0
    assert second.call("market_order", SYM, 10.0, side="buy") is None
    assert [(e.kind, e.rule) for e in s.risk_events] == [("state_changed", "kill_switch"),
                                                         ("denied", "trading_state")]
    assert second.call("reset_trading_state", "checked") is True
    assert second.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing
    second.stop()
    report = replay_from_trace(s, tmp_path / "t")
    assert report.ok, str(report)
    assert report.state.risk.trading is TradingState.ACTIVE


def test_a_close_the_halt_denies_cancels_nothing(paper):
    """As in the sim: close_position while halted is denied before it cancels anything,
    so the stop-loss of what is held stays (halt_cancels_orders = false kept it)."""
    run = paper(Watched, cash=5.0,
                risk=RiskRules(max_errors_per_minute=2, halt_cancels_orders=False))
    s = run.strategy
    ai = s.assets[0]
    assert run.call("market_order", SYM, 500.0, side="buy")
    stop = ai.market.round_price(run.market(SYM)["last"] * 0.8)
    assert run.call("stop_order", SYM, 499.0, stop) is missing, s.errors
    for _ in range(3):
        assert run.call("market_order", SYM, 0.5, side="buy") is None  # below the minimum
    assert s.state.risk.trading is TradingState.HALTED
    assert run.call("close_position", SYM) is False
    assert [o.type.value for o in ai.orders.values()] == ["stop_market"]
    assert ai.balance == 499.5 and [e.rule for e in s.risk_events][-1] == "trading_state"


def test_the_kill_switch_cancels_every_order_the_stop_loss_too(paper):
    """A breaker's halt keeps the stop-loss of a position it keeps (tests/fidelity/
    test_risk.py); the kill switch is the operator's own stop and cancels every open
    order, the stop-loss too (`close=True` also sells what is held)."""
    run = paper(Watched, cash=5.0, risk=RiskRules(max_errors_per_minute=2))
    s = run.strategy
    ai = s.assets[0]
    assert run.call("market_order", SYM, 500.0, side="buy")
    stop = ai.market.round_price(run.market(SYM)["last"] * 0.8)
    assert run.call("stop_order", SYM, 499.0, stop) is missing, s.errors
    assert run.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing
    for _ in range(3):
        assert run.call("market_order", SYM, 0.5, side="buy") is None  # below the minimum
    assert s.state.risk.trading is TradingState.HALTED  # the error breaker: the stop stays
    assert [o.type.value for o in ai.orders.values()] == ["stop_market"]
    assert run.halt("manual") is True
    assert ai.orders == {} and ai.balance == 499.5


def test_conditional_orders_and_the_throttle_are_denied_as_in_the_sim(paper):
    """A stop and an OCO pair above max_order_notional answer None, and on_risk hears it
    (not on_order_error); the throttle counts the orders placed at the exchange's time
    (the clock stands still here: one instant), so the fourth in a second is denied."""
    run = paper(Watched, cash=5.0, risk=RiskRules(max_order_notional=0.2,
                                                  max_orders_per_second=3))
    s = run.strategy
    m = s.assets[0].market
    last = run.market(SYM)["last"]
    up, down = m.round_price(last * 1.2), m.round_price(last * 0.8)
    assert run.call("stop_order", SYM, 500.0, up, side="buy") is None
    assert run.call("oco_order", SYM, 500.0, side="buy", price=down, stop=up) is None
    bid = m.round_price(last * 0.5)
    assert [run.call("limit_order", SYM, 10.0, bid) for _ in range(4)] == [missing] * 3 + [None]
    assert [(e.kind, e.rule) for e in s.risk_events] == [
        ("denied", "max_order_notional"), ("denied", "max_order_notional"),
        ("denied", "max_orders_per_second")]
    assert s.errors == [] and len(s.state.risk.orders) == 3
    assert run.summary()["risk_denied"] == 3


# ---- the rate windows over a restart --------------------------------------------------------
def trace_at(path):
    """The trace every run of a test appends to: a restart reads the earlier runs'."""
    from planarpy.trace import EventTrace
    return EventTrace.open(path, strategy="Watched", exchange="binance")


def below_minimum(run) -> None:
    """One order error: an order below the market's minimum, refused before it is filled."""
    assert run.call("market_order", SYM, 0.5, side="buy") is None


def errors_until_halted(run, most: int = 10) -> int:
    """How many order errors it takes to halt `run` (AssertionError if `most` do not)."""
    for n in range(1, most + 1):
        below_minimum(run)
        if run.strategy.state.risk.trading is TradingState.HALTED:
            return n
    raise AssertionError(f"{most} order errors did not halt the run")


def windows(state) -> tuple[list[int], list[int]]:
    return list(state.risk.orders), list(state.risk.errors)


def test_a_crash_within_the_minute_trips_the_error_breaker_at_the_same_error(paper, tmp_path):
    """max_errors_per_minute = 2. A run that stays up halts at its third order error. A run
    that made two and crashed right after the second (its trace cut there, as a SIGKILL
    leaves it), restarted within the minute, halts at its first: the third, as if it had
    stayed up. A second restart counts the three once (not the carried ones again)."""
    from livekit import crashed
    rules = RiskRules(max_errors_per_minute=2)
    stayed = paper(Watched, cash=5.0, risk=rules)
    assert errors_until_halted(stayed) == 3
    stayed.stop()

    first = paper(Watched, cash=5.0, risk=rules, trace=trace_at(tmp_path / "t"))
    below_minimum(first)
    below_minimum(first)
    assert first.strategy.state.risk.trading is TradingState.ACTIVE
    first.stop()
    errors = iter(range(2))
    crashed(tmp_path / "t", tmp_path / "c",
            last=lambda e: e["kind"] == "order_error" and next(errors) == 1)
    second = paper(Watched, cash=5.0, risk=rules, trace=trace_at(tmp_path / "c"))
    s = second.strategy
    assert s.state.risk.trading is TradingState.ACTIVE and len(s.state.risk.errors) == 2
    assert 2 + errors_until_halted(second) == 3
    (halt,) = [e for e in s.risk_events if e.kind == "state_changed"]
    assert halt.rule == "max_errors_per_minute"
    second.stop()
    third = paper(Watched, cash=5.0, risk=rules, trace=trace_at(tmp_path / "c"))
    assert third.state()["trading"] == "halted" and len(third.strategy.state.risk.errors) == 3


def test_the_order_throttle_counts_the_orders_of_the_run_before_a_restart(paper, lx, tmp_path):
    """max_orders_per_minute = 2: two resting orders, a restart within the minute (the
    orders are not carried: the simulated account starts anew, but their creation is):
    the third order is denied by the throttle; a minute later one goes."""
    rules = RiskRules(max_orders_per_minute=2)
    first = paper(Watched, cash=5.0, risk=rules, trace=trace_at(tmp_path / "t"))
    for _ in range(2):
        assert first.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing
    created = list(first.strategy.state.risk.orders)
    first.stop()
    second = paper(Watched, cash=5.0, risk=rules, trace=trace_at(tmp_path / "t"))
    s = second.strategy
    assert s.state.assets[SYM].orders == {} and list(s.state.risk.orders) == created
    assert second.call("limit_order", SYM, 10.0, 0.0001, side="buy") is None
    assert [(e.kind, e.rule) for e in s.risk_events] == [("denied", "max_orders_per_minute")]
    lx.step(60_000)
    assert second.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing


def test_only_the_windows_of_runs_of_its_own_mode_are_carried(paper, lx, tmp_path):
    """Paper and live runs of one strategy share a trace. A paper run's order error, then
    a live run's two: a paper restart counts its own one only (the live account's errors
    are not the simulated one's), and a live restart the live two only."""
    from livekit import Watched as LiveWatched, live
    rules = RiskRules(max_errors_per_minute=3)
    first = paper(Watched, cash=5.0, risk=rules, trace=trace_at(tmp_path / "t"))
    below_minimum(first)
    paper_error = list(first.strategy.state.risk.errors)
    first.stop()
    with live(lx, LiveWatched, trace=trace_at(tmp_path / "t"), risk=rules) as run:
        assert len(run.strategy.state.risk.errors) == 0
        below_minimum(run)
        below_minimum(run)
        live_errors = list(run.strategy.state.risk.errors)
    second = paper(Watched, cash=5.0, risk=rules, trace=trace_at(tmp_path / "t"))
    assert list(second.strategy.state.risk.errors) == paper_error
    second.stop()
    with live(lx, LiveWatched, trace=trace_at(tmp_path / "t"), risk=rules) as run:
        assert list(run.strategy.state.risk.errors) == live_errors


def test_replays_of_a_restarted_run_and_of_the_whole_trace_give_its_windows(paper, tmp_path):
    """Two orders and an order error, a restart, one more of each: the replay of the new
    run reproduces its state and its rate windows (the carried times, then its own), and
    a replay of the whole trace counts each time once, though the earlier run's times are
    both in its own events and in the new run's `risk_carried`."""
    from planarpy.core.apply import apply_event
    from planarpy.core.instances import AssetInstance, State
    from planarpy.trace import iter_events, replay_from_trace
    path = tmp_path / "t"
    first = paper(Watched, cash=5.0, trace=trace_at(path))
    for _ in range(2):
        assert first.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing
    below_minimum(first)
    left = {o.id for o in first.strategy.assets[0].orders.values()}
    first.stop()
    second = paper(Watched, cash=5.0, trace=trace_at(path))
    s = second.strategy
    assert second.call("limit_order", SYM, 10.0, 0.0001, side="buy") is missing
    # each run's order ids are its own: none of the new run's is taken for one of the
    # earlier run's in a replay of both
    assert len(left) == 2 and left.isdisjoint(s.assets[0].orders)
    below_minimum(second)
    second.stop()
    assert [len(w) for w in windows(s.state)] == [3, 2]
    report = replay_from_trace(s, path)
    assert report.ok, str(report)
    assert windows(report.state) == windows(s.state)
    whole = State(s.quote, 0.0, assets={ai.symbol: AssetInstance(ai.market) for ai in s.assets})
    for event in iter_events(path, run=None):
        apply_event(whole, event["kind"], event["payload"] or {})
    assert windows(whole) == windows(s.state)


def test_damage_within_the_last_minute_leaves_the_windows_unknown(paper, lx, tmp_path):
    """An order error; the trace's segment that holds it is damaged. The restart starts
    halted ("trace_damaged"), until a reset. A restart after that reset still finds the
    damage among the last minute's events (the trading state it reads back is the reset,
    newer than the damage): the orders and errors the windows count are unknown, so it
    starts halted too. A minute later the damage is older than any window: after one more
    reset, a restart starts active."""
    import warnings

    from planarpy.trace import TraceDamageWarning
    from planarpy.trace.layout import segment_names
    path = tmp_path / "t"
    first = paper(Watched, cash=5.0, trace=trace_at(path))
    below_minimum(first)
    first.stop()
    chunk = path / segment_names(path)[-1] / "heap" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"!")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceDamageWarning)  # the readers name the damage
        for reason in ("risk history", "last minute"):
            run = paper(Watched, cash=5.0, trace=trace_at(path))
            (change,) = run.strategy.risk_events
            assert (change.rule, run.state()["trading"]) == ("trace_damaged", "halted")
            assert reason in change.reason
            assert run.call("reset_trading_state", "checked the trace") is True
            run.stop()
        lx.step(60_000)
        run = paper(Watched, cash=5.0, trace=trace_at(path))
        assert run.state()["trading"] == "active" and run.strategy.risk_events == []
