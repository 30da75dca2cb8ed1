"""Each risk rule in a backtest: the order it denies, the state a breaker moves to, the events."""

import numpy as np
import pytest

from planarpy import ConfigError, RiskRules, TradingState, call, missing
from planarpy.core.risk import DAY_MS

from simkit import PERP, SPOT, candles, flat, run, scripted

SYM = SPOT.symbol


def prices(*closes, volume=1e6):
    """Flat candles at each price (open = high = low = close)."""
    return [(p, p, p, p, volume) for p in closes]


def denied(s):
    return [e for e in s.risk_events if e.kind == "denied"]


def changes(s):
    return [e for e in s.risk_events if e.kind == "state_changed"]


def buy(amount, **kw):
    return lambda s: call(s, "market_order", SYM, amount, side="buy", **kw)


def sell(amount, **kw):
    return lambda s: call(s, "market_order", SYM, amount, side="sell", **kw)


def test_no_rules_no_risk_events():
    """Without rules nothing is denied and the state stays ACTIVE."""
    r = run({1: buy(2.0)}, flat(4))
    assert r.trades and r.strategy.risk_events == []
    assert r.strategy.state.risk.trading is TradingState.ACTIVE


def test_max_order_notional_denies_the_order_not_the_reductions():
    """An order above the notional is denied (None, a risk_denied event naming the rule);
    smaller ones and orders that reduce the holding pass."""
    script = {1: buy(2.0), 2: buy(3.0), 3: buy(2.0), 4: sell(4.0)}
    r = run(script, flat(6), risk=RiskRules(max_order_notional=250.0))
    s = r.strategy
    assert s.results[1] and s.results[2] is None and s.results[3] and s.results[4]
    (e,) = denied(s)
    assert e.rule == "max_order_notional" and e.state is TradingState.ACTIVE
    assert "order notional 300 USD is above max_order_notional = 250" in e.reason
    assert e.request["amount"] == 3.0 and e.symbol == SYM
    assert s.state.risk.denied == 1 and s.errors == []  # a denial is not an order error
    assert s.asset(SYM).balance == 0


def test_max_position_notional_counts_holdings_and_open_orders():
    """Held plus resting buys plus the order may not exceed the position limit."""
    script = {1: buy(2.0),
              2: lambda s: call(s, "limit_order", SYM, 1.0, 99.0, side="buy"),
              3: buy(1.0), 4: buy(0.5)}
    r = run(script, flat(6), risk=RiskRules(max_position_notional=350.0))
    s = r.strategy
    assert s.results[2] is missing and s.results[3] is None and s.results[4]
    (e,) = denied(s)
    # resting orders are valued at the new order's price: 2 held + 1 resting + 1 new, at 100
    assert e.rule == "max_position_notional" and "would reach 400 USD" in e.reason


def test_max_leverage_is_exposure_over_equity():
    """On margin, an order that would take exposure over equity above the limit is denied."""
    script = {0: lambda s: call(s, "update_leverage", PERP.symbol, 5),
              1: lambda s: call(s, "market_order", PERP.symbol, 15.0, side="buy"),
              2: lambda s: call(s, "market_order", PERP.symbol, 6.0, side="buy"),
              3: lambda s: call(s, "market_order", PERP.symbol, 4.0, side="buy")}
    r = run(script, flat(6), market=PERP, risk=RiskRules(max_leverage=2.0))
    s = r.strategy
    assert s.results[1] and s.results[2] is None and s.results[3]
    (e,) = denied(s)
    assert e.rule == "max_leverage" and "2.1" in e.reason and "above max_leverage = 2" in e.reason


def test_max_open_orders():
    """A new order is denied while the limit of open orders is reached; cancelling frees room."""
    limit = lambda price: lambda s: call(s, "limit_order", SYM, 1.0, price, side="buy")  # noqa: E731
    script = {1: limit(90.0), 2: limit(91.0), 3: limit(92.0),
              4: lambda s: call(s, "cancel_orders", SYM), 5: limit(93.0)}
    r = run(script, flat(8), risk=RiskRules(max_open_orders=2))
    s = r.strategy
    assert s.results[3] is None and s.results[5] is missing
    (e,) = denied(s)
    assert e.rule == "max_open_orders" and "2 orders are open already" in e.reason


@pytest.mark.parametrize("rule, per_tick", [("max_orders_per_minute", 2),
                                            ("max_orders_per_second", 2)])
def test_order_throttle_uses_the_strategy_clock(rule, per_tick):
    """Within one tick (one instant of sim time) the limit holds; one candle (60 s) later
    the per-second and per-minute windows have both moved on."""
    def burst(s):
        return [call(s, "market_order", SYM, 1.0) for _ in range(3)]
    r = run({1: burst, 2: burst}, flat(5), risk=RiskRules(**{rule: per_tick}))
    s = r.strategy
    for i in (1, 2):
        assert [bool(x) for x in s.results[i]] == [True, True, False]
    assert [e.rule for e in denied(s)] == [rule, rule]
    assert "2 orders in the last" in denied(s)[0].reason


def test_daily_loss_halts_and_every_later_order_is_denied():
    """Realised plus unrealised loss since the UTC day began above the limit halts trading
    at that close; later orders (and the next day's) are denied until a reset."""
    t0 = (1_700_000_000_000 // DAY_MS + 1) * DAY_MS - 5 * 60_000  # 5 candles before midnight
    cls = scripted({0: buy(5.0), 3: buy(1.0), 6: buy(1.0),
                    7: lambda s: call(s, "reset_trading_state", "looked at it"), 8: buy(1.0)})
    s = cls({SYM: SPOT})
    from planarpy import backtest
    from planarpy.modes.sim import SimConfig
    rows = prices(100, 100, 97, 95.5, 95, 95, 95, 95, 95, 95, 95)
    r = backtest(s, data={SYM: candles(rows, t0=t0)}, settings={},
                 config=SimConfig(slippage=0.0, volume_cap=False),
                 risk=RiskRules(max_daily_loss_quote=20.0))
    (halt, reset) = changes(s)
    assert (halt.rule, halt.state, halt.previous) == ("max_daily_loss_quote", TradingState.HALTED,
                                                      TradingState.ACTIVE)
    assert halt.time == s.seen[3][1]  # at the close of candle 3, before its tick
    assert "lost 23.5 since the UTC day began at equity 1000" in halt.reason
    assert s.results[3] is None and s.results[6] is None  # the next day too
    assert [e.rule for e in denied(s)] == ["trading_state", "trading_state"]
    assert "trading is halted by max_daily_loss_quote" in denied(s)[0].reason
    assert (reset.rule, reset.state, reset.reason) == ("reset", TradingState.ACTIVE, "looked at it")
    assert s.results[8] and s.state.risk.trading is TradingState.ACTIVE
    text = r.format_summary()
    assert "halted at 2023-11-14 23:59 by max_daily_loss_quote: lost 23.5" in text
    assert "active at 2023-11-15 00:03 by reset: looked at it" in text
    assert "risk denied     2 orders" in text


def test_daily_loss_is_measured_per_utc_day():
    """Two days that each lose less than the limit do not trip it, though together they do."""
    t0 = (1_700_000_000_000 // DAY_MS + 1) * DAY_MS - 3 * 60_000  # candle 2 closes at 00:00
    from planarpy import backtest
    from planarpy.modes.sim import SimConfig
    rows = prices(100, 100, 98, 98, 94.6, 94.6)

    def go(limit):
        s = scripted({0: buy(5.0)})({SYM: SPOT})
        backtest(s, data={SYM: candles(rows, t0=t0)}, settings={},
                 config=SimConfig(slippage=0.0, volume_cap=False),
                 risk=RiskRules(max_daily_loss_quote=limit))
        return s.state.risk
    assert go(20.0).trading is TradingState.ACTIVE  # 11 (fee included) on day one, 17 on day two
    (change,) = go(15.0).changes
    assert change["reason"].startswith("lost 17 since the UTC day began at equity 989")


@pytest.mark.parametrize("gaps", ["skip", "fill"])
def test_daily_loss_days_begin_after_a_gap_over_midnight(gaps):
    """Candles missing across midnight, stepped over (`skip`) or filled in flat: the second
    day still starts at the last close of the first, so two days that each lose less than
    the limit do not trip it, and a lower limit trips on the second day's loss alone."""
    midnight = (1_700_000_000_000 // DAY_MS + 1) * DAY_MS
    from planarpy import OHLCV, backtest
    from planarpy.modes.sim import SimConfig
    day_one = candles(prices(100, 100, 98), t0=midnight - 3 * 60_000)  # the last closes at 00:00
    day_two = candles(prices(98, 94.6, 94.6), t0=midnight + 5 * 60_000)  # 5 minutes missing
    rows = OHLCV.from_rows(day_one.to_rows() + day_two.to_rows())

    def go(limit):
        s = scripted({0: buy(5.0)})({SYM: SPOT})
        backtest(s, data={SYM: rows}, settings={},
                 config=SimConfig(slippage=0.0, volume_cap=False, gaps=gaps),
                 risk=RiskRules(max_daily_loss_quote=limit, max_drawdown=0.5))
        return s.state.risk
    assert go(20.0).trading is TradingState.ACTIVE  # 11 (fee included) on day one, 17 on day two
    (change,) = go(15.0).changes
    assert change["reason"].startswith("lost 17 since the UTC day began at equity 989")


def test_drawdown_from_the_peak_reduces_then_only_reductions_pass():
    """Equity 5% below its peak moves to REDUCING (as configured): resting orders that add
    exposure are cancelled, buys are denied, sells pass."""
    rows = prices(100, 100, 110, 120, 109, 109, 109, 109)
    script = {0: buy(5.0), 1: lambda s: call(s, "limit_order", SYM, 1.0, 50.0, side="buy"),
              4: buy(1.0), 5: sell(2.0)}
    r = run(script, rows, risk=RiskRules(max_drawdown=0.05, on_drawdown="reduce"))
    s = r.strategy
    (e,) = changes(s)
    assert (e.rule, e.state) == ("max_drawdown", TradingState.REDUCING)
    assert e.time == s.seen[4][1]
    assert "below its peak 1099" in e.reason
    assert s.asset(SYM).orders == {} and s.results[1] is missing
    assert s.results[4] is None and s.results[5]
    assert s.state.risk.trading is TradingState.REDUCING


def test_error_rate_breaker_counts_order_errors_per_minute():
    """More order errors than max_errors_per_minute within 60 s of sim time halts."""
    po = lambda s: [call(s, "limit_order", SYM, 1.0, 200.0, tif="PO") for _ in range(4)]  # noqa: E731
    r = run({1: po, 2: buy(1.0)}, flat(6), risk=RiskRules(max_errors_per_minute=2))
    s = r.strategy
    assert len(s.errors) == 3  # the third error trips the breaker; the fourth order is denied
    (e,) = changes(s)
    assert (e.rule, e.state) == ("max_errors_per_minute", TradingState.HALTED)
    assert "3 order errors within a minute" in e.reason
    assert s.results[2] is None and [d.rule for d in denied(s)] == ["trading_state"] * 2


def test_errors_further_apart_than_a_minute_do_not_trip():
    po = lambda s: call(s, "limit_order", SYM, 1.0, 200.0, tif="PO")  # noqa: E731
    r = run({1: po, 2: po, 3: po, 4: po}, flat(6), risk=RiskRules(max_errors_per_minute=1))
    assert r.strategy.state.risk.trading is TradingState.ACTIVE and len(r.strategy.errors) == 4


def test_an_order_placed_by_on_order_error_after_the_breaker_tripped_is_denied():
    """The error that trips the breaker halts before on_order_error hears it: a retry the
    callback places then is denied (risk_denied), it never reaches the executor."""
    def on_order_error(self, ai, reason, request):
        self.errors.append(reason)
        if len(self.errors) == 1:  # a retry that is refused too: the second error in a minute
            call(self, "market_order", SYM, 0.001, side="buy")
        elif len(self.errors) == 2:  # a valid retry, after the breaker's limit was passed
            self.retried = call(self, "market_order", SYM, 1.0, side="buy")

    r = run({1: buy(0.001)}, flat(6), risk=RiskRules(max_errors_per_minute=1),
            on_order_error=on_order_error)
    s = r.strategy
    assert len(s.errors) == 2 and s.state.risk.trading is TradingState.HALTED
    assert s.retried is None and r.trades == []
    assert [(d.rule, d.request["amount"]) for d in denied(s)] == [("trading_state", 1.0)]


def test_halt_cancels_orders_and_closes_positions_as_configured():
    """On a halt with halt_closes_positions the holding is sold at the next open."""
    rows = prices(100, 100, 90, 90, 90, 90)
    script = {0: buy(5.0), 1: lambda s: call(s, "limit_order", SYM, 1.0, 50.0, side="buy")}
    r = run(script, rows, risk=RiskRules(max_drawdown=0.03, halt_closes_positions=True))
    s = r.strategy
    ai = s.asset(SYM)
    assert ai.balance == 0 and ai.orders == {}
    assert [t.side.value for t in r.trades] == ["buy", "sell"]
    assert r.trades[-1].date == s.seen[2][1] and r.trades[-1].price == 90


def test_halt_keeps_orders_when_told_to():
    rows = prices(100, 100, 90, 90, 90)
    script = {0: buy(5.0), 1: lambda s: call(s, "limit_order", SYM, 1.0, 50.0, side="buy")}
    r = run(script, rows, risk=RiskRules(max_drawdown=0.03, halt_cancels_orders=False))
    assert r.strategy.state.risk.trading is TradingState.HALTED
    assert len(r.strategy.asset(SYM).orders) == 1


@pytest.mark.parametrize("market", [SPOT, PERP], ids=["spot", "isolated"])
def test_a_breakers_halt_keeps_the_stop_loss_which_then_fires(market):
    """A halt that keeps the positions cancels the orders that add exposure (the bid) and
    leaves those that only reduce it: the stop-loss under a long fires after the halt, so
    the loss stops there instead of following the price down while trading is halted."""
    sym = market.symbol
    rows = prices(100, 100, 90, 90, 70, 60, 50)
    script = {0: lambda s: call(s, "market_order", sym, 5.0, side="buy"),
              1: lambda s: [call(s, "stop_order", sym, 5.0, 80.0,
                                 reduce_only=market.is_derivative),
                            call(s, "limit_order", sym, 1.0, 50.0, side="buy")]}
    r = run(script, rows, market, risk=RiskRules(max_drawdown=0.03))
    s = r.strategy
    (halt,) = changes(s)
    assert (halt.rule, halt.state) == ("max_drawdown", TradingState.HALTED)
    ai = s.asset(sym)
    assert ai.orders == {} and ai.balance == 0 and ai.open_position() is None
    assert [t.side.value for t in r.trades] == ["buy", "sell"]
    assert r.trades[-1].date == s.seen[3][1] and r.trades[-1].price == 70  # candle 4 opens at 70
    assert not any(t.side.value == "buy" and t.price == 50 for t in r.trades)


@pytest.mark.parametrize("both_at_once", [False, True], ids=["reduced-first", "same-close"])
def test_a_loss_breaker_that_halts_is_not_hidden_by_one_that_reduced(both_at_once):
    """The drawdown reduces, the day's loss halts: once reducing, the drawdown (measured
    first) still breached hid the daily loss, and a run losing 9% of its day stayed
    reducing. The breaker that moves the state is the one that trips: the halt, at the
    close where the day's loss passes 5% (the first close when both pass at once)."""
    rows = prices(100, 100, *([] if both_at_once else [98, 98]), 90, 90, 90)
    script = {0: lambda s: call(s, "market_order", SYM, 9.0, side="buy")}
    rules = RiskRules(max_drawdown=0.01, on_drawdown="reduce", max_daily_loss=0.05)
    s = run(script, rows, risk=rules).strategy
    moves = [(e.rule, e.state) for e in changes(s)]
    halt = ("max_daily_loss", TradingState.HALTED)
    assert moves == ([halt] if both_at_once else
                     [("max_drawdown", TradingState.REDUCING), halt])
    assert changes(s)[-1].time == s.seen[2 if both_at_once else 4][1]  # the first close at 90


def test_reset_rebases_the_drawdown_peak():
    """After a reset the drawdown is measured from the equity at the reset."""
    rows = prices(100, 100, 90, 90, 90, 88, 80, 80)
    r = run({0: buy(5.0), 3: lambda s: call(s, "reset_trading_state")}, rows,
            risk=RiskRules(max_drawdown=0.03))
    s = r.strategy
    assert [(e.rule, e.state) for e in changes(s)] == [
        ("max_drawdown", TradingState.HALTED), ("reset", TradingState.ACTIVE),
        ("max_drawdown", TradingState.HALTED)]
    assert changes(s)[2].time == s.seen[6][1]  # 88 is within 3% of the reset's 949; 80 is not


def test_update_leverage_is_refused_while_halted():
    rows = prices(100, 100, 90, 90, 90, 90)
    script = {0: lambda s: call(s, "market_order", PERP.symbol, 5.0),
              3: lambda s: call(s, "update_leverage", PERP.symbol, 2),
              4: lambda s: call(s, "market_order", PERP.symbol, 1.0)}
    r = run(script, rows, market=PERP,
            risk=RiskRules(max_drawdown=0.03, halt_closes_positions=True))
    assert r.strategy.results[3] is False and denied(r.strategy)[-2].rule == "trading_state"
    # the summary tells a leverage change from an order
    assert (r.summary()["risk_denied"], r.summary()["risk_denied_leverage"]) == (2, 1)
    assert "risk denied     1 order, 1 leverage change" in r.format_summary()


def test_risk_rules_from_planar_toml_with_a_strategy_table():
    """[risk] holds for every strategy; [risk.NAME] overrides for the class NAME."""
    settings = {"risk": {"max_order_notional": 150, "max_open_orders": 3,
                         "Scripted": {"max_order_notional": 1000.0, "max_open_orders": False}}}
    from planarpy import backtest
    s = scripted({1: buy(2.0)})({SYM: SPOT})
    backtest(s, data={SYM: candles(flat(4))}, settings=settings)
    rules = s.state.risk.rules
    assert (rules.max_order_notional, rules.max_open_orders) == (1000.0, None)
    assert s.results[1]


@pytest.mark.parametrize("table, message", [
    ({"max_drawdown": 1.5}, "[risk] max_drawdown (fraction of the peak equity) must be in (0, 1], got 1.5"),
    ({"max_drawdown": True}, "[risk] max_drawdown (fraction of the peak equity) must be a number"),
    ({"max_open_orders": 2.5}, "[risk] max_open_orders (open orders at once) must be a whole number"),
    ({"max_open_orders": 0}, "[risk] max_open_orders (open orders at once) must be in [1, inf], got 0"),
    ({"max_orders_per_second": 10**6}, "must be in [1, 10000], got 1000000"),
    ({"max_order_notional": -1}, "[risk] max_order_notional (quote value of one order) must be in (0, inf]"),
    ({"max_order_notional": "a lot"}, "must be a number, or false for none; got 'a lot'"),
    ({"on_drawdown": "panic"}, "[risk] on_drawdown must be \"halt\" or \"reduce\", got 'panic'"),
    ({"halt_closes_positions": "yes"}, "[risk] halt_closes_positions must be true or false, got 'yes'"),
    ({"max_dd": 0.1}, "[risk] has no rule 'max_dd' (did you mean max_drawdown?); rules: "
                      "max_order_notional"),
    ({"stop_loss": 0.1}, "[risk] has no rule 'stop_loss'; rules: max_order_notional"),
    ({"Scripted": {"max_dd": 0.1}}, "[risk.Scripted] has no rule 'max_dd'"),
    ({"Scripted": 3}, None),  # a non-table value under a strategy's name is an unknown key
    ("strict", "[risk] must be a table, got str"),
    # an OverflowError and a TypeError before
    ({"max_daily_loss": 10**400}, "[risk] max_daily_loss (fraction of the day's starting equity) "
                                  "must be in (0, 1], got 1000000"),
    ({"on_daily_loss": ["halt"]}, "[risk] on_daily_loss must be \"halt\" or \"reduce\", got ['halt']"),
    # left out silently before: a rule written as a table, the strategy named by its module
    ({"max_open_orders": {"limit": 2}}, "[risk] max_open_orders must be a value, not a table "
                                        "([risk.max_open_orders])"),
    ({"scripted": {"max_open_orders": 2}}, "[risk.scripted] does not apply to Scripted: a "
                                           "strategy's table is named after its class exactly, "
                                           "[risk.Scripted]"),
])
def test_bad_risk_config_is_a_clear_error(table, message):
    from planarpy import backtest
    s = scripted({})({SYM: SPOT})
    with pytest.raises(ConfigError) as e:
        backtest(s, data={SYM: candles(flat(4))}, settings={"risk": table})
    assert message is None or message in str(e.value), str(e.value)


def test_risk_rules_refuse_bad_values_in_python_too():
    with pytest.raises(ConfigError, match="max_leverage .* must be in \\(0, inf\\], got -2"):
        RiskRules(max_leverage=-2)
    with pytest.raises(ConfigError, match="on_errors must be \"halt\" or \"reduce\", got \\{'x'\\}"):
        RiskRules(on_errors={"x"})  # a TypeError (unhashable) before
    with pytest.raises(ConfigError, match="max_open_orders .* must be a whole number, or false "
                                          "for none; got np.True_"):
        RiskRules(max_open_orders=np.bool_(True))


def test_a_misspelt_rule_in_python_names_the_rules():
    """A keyword that is no rule was attrs' bare TypeError ("unexpected keyword argument");
    it says what the rules are, and the nearest one."""
    with pytest.raises(ConfigError, match="RiskRules has no rule 'max_ordr_notional' \\(did you "
                                          "mean max_order_notional\\?\\); rules: max_order_notional,"):
        RiskRules(max_ordr_notional=1.0)
    with pytest.raises(TypeError, match="positional"):  # not a misspelling: left to Python
        RiskRules(*range(16))


def test_a_table_close_to_the_strategys_name_is_warned_of(caplog):
    """[risk.Scriptd] was ignored silently for Scripted: a typo left the run without the
    rules its author wrote. It may be another strategy's table, so it is a warning (an
    error would refuse a project with Scripted and Scripted2), and the rules in force are
    in the summary; a table far from the name (another strategy's) says nothing."""
    from planarpy import backtest
    s = scripted({})({SYM: SPOT})
    table = {"max_open_orders": 3, "Scriptd": {"max_order_notional": 10.0},  # no other test's
             "SmaCross": {"max_drawdown": 0.1}}
    with caplog.at_level("WARNING", logger="planarpy.core.risk"):
        r = backtest(s, data={SYM: candles(flat(4))}, settings={"risk": table})
    warned = [rec.getMessage() for rec in caplog.records]
    assert warned == ["[risk.Scriptd] does not apply to Scripted (a strategy's table is named "
                      "after its class exactly): if it was meant for it, name it "
                      "[risk.Scripted]"]
    assert r.summary()["risk_rules"] == {"max_open_orders": 3}
    assert ("risk rules", "max_open_orders=3") in r.summary_rows()
    caplog.clear()  # once a process: an optimisation's thousand backtests warn once
    with caplog.at_level("WARNING", logger="planarpy.core.risk"):
        backtest(s, data={SYM: candles(flat(4))}, settings={"risk": table})
    assert caplog.records == []


def test_the_summary_shows_the_rules_in_force():
    """What the rules were is part of what a backtest shows: a halt reads differently
    under a drawdown limit of 2% than of 20%. No rules, no rows."""
    rules = RiskRules(max_order_notional=400.0, max_drawdown=0.02, on_drawdown="reduce")
    r = run({}, prices(100, 100), risk=rules)
    assert r.summary()["risk_rules"] == {"max_order_notional": 400.0, "max_drawdown": 0.02,
                                         "on_drawdown": "reduce"}
    rows = dict(r.summary_rows())
    assert rows["risk rules"] == "max_order_notional=400 max_drawdown=0.02 on_drawdown=reduce"
    bare = run({}, prices(100, 100))
    assert bare.summary()["risk_rules"] == {}
    assert "risk rules" not in dict(bare.summary_rows())
    # a breaker's action without its limit does nothing: it is not shown as a rule
    assert RiskRules(on_drawdown="reduce", on_errors="reduce").in_force() == {}
    assert RiskRules(max_daily_loss_quote=5.0, on_daily_loss="reduce").in_force() == {
        "max_daily_loss_quote": 5.0, "on_daily_loss": "reduce"}


def test_risk_rules_take_numpy_numbers_from_python():
    """A numpy int or float is a number, as `call` takes it (it was refused as 'not a
    number'); the rules keep Python's int and float."""
    rules = RiskRules(max_open_orders=np.int64(3), max_daily_loss=np.float32(0.5))
    assert (rules.max_open_orders, rules.max_daily_loss) == (3, 0.5)
    assert type(rules.max_open_orders) is int and type(rules.max_daily_loss) is float


def test_replay_reproduces_risk_events_and_the_trading_state(tmp_path):
    """A recorded backtest with denials, a halt and a reset replays to the same trading
    state, denial count, state changes and windows; a changed state is reported."""
    from planarpy.trace import EventTrace, replay_from_trace, trace_tail
    rows = prices(100, 100, 90, 90, 90, 90, 90, 90)
    script = {0: buy(3.0), 1: buy(5.0), 3: buy(1.0), 4: lambda s: call(s, "reset_trading_state"),
              5: buy(1.0), 6: lambda s: call(s, "limit_order", SYM, 1.0, 200.0, tif="PO")}
    rules = RiskRules(max_order_notional=400.0, max_drawdown=0.02)
    with EventTrace.open(tmp_path / "t", strategy="Scripted", exchange="test") as trace:
        r = run(script, rows, recorder=trace, risk=rules)
    s = r.strategy
    report = replay_from_trace(s, tmp_path / "t")
    assert report.ok, str(report)
    got, want = report.state.risk, s.state.risk
    assert (got.trading, got.denied, got.changes) == (want.trading, want.denied, want.changes)
    assert (list(got.orders), list(got.errors)) == (list(want.orders), list(want.errors))
    assert [c["state"] for c in want.changes] == ["halted", "active"] and want.denied == 2
    kinds = [e["kind"] for e in trace_tail(tmp_path / "t", n=100,
                                           kinds=["risk_denied", "trading_state_changed"])]
    assert kinds == ["risk_denied", "trading_state_changed", "risk_denied", "trading_state_changed"]
    s.state.risk.trading = TradingState.HALTED
    report = replay_from_trace(s, tmp_path / "t")
    assert not report.ok and "trading state: replayed active, current halted" in str(report)


@pytest.mark.parametrize("timeframe", ["1h", "1d"])
def test_a_days_loss_is_the_same_in_hourly_and_daily_candles(timeframe):
    """The same five days as hourly or as daily candles (the price steps once a day, at
    the day's first candle): the day's loss is measured from the last close of the day
    before, whichever candle closes it (a close at 00:00 ends the day before), so the
    breaker trips on the same UTC day with the same figures; the first day's 11 and the
    third's 17 stay under a limit of 20."""
    from planarpy import backtest
    from planarpy.core.risk import day_of
    from planarpy.modes.sim import SimConfig
    step = {"1h": 3_600_000, "1d": DAY_MS}[timeframe]
    per_day = DAY_MS // step
    midnight = (1_700_000_000_000 // DAY_MS + 1) * DAY_MS
    rows = prices(*[p for p in (100, 100, 98, 94.6, 94.6) for _ in range(per_day)])

    def go(limit):
        s = scripted({0: buy(5.0)}, timeframe=timeframe)({SYM: SPOT})
        backtest(s, data={SYM: candles(rows, t0=midnight, step=step)}, settings={},
                 config=SimConfig(slippage=0.0, volume_cap=False),
                 risk=RiskRules(max_daily_loss_quote=limit))
        return s.state.risk.changes
    assert go(20.0) == []
    (change,) = go(15.0)
    assert day_of(change["ts"]) == midnight // DAY_MS + 3  # the fourth day, in both
    assert change["reason"].startswith("lost 17 since the UTC day began at equity 989")


def test_a_reset_rebases_the_days_loss_too():
    """After a reset the day's loss is measured from the equity at the reset (979), not
    from the day's start (1000): 10 more lost passes a limit of 15, 20 more trips it."""
    rows = prices(100, 100, 96, 96, 96, 94, 92, 92)
    r = run({0: buy(5.0), 3: lambda s: call(s, "reset_trading_state", "looked")}, rows,
            risk=RiskRules(max_daily_loss_quote=15.0))
    s = r.strategy
    halt, reset, again = changes(s)
    assert (halt.rule, reset.rule, again.rule) == ("max_daily_loss_quote", "reset",
                                                   "max_daily_loss_quote")
    assert "lost 21 since the UTC day began at equity 1000" in halt.reason
    assert "lost 20 since the UTC day began at equity 979" in again.reason
    assert again.time == s.seen[6][1]  # 94 (lost 10 since the reset) did not trip it


def test_a_reset_while_active_changes_nothing():
    """reset_trading_state when trading is active answers True and records nothing: the
    peak and the day's start stay where they were."""
    r = run({0: buy(5.0), 2: lambda s: call(s, "reset_trading_state", "x")},
            prices(100, 110, 100, 100), risk=RiskRules(max_drawdown=0.05))
    s = r.strategy
    assert s.results[2] is True and s.risk_events[0].rule == "max_drawdown"


def test_a_resting_sell_does_not_lower_the_position_counted():
    """max_position_notional counts what is held plus the buys that rest (at the new
    order's price): a sell resting against the holding does not lower it, since it may be
    cancelled, and a sell itself passes whatever the limit (it reduces)."""
    script = {0: buy(2.0),
              1: lambda s: call(s, "limit_order", SYM, 2.0, 110.0, side="sell"),
              2: lambda s: call(s, "limit_order", SYM, 0.5, 90.0, side="buy"),
              3: buy(1.5)}
    r = run(script, prices(*[100] * 6), risk=RiskRules(max_position_notional=350.0))
    s = r.strategy
    assert s.results[1] is missing and s.results[2] is missing and s.results[3] is None
    (e,) = denied(s)  # 2 held + 0.5 resting + 1.5 at 100, the sell of 2 not taken off
    assert e.rule == "max_position_notional" and "would reach 400 USD" in e.reason


def test_on_margin_a_close_that_is_not_reduce_only_counts_as_reducing():
    """A sell of a long that is not reduce_only still only reduces (on isolated margin it
    can never open a short: a sell beyond the long is refused): it passes the size rules
    the long is over (the price doubled it past max_position_notional)."""
    rows = prices(100, 100, 200, 200, 200)
    script = {0: lambda s: call(s, "market_order", PERP.symbol, 2.0),
              3: lambda s: call(s, "market_order", PERP.symbol, 1.0, side="sell")}
    r = run(script, rows, market=PERP, risk=RiskRules(max_position_notional=300.0))
    s = r.strategy
    assert s.results[3] and denied(s) == [] and s.asset(PERP.symbol).long.amount == 1.0


def test_what_the_throttle_counts():
    """The throttle counts the orders placed: a stop once, when it is placed (not again
    when it fires), an OCO pair twice (as Binance counts it); an order the gate refused
    (a market rule, or the throttle itself) is not counted, nor is a cancel."""
    script = {1: lambda s: [call(s, "market_order", SYM, 0.001),  # below the minimum
                            call(s, "market_order", SYM, 1.0),
                            call(s, "stop_order", SYM, 1.0, 105.0, side="buy"),
                            call(s, "cancel_orders", SYM),
                            call(s, "market_order", SYM, 1.0),  # the third in the minute
                            call(s, "market_order", SYM, 1.0)],
              3: lambda s: call(s, "stop_order", SYM, 1.0, 95.0),
              5: lambda s: call(s, "oco_order", SYM, 1.0, price=120.0, stop=80.0)}
    rows = prices(100, 100, 100, 100, 90, 90, 90, 90)
    r = run(script, rows, risk=RiskRules(max_orders_per_minute=3))
    s = r.strategy
    assert [bool(x) if x is not missing else x for x in s.results[1]] == [
        False, True, missing, True, True, False]
    assert [e.rule for e in denied(s)] == ["max_orders_per_minute"]
    assert [(t.side.value, t.price) for t in r.trades] == [("buy", 100), ("buy", 100),
                                                           ("sell", 90)]  # the stop fired
    assert s.results[5] is missing and len(s.asset(SYM).orders) == 2
    assert len(s.state.risk.orders) == 6  # market, stop, market, stop, the pair's two legs


def test_an_order_a_fill_placed_and_the_next_candle_refuses_is_not_counted():
    """A post-only bid that would take, placed by a fill inside a candle, is refused when
    it executes at the next open: the throttle does not count it, as paper and live do
    not count the same order refused where it executes."""
    def on_trade(self, ai, trade):
        if not self.results.get("po"):
            self.results["po"] = call(self, "limit_order", SYM, 1.0, 150.0, side="buy", tif="PO")

    rows = prices(100, 100) + [(100, 100, 98, 100, 1e6)] + prices(100, 100, 100)
    r = run({1: lambda s: call(s, "limit_order", SYM, 1.0, 99.0, side="buy")}, rows,
            risk=RiskRules(max_orders_per_minute=5), on_trade=on_trade)
    s = r.strategy
    assert s.errors == ["post-only order at 150 would take liquidity at 100"]
    assert len(s.state.risk.orders) == 1  # the bid that filled


def test_a_limit_of_one_order_reads_right():
    """'1 orders are open already' became '1 order is open already' (and the throttle's)."""
    limit = lambda s: call(s, "limit_order", SYM, 1.0, 90.0, side="buy")  # noqa: E731
    r = run({1: lambda s: [limit(s), limit(s)]}, flat(4), risk=RiskRules(max_open_orders=1))
    assert [e.reason for e in denied(r.strategy)] == [
        "1 order is open already (max_open_orders = 1)"]
    r = run({1: lambda s: [limit(s), limit(s)]}, flat(4), risk=RiskRules(max_orders_per_second=1))
    assert [e.reason for e in denied(r.strategy)] == [
        "1 order in the last 1 s already (max_orders_per_second = 1)"]


def test_a_strategy_with_its_own_table_is_not_warned_of_a_near_one(caplog):
    """Two strategies of one project, Breakout and Breakout2, each with its table: the
    near name is the other's, not a misspelling of a table the run goes without (the
    run of either warned of the other's table)."""
    table = {"Breakout": {"max_drawdown": 0.1}, "Breakout2": {"max_drawdown": 0.2}}
    with caplog.at_level("WARNING", logger="planarpy.core.risk"):
        assert RiskRules.from_config(table, "Breakout") == RiskRules(max_drawdown=0.1)
        assert RiskRules.from_config(table, "Breakout2") == RiskRules(max_drawdown=0.2)
    assert caplog.records == []
    with caplog.at_level("WARNING", logger="planarpy.core.risk"):  # without its own: warned
        assert RiskRules.from_config({"Breakout2": {"max_drawdown": 0.2}}, "Breakout") == \
            RiskRules()
    assert [r.getMessage()[:40] for r in caplog.records] == ["[risk.Breakout2] does not apply to Break"]
