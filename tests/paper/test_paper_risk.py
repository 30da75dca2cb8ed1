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
