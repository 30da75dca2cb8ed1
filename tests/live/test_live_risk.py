"""Risk rules in live mode against the local exchange: read from planar.toml or given,
enforced before anything is sent, and counted on what the exchange did not answer."""

from __future__ import annotations

from planarpy import RiskRules, Trade, TradingState, missing
from planarpy.trace import EventTrace, replay_from_trace

from livekit import Watched, eventually, live, raw_client, replayed

SYM = "XRP/ETH"


def trace_at(tmp_path):
    """The trace every run of a test appends to: a restart reads the earlier runs'."""
    return EventTrace.open(tmp_path / "t", strategy="Watched", exchange="binance")


def far_bid(lx) -> float:
    return round(raw_client(lx).fetch_order_book(SYM)["bids"][0][0] * 0.5, 8)


def open_on_exchange(lx) -> int:
    return len(raw_client(lx).fetch_open_orders(SYM))


def test_rules_from_planar_toml_deny_an_order_before_it_is_sent(lx):
    """[risk] in the settings applies to a live run: an order above max_order_notional is
    refused (None, a risk_denied event, on_risk), nothing reaches the exchange; a
    strategy table overrides the global one."""
    settings = {"exchanges": {"binance": {"rate_limit": False}},
                "risk": {"max_order_notional": 10.0, "Watched": {"max_order_notional": 0.05}}}
    with live(lx, Watched, settings=settings) as run:
        s = run.strategy
        assert s.state.risk.rules == RiskRules(max_order_notional=0.05)
        assert run.call("limit_order", SYM, 200.0, far_bid(lx), side="buy") is None
        (event,) = s.risk_events
        assert event.kind == "denied" and event.rule == "max_order_notional"
        assert open_on_exchange(lx) == 0 and s.errors == []
        assert run.call("limit_order", SYM, 20.0, far_bid(lx), side="buy", waitfor=0) is missing


def test_fire_and_forget_orders_cannot_pass_max_open_orders(lx):
    """Orders sent without waiting are counted by the gate as soon as they pass it (they
    exist locally before they are sent): the third of three is denied at once."""
    with live(lx, Watched, risk=RiskRules(max_open_orders=2)) as run:
        price = far_bid(lx)
        out = [run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0, synced=False)
               for _ in range(3)]
        assert out == [missing, missing, None]
        assert run.strategy.risk_events[0].rule == "max_open_orders"
        eventually(lambda: open_on_exchange(lx) == 2)
        assert eventually(lambda: run.reconcile() == [])


def test_orders_the_exchange_does_not_answer_trip_the_error_breaker(lx, tmp_path):
    """Two submits that get no answer (503) with max_errors_per_minute = 1: the breaker
    halts trading; the next order is denied without a request; replay agrees."""
    trace = EventTrace.open(tmp_path / "t", strategy="Watched", exchange="binance")
    with live(lx, Watched, trace=trace, risk=RiskRules(max_errors_per_minute=1)) as run:
        s = run.strategy
        price = far_bid(lx)
        lx.faults.update({"http_status": 503, "http_path": "POST /api/v3/order"})
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.2) is missing
        assert s.state.risk.trading is TradingState.ACTIVE
        assert run.call("limit_order", SYM, 100.0, price, side="buy", waitfor=0.2) is missing
        eventually(lambda: s.state.risk.trading is TradingState.HALTED)
        (halt,) = [e for e in s.risk_events if e.kind == "state_changed"]
        assert halt.rule == "max_errors_per_minute"
        lx.faults.clear()
        assert run.call("market_order", SYM, 10.0, side="buy") is None
        assert s.risk_events[-1].rule == "trading_state"
        # the halt cancels the orders of unknown outcome once the exchange knows them
        eventually(lambda: not run.state()["assets"][SYM]["orders"], timeout=15)
    report = replay_from_trace(run.strategy, tmp_path / "t")
    assert report.ok, str(report)
    assert report.state.risk.trading is TradingState.HALTED and report.state.risk.denied == 1


def test_a_lost_submit_later_found_never_placed_counts_as_one_error(lx, tmp_path):
    """One submit answered 503 (nothing done) is one failed order: its exchange error
    counts toward max_errors_per_minute, and its settling as never placed (an order error,
    once the submit window has passed) does not count it again. With a limit of 1 the
    run stays ACTIVE; a second failure within the minute halts it."""
    settings = {"exchanges": {"binance": {"rate_limit": False,
                                          "options": {"recvWindow": 1000}}}}
    trace = EventTrace.open(tmp_path / "t", strategy="Watched", exchange="binance")
    with live(lx, Watched, trace=trace, settings=settings,
              risk=RiskRules(max_errors_per_minute=1)) as run:
        s = run.strategy
        lx.faults.update({"http_status": 503, "http_path": "POST /api/v3/order", "http_count": 1})
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy", waitfor=0.2) \
            is missing
        eventually(lambda: not run.state()["assets"][SYM]["orders"], timeout=10)
        assert any("was never placed" in e for e in s.errors)
        assert s.state.risk.trading is TradingState.ACTIVE and len(s.state.risk.errors) == 1
        assert run.call("market_order", SYM, 0.5, side="buy") is None  # below the minimum
        assert s.state.risk.trading is TradingState.HALTED
    report = replay_from_trace(run.strategy, tmp_path / "t")
    assert report.ok, str(report)
    assert report.state.risk.trading is TradingState.HALTED


def test_reducing_stays_reducing_over_a_restart_on_the_next_utc_day(lx, tmp_path):
    """A run REDUCING (its error breaker's action) is stopped; the exchange's clock passes
    midnight UTC; the run started again is still REDUCING (a new day resets no state),
    its loss breaker measures the new day from the new day's equity, and the trace
    replays to that state."""
    from planarpy.core.risk import DAY_MS, day_of
    rules = RiskRules(max_errors_per_minute=1, on_errors="reduce", max_daily_loss=0.5)

    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        for _ in range(2):
            assert run.call("market_order", SYM, 0.5, side="buy") is None  # below the minimum
        assert run.strategy.state.risk.trading is TradingState.REDUCING
    lx.step(DAY_MS - lx.clock.now() % DAY_MS + 120_000)  # two minutes into the next day
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        risk = run.strategy.state.risk
        assert risk.trading is TradingState.REDUCING
        seen = run.session.ticks
        lx.step(60_000)
        eventually(lambda: run.session.ticks > seen, timeout=20)
        assert risk.trading is TradingState.REDUCING and risk.day == day_of(lx.clock.now())
        assert [(e.kind, e.rule) for e in run.strategy.risk_events] == [
            ("state_changed", "max_errors_per_minute")]
    report = replay_from_trace(run.strategy, tmp_path / "t")
    assert report.ok, str(report)
    assert report.state.risk.trading is TradingState.REDUCING


# ---- the rate windows over a restart --------------------------------------------------------
def below_minimum(run) -> None:
    """One order error: an order below the market's minimum, refused before it is sent."""
    assert run.call("market_order", SYM, 0.5, side="buy") is None


def test_a_restart_within_the_minute_trips_the_error_breaker_at_the_same_error(lx, tmp_path):
    """max_errors_per_minute = 2. Two order errors, a restart on the same trace within the
    minute (the exchange's clock has not moved): the next error is the third in a minute
    and halts, as it would have without the restart; the errors do not count twice in a
    second restart, and the trace replays to the halt."""
    rules = RiskRules(max_errors_per_minute=2)

    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        below_minimum(run)
        below_minimum(run)
        assert run.strategy.state.risk.trading is TradingState.ACTIVE
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:  # restarts with nothing
        assert run.strategy.state.risk.trading is TradingState.ACTIVE
        assert len(run.strategy.state.risk.errors) == 2
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        risk = run.strategy.state.risk
        assert risk.trading is TradingState.ACTIVE and len(risk.errors) == 2
        below_minimum(run)
        assert risk.trading is TradingState.HALTED
        (halt,) = [e for e in run.strategy.risk_events if e.kind == "state_changed"]
        assert halt.rule == "max_errors_per_minute"
    replayed(run.strategy, tmp_path / "t")


def test_errors_older_than_a_minute_are_not_carried_over(lx, tmp_path):
    """Two order errors, then the run restarts a minute later: they left the breaker's
    window, so the next error does not halt."""
    rules = RiskRules(max_errors_per_minute=2)

    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        below_minimum(run)
        below_minimum(run)
    lx.step(60_000)
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        assert len(run.strategy.state.risk.errors) == 0
        below_minimum(run)
        assert run.strategy.state.risk.trading is TradingState.ACTIVE


def test_a_lost_submit_carried_over_a_restart_counts_once(lx, tmp_path):
    """One submit answered 503 (nothing done), settled as never placed: one error (its
    order_error is `counted` as its exchange error). Restarted within the minute with
    max_errors_per_minute = 2, the run counts that one error: the next error leaves it
    ACTIVE, the one after halts."""
    settings = {"exchanges": {"binance": {"rate_limit": False,
                                          "options": {"recvWindow": 1000}}}}
    rules = RiskRules(max_errors_per_minute=2)

    with live(lx, Watched, trace=trace_at(tmp_path), settings=settings, risk=rules) as run:
        lx.faults.update({"http_status": 503, "http_path": "POST /api/v3/order", "http_count": 1})
        assert run.call("limit_order", SYM, 100.0, far_bid(lx), side="buy", waitfor=0.2) \
            is missing
        eventually(lambda: any("was never placed" in e for e in run.strategy.errors), timeout=10)
        assert len(run.strategy.state.risk.errors) == 1
    with live(lx, Watched, trace=trace_at(tmp_path), settings=settings, risk=rules) as run:
        risk = run.strategy.state.risk
        assert len(risk.errors) == 1
        below_minimum(run)
        assert risk.trading is TradingState.ACTIVE
        below_minimum(run)
        assert risk.trading is TradingState.HALTED


def test_the_order_throttle_at_its_limit_denies_after_a_restart(lx, tmp_path):
    """max_orders_per_minute = 2: two market orders (filled: no open order is carried
    over), a restart within the minute: the third order is denied by the throttle, not
    sent; a minute later one goes. The trace replays to the live state."""
    rules = RiskRules(max_orders_per_minute=2)

    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        for _ in range(2):
            assert isinstance(run.call("market_order", SYM, 10.0, side="buy"), Trade)
    sent = len(raw_client(lx).fetch_orders(SYM, limit=1_000_000))
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        assert run.call("market_order", SYM, 10.0, side="buy") is None
        assert run.strategy.risk_events[-1].rule == "max_orders_per_minute"
        assert len(raw_client(lx).fetch_orders(SYM, limit=1_000_000)) == sent
        lx.step(60_000)
        assert isinstance(run.call("market_order", SYM, 10.0, side="buy"), Trade)
    replayed(run.strategy, tmp_path / "t")


# ---- the loss breakers over a restart -------------------------------------------------------
def priced(factory, moves):
    """A local exchange on a stepped clock at 23:00 UTC (T0), with an account holding 10
    ETH, whose XRP/ETH closes (a random walk) are scaled by `moves` ((first candle index,
    factor), ...: index 120 opens at 23:00, index 180 at midnight)."""
    import numpy as np

    from planarpy import OHLCV
    from planarpy.localexchange.clock import Clock

    from fidelitykit import MINUTE, T0, exchange, walk
    base = walk(480, T0 - 120 * MINUTE)
    close = base.close.copy()
    for at, factor in moves:
        close[at:] = np.round(close[at:] * factor, 8)
    open_ = np.r_[close[0], close[:-1]]
    candles = OHLCV(base.timestamp, open_, np.maximum(open_, close), np.minimum(open_, close),
                    close, base.volume)
    return exchange(candles, Clock(start=T0), T0, cash=10.0, factory=factory)


def test_a_restart_on_a_later_utc_day_measures_the_day_from_midnight(
        local_exchange_factory, tmp_path):
    """max_daily_loss = 5%. The run buys XRP for most of its 10 ETH at 23:30 UTC and is
    stopped; the price falls 15% just after midnight while it is down; it restarts at
    00:30. The new day's loss counts from the equity at midnight (the last close of the
    day before, which the restarted run's candles have: what a run that had stayed up
    measured), so the first close halts it; the day did not start again from the equity
    at the restart, which forgave the loss of the day while the run was down."""
    from planarpy.core.risk import DAY_MS, day_of

    from fidelitykit import MINUTE, T0, step_minutes
    lx = priced(local_exchange_factory, ((185, 0.85),))  # 00:05
    rules = RiskRules(max_daily_loss=0.05)

    lx.step(30 * MINUTE)
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        assert isinstance(run.call("market_order", SYM, 6000.0, side="buy"), Trade)
        step_minutes(lx, run, 1)
        assert run.strategy.state.risk.day == day_of(T0)
    lx.step(60 * MINUTE)  # 00:31: the price fell at 00:05
    assert day_of(lx.clock.now()) == day_of(T0) + 1 and (T0 + 3_600_000) % DAY_MS == 0
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        risk = run.strategy.state.risk
        step_minutes(lx, run, 1)  # (the run may tick 00:31 as it starts)
        assert risk.day == day_of(lx.clock.now())
        assert risk.trading is TradingState.HALTED, (risk.day_start_equity, risk.peak_equity)
        (halt,) = [e for e in run.strategy.risk_events if e.kind == "state_changed"]
        assert halt.rule == "max_daily_loss"
    replayed(run.strategy, tmp_path / "t")


def test_the_drawdown_peak_is_carried_over_a_restart(local_exchange_factory, tmp_path):
    """max_drawdown = 10%. The run buys XRP for most of its 10 ETH; the price rises 20%
    and the run measures its new peak; it stops; the price falls back while it is down.
    The restarted run measures the drawdown from the carried peak and halts at its first
    close."""
    from fidelitykit import MINUTE, step_minutes
    lx = priced(local_exchange_factory, ((150, 1.2), (170, 0.75)))  # 23:30 up, 23:50 down
    rules = RiskRules(max_drawdown=0.1)

    lx.step(10 * MINUTE)
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        assert isinstance(run.call("market_order", SYM, 6000.0, side="buy"), Trade)
        step_minutes(lx, run, 25)  # 23:35
        peak = run.strategy.state.risk.peak_equity
        assert peak > 11.0
    lx.step(20 * MINUTE)  # 23:55
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        risk = run.strategy.state.risk
        assert risk.peak_equity == peak
        step_minutes(lx, run, 1)  # (the run may tick 23:55 as it starts)
        assert risk.trading is TradingState.HALTED
        (halt,) = [e for e in run.strategy.risk_events if e.kind == "state_changed"]
        assert halt.rule == "max_drawdown"
    replayed(run.strategy, tmp_path / "t")


# ---- the trading state over a restart -------------------------------------------------------
def test_a_run_reducing_after_a_restart_lets_reducing_orders_through(lx, tmp_path):
    """The error breaker moves the run to REDUCING (on_errors = "reduce") while it holds
    XRP. Restarted, it is still REDUCING: a buy is denied without a request, a sell of
    part of the XRP goes through."""
    rules = RiskRules(max_errors_per_minute=1, on_errors="reduce")

    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        assert isinstance(run.call("market_order", SYM, 100.0, side="buy"), Trade)
        below_minimum(run)
        below_minimum(run)
        assert run.strategy.state.risk.trading is TradingState.REDUCING
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        sent = len(raw_client(lx).fetch_orders(SYM, limit=1_000_000))
        assert run.call("market_order", SYM, 100.0, side="buy") is None
        assert run.strategy.risk_events[-1].rule == "trading_state"
        assert len(raw_client(lx).fetch_orders(SYM, limit=1_000_000)) == sent
        assert isinstance(run.call("market_order", SYM, 50.0, side="sell"), Trade)
        assert run.strategy.state.risk.trading is TradingState.REDUCING
    replayed(run.strategy, tmp_path / "t")


def test_a_reset_after_a_restart_forgives_the_carried_errors_for_good(lx, tmp_path):
    """max_errors_per_minute = 1: two errors halt the run. Restarted, it is halted and
    counts those two errors; a reset makes it ACTIVE and forgives them (one more error
    does not halt it), and a restart after the reset neither halts it nor brings them
    back: the error of after the reset is the only one counted, and a second halts."""
    rules = RiskRules(max_errors_per_minute=1)

    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        below_minimum(run)
        below_minimum(run)
        assert run.strategy.state.risk.trading is TradingState.HALTED
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        risk = run.strategy.state.risk
        assert risk.trading is TradingState.HALTED and len(risk.errors) == 2
        assert run.call("reset_trading_state", "checked") is True
        assert risk.trading is TradingState.ACTIVE and len(risk.errors) == 0
        below_minimum(run)
        assert risk.trading is TradingState.ACTIVE
    with live(lx, Watched, trace=trace_at(tmp_path), risk=rules) as run:
        risk = run.strategy.state.risk
        assert risk.trading is TradingState.ACTIVE and len(risk.errors) == 1
        below_minimum(run)
        assert risk.trading is TradingState.HALTED
    replayed(run.strategy, tmp_path / "t")
