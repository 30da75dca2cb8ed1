"""Each risk rule in sim, paper and live over one local-exchange replay: the same strategy
breaches the same limit at the same decision, every order the rule refuses afterwards is
denied with a risk_denied event, and the trace replays to the same state."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from planarpy import OHLCV, RiskRules, Strategy, Trade, backtest, call, missing
from planarpy.core.orders import OrderType, Side
from planarpy.core.risk import TradingState
from planarpy.localexchange.clock import Clock
from planarpy.modes.sim import SimConfig
from planarpy.trace import EventTrace, replay_from_trace

from fidelitykit import MINUTE, SYM, T0, exchange, step_minutes, wait_for, walk

CLIFF = 2  # the candle opening at T0 + 2 min (closing at T0 + 3 min) falls by 10%


def cliff_candles() -> OHLCV:
    """Four hours of candles around T0 (no empty minute) whose price drops by a tenth in
    the candle that closes at T0 + 3 minutes, and stays there."""
    base = walk(240, T0 - 120 * MINUTE)
    close = base.close.copy()
    close[120 + CLIFF:] = np.round(close[120 + CLIFF:] * 0.9, 8)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + (base.high - np.maximum(base.open, base.close))
    low = np.minimum(open_, close) - (np.minimum(base.open, base.close) - base.low)
    return OHLCV(base.timestamp, open_, np.round(high, 8), np.round(low, 8), close, base.volume)


DATA = cliff_candles()
Act = Callable[[Any], Any]


def buy(amount: float) -> Act:
    return lambda s: call(s, "market_order", SYM, amount, side="buy")


def sell(amount: float) -> Act:
    return lambda s: call(s, "market_order", SYM, amount, side="sell")


def far_bid(s: Any) -> Any:
    price = round(s.assets[0].ohlcv.close.item(s.i) * 0.5, 8)
    return call(s, "limit_order", SYM, 100.0, price, side="buy", waitfor=0.0)


def several(*acts: Act) -> Act:
    return lambda s: [a(s) for a in acts]


# rule: (rules, script: minute after T0 -> action, the risk events expected:
#        (minute, kind, rule)), the outcome of each action
CASES: dict[str, tuple[RiskRules, dict[int, Act], list[tuple[int, str, str]]]] = {
    "max_order_notional": (RiskRules(max_order_notional=0.3),
                           {1: buy(100), 2: buy(300), 3: buy(100)},
                           [(2, "denied", "max_order_notional")]),
    "max_position_notional": (RiskRules(max_position_notional=0.3),
                              {1: buy(100), 2: buy(150), 3: sell(50)},
                              [(2, "denied", "max_position_notional")]),
    "max_leverage": (RiskRules(max_leverage=0.5), {1: buy(200), 2: buy(200), 4: sell(100)},
                     [(2, "denied", "max_leverage")]),
    "max_open_orders": (RiskRules(max_open_orders=2),
                        {1: several(far_bid, far_bid), 2: far_bid,
                         3: lambda s: call(s, "cancel_orders", SYM), 4: far_bid},
                        [(2, "denied", "max_open_orders")]),
    "max_orders_per_minute": (RiskRules(max_orders_per_minute=2),
                              {1: several(buy(10), buy(10), buy(10)), 2: buy(10)},
                              [(1, "denied", "max_orders_per_minute")]),
    "max_orders_per_second": (RiskRules(max_orders_per_second=2),
                              {1: several(buy(10), buy(10), buy(10)), 2: buy(10)},
                              [(1, "denied", "max_orders_per_second")]),
    "max_errors_per_minute": (RiskRules(max_errors_per_minute=2),
                              {1: several(buy(0.5), buy(0.5), buy(0.5)), 2: buy(10),
                               4: buy(10)},
                              [(1, "state_changed", "max_errors_per_minute"),
                               (2, "denied", "trading_state"), (4, "denied", "trading_state")]),
    "max_daily_loss_quote": (RiskRules(max_daily_loss_quote=0.02), {1: buy(400), 4: buy(10),
                                                                    5: sell(100)},
                             [(3, "state_changed", "max_daily_loss_quote"),
                              (4, "denied", "trading_state"), (5, "denied", "trading_state")]),
    "max_daily_loss": (RiskRules(max_daily_loss=0.02, halt_cancels_orders=False),
                       {1: buy(400), 4: buy(10)},
                       [(3, "state_changed", "max_daily_loss"), (4, "denied", "trading_state")]),
    "max_drawdown": (RiskRules(max_drawdown=0.03, on_drawdown="reduce"),
                     {1: buy(400), 4: buy(10), 5: sell(100)},
                     [(3, "state_changed", "max_drawdown"), (4, "denied", "trading_state")]),
}
MINUTES = 6  # each run ticks the closes T0 .. T0 + 6 min


class Scripted(Strategy):
    """Runs `script[k](self)` at the tick of the close T0 + k minutes; keeps what each
    call returned and every risk event."""

    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = (SYM,)
    initial_cash = 1.0
    script: dict[int, Act] = {}

    def reset(self) -> None:
        self.results: dict[int, Any] = {}
        self.risk_events: list[Any] = []

    def tick(self, ts: int) -> None:
        k, r = divmod(ts - T0, MINUTE)
        act = self.script.get(k) if r == 0 else None
        if act is not None:
            self.results[k] = act(self)

    def on_risk(self, event: Any) -> None:
        self.risk_events.append(event)


def outcome(x: Any) -> Any:
    """A call's result as comparable across modes: what kind of answer it was."""
    if isinstance(x, list):
        return [outcome(y) for y in x]
    return "trade" if isinstance(x, Trade) else "missing" if x is missing else x


def seen(s: Any) -> list[tuple[int, str, str]]:
    return [((e.time - T0) // MINUTE, e.kind, e.rule) for e in s.risk_events
            if e.time <= T0 + MINUTES * MINUTE]


def in_sim(cls: type, rules: RiskRules, path: Any) -> Any:
    with EventTrace.open(path, strategy=cls.__name__, exchange="binance") as trace:
        r = backtest(cls, data={SYM: DATA}, settings={}, risk=rules, recorder=trace,
                     config=SimConfig(slippage=0.0, volume_cap=False))
    return r.strategy


def in_mode(start: Any, lx: Any, cls: type, rules: RiskRules, path: Any) -> Any:
    trace = EventTrace.open(path, strategy=cls.__name__, exchange="binance")
    run = start(lx, cls, risk=rules, trace=trace)
    wait_for(lambda: run.session.ticks)
    step_minutes(lx, run, MINUTES)
    run.stop()
    return run.strategy


@pytest.fixture
def lx(local_exchange_factory: Any) -> Any:
    return exchange(DATA, Clock(start=T0), T0, factory=local_exchange_factory)


@pytest.mark.parametrize("rule", list(CASES))
def test_a_rule_breaches_at_the_same_decision_in_every_mode(rule, lx, start, tmp_path):
    """The backtest and the paper or live run of one script: the same risk events at the
    same closes, the same calls refused, and each trace replays to its run's state."""
    rules, script, expected = CASES[rule]
    cls = type(f"Scripted_{rule}", (Scripted,), {"script": script})
    sim = in_sim(cls, rules, tmp_path / "sim")
    assert seen(sim) == expected
    s = in_mode(start, lx, cls, rules, tmp_path / start.mode)
    assert seen(s) == expected
    assert {k: outcome(v) for k, v in s.results.items()} == \
        {k: outcome(v) for k, v in sim.results.items() if k <= MINUTES}
    assert s.state.risk.trading is sim.state.risk.trading
    for strategy, path in ((sim, tmp_path / "sim"), (s, tmp_path / start.mode)):
        report = replay_from_trace(strategy, path)
        assert report.ok, str(report)
        assert report.state.risk.trading is strategy.state.risk.trading
        assert report.state.risk.denied == strategy.state.risk.denied


def protect(s: Any) -> Any:
    """A stop-loss for all the base held, far below the cliff (it never fires here)."""
    ai = s.assets[0]
    trigger = round(ai.ohlcv.close.item(s.i) * 0.7, 8)
    return call(s, "stop_order", SYM, ai.floor_amount(ai.free_balance), trigger, waitfor=0.0)


def test_a_breakers_halt_keeps_the_stop_loss_of_the_position_it_keeps(lx, start, tmp_path):
    """The daily loss halts a run that holds coins, with a stop-loss under them and a bid
    resting: the halt (it keeps the positions) cancels the bid, which would add exposure,
    and leaves the stop-loss working, as the gate would deny putting it back. The same in
    the backtest and in paper or live; the traces replay to it."""
    rules = RiskRules(max_daily_loss=0.02)
    cls = type("Protected", (Scripted,), {"script": {1: buy(400), 2: several(protect, far_bid)}})
    sim = in_sim(cls, rules, tmp_path / "sim")
    s = in_mode(start, lx, cls, rules, tmp_path / start.mode)
    for strategy, path in ((sim, tmp_path / "sim"), (s, tmp_path / start.mode)):
        assert seen(strategy) == [(3, "state_changed", "max_daily_loss")]
        assert strategy.state.risk.trading is TradingState.HALTED
        left = list(strategy.assets[0].orders.values())
        assert [(o.type, o.side) for o in left] == [(OrderType.STOP_MARKET, Side.SELL)]
        assert left[0].amount == strategy.assets[0].floor_amount(strategy.assets[0].balance)
        report = replay_from_trace(strategy, path)
        assert report.ok, str(report)
        assert list(report.state.assets[SYM].orders) == [left[0].id]


class Retrying(Scripted):
    """Retries a refused order from on_order_error: again as refused, then a valid one."""

    def reset(self) -> None:
        super().reset()
        self.errors: list[str] = []

    def on_order_error(self, ai: Any, reason: str, request: Any) -> None:
        self.errors.append(reason)
        if len(self.errors) == 1:
            self.results["again"] = buy(0.5)(self)
        elif len(self.errors) == 2:
            self.results["valid"] = buy(10)(self)


def test_a_retry_from_on_order_error_after_the_breaker_tripped_is_denied(lx, start, tmp_path):
    """The order error that trips max_errors_per_minute halts before on_order_error hears
    it, in every mode: the valid retry the callback places then is denied, never sent."""
    rules = RiskRules(max_errors_per_minute=1)
    cls = type("Retrying_errors", (Retrying,), {"script": {1: buy(0.5)}})
    sim = in_sim(cls, rules, tmp_path / "sim")
    s = in_mode(start, lx, cls, rules, tmp_path / start.mode)
    for strategy, path in ((sim, tmp_path / "sim"), (s, tmp_path / start.mode)):
        assert seen(strategy) == [(1, "state_changed", "max_errors_per_minute"),
                                  (1, "denied", "trading_state")]
        assert len(strategy.errors) == 2 and strategy.results["valid"] is None
        assert strategy.state.trades == [] and strategy.state.risk.trading is TradingState.HALTED
        report = replay_from_trace(strategy, path)
        assert report.ok, str(report)
        assert report.state.risk.trading is TradingState.HALTED and report.state.risk.denied == 1


def crossing_post_only(s: Any) -> Any:
    """A post-only bid above the price: refused where it would execute (it would take)."""
    price = round(s.assets[0].ohlcv.close.item(s.i) * 1.5, 8)
    return call(s, "limit_order", SYM, 10.0, price, side="buy", tif="PO", waitfor=0.0)


def test_an_order_refused_where_it_executes_is_not_counted_by_the_throttle(lx, start,
                                                                           tmp_path):
    """A post-only order that would take is refused by the sim's fills, by paper's book
    and by the exchange: in every mode the throttle does not count it (the README: "an
    order refused or denied, not"), so the same orders after it pass or are denied."""
    rules = RiskRules(max_orders_per_minute=2)
    script = {1: several(crossing_post_only, buy(10), buy(10), buy(10))}
    cls = type("Scripted_refused", (Scripted,), {"script": script})
    sim = in_sim(cls, rules, tmp_path / "sim")
    s = in_mode(start, lx, cls, rules, tmp_path / start.mode)
    for strategy in (sim, s):
        assert seen(strategy) == [(1, "denied", "max_orders_per_minute")]
        assert [outcome(x) for x in strategy.results[1]] == [None, "trade", "trade", None]
        assert len(strategy.state.risk.orders) == 2
    report = replay_from_trace(s, tmp_path / start.mode)
    assert report.ok, str(report)
    assert list(report.state.risk.orders) == list(s.state.risk.orders)


def far_ioc_bid(s: Any) -> Any:
    """An immediate-or-cancel bid far below the price: nothing of it can fill."""
    price = round(s.assets[0].ohlcv.close.item(s.i) * 0.5, 8)
    return call(s, "limit_order", SYM, 10.0, price, side="buy", tif="IOC")


def test_an_ioc_order_that_fills_nothing_counts_alike_in_every_mode(lx, start, tmp_path,
                                                                    request):
    """An IOC bid that fills nothing is an order error in every mode, and an order the
    throttle counts in every mode (the exchange takes it and expires it; the sim and
    paper do the same): the orders after it are decided alike."""
    rules = RiskRules(max_orders_per_minute=2)
    script = {1: several(far_ioc_bid, buy(10), buy(10), buy(10))}
    cls = type("Scripted_ioc", (Scripted,), {"script": script})
    sim = in_sim(cls, rules, tmp_path / "sim")
    s = in_mode(start, lx, cls, rules, tmp_path / start.mode)
    assert seen(s) == seen(sim)
    assert [outcome(x) for x in s.results[1]] == [outcome(x) for x in sim.results[1]]


def bracket(s: Any) -> Any:
    """A market bracket entry with both exits, well away from the price."""
    close = s.assets[0].ohlcv.close.item(s.i)
    return call(s, "bracket_order", SYM, 50.0, stop_loss=round(close * 0.8, 8),
                take_profit=round(close * 1.2, 8))


def test_an_order_after_a_filled_bracket_meets_the_throttle_with_its_exits(lx, start, tmp_path,
                                                                           request):
    """A market bracket that fills places its two exits before the strategy's next call,
    in every mode: with max_orders_per_minute = 3 (the entry and its exits) the buy after
    it is denied, as in the backtest (live: the exits that the fill in the entry's reply
    sets off are placed by the call before it returns)."""
    rules = RiskRules(max_orders_per_minute=3)
    cls = type("Scripted_bracket", (Scripted,), {"script": {1: several(bracket, buy(10))}})
    sim = in_sim(cls, rules, tmp_path / "sim")
    s = in_mode(start, lx, cls, rules, tmp_path / start.mode)
    for strategy in (sim, s):
        assert [outcome(x) for x in strategy.results[1]] == ["trade", None]
        assert seen(strategy) == [(1, "denied", "max_orders_per_minute")]
        assert len(strategy.state.risk.orders) == 3


def test_an_order_after_a_bracket_answered_before_its_fill_meets_the_throttle_with_its_exits(
        lx, tmp_path):
    """As above, live, with the exchange answering the entry before it matched (as
    Binance USD-M answers a market order by default), after an earlier order started the
    user data watchers: the entry's fill reaches the run on that stream while its call
    waits for it; the exits it sets off are still the call's, placed before it returns,
    as in the backtest."""
    from fidelitykit import run_live
    rules = RiskRules(max_orders_per_minute=3)
    # an order first: the user data watchers start with it, in the call of that order
    cls = type("Scripted_bracket_ack", (Scripted,),
               {"script": {1: buy(10), 3: several(bracket, buy(10))}})
    sim = in_sim(cls, rules, tmp_path / "sim")
    lx.faults.update({"reply_before_fill": True})
    trace = EventTrace.open(tmp_path / "live", strategy=cls.__name__, exchange="binance")
    run = run_live(lx, cls, risk=rules, trace=trace, candles=100)
    try:
        wait_for(lambda: run.session.ticks)
        step_minutes(lx, run, MINUTES)
    finally:
        run.stop()
    s = run.strategy
    assert [outcome(x) for x in sim.results[3]] == ["trade", None]
    assert [outcome(x) for x in s.results[3]] == ["trade", None]
    assert seen(s) == seen(sim) == [(3, "denied", "max_orders_per_minute")]
