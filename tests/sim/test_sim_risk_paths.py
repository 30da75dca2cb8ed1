"""The risk gate on the paths an order takes besides a plain call: conditional orders,
bracket exits, close_position, in every trading state (a hostile review, issue 14)."""

import pytest

from planarpy import RiskRules, TradingState, call, missing

from simkit import PERP, SPOT, run

SYM, PSYM = SPOT.symbol, PERP.symbol


def prices(*rows, volume=1e6):
    """Candles (open, high, low, close); a bare number is a flat candle."""
    return [(r, r, r, r, volume) if not isinstance(r, tuple) else (*r, volume) for r in rows]


def denied(s):
    return [e for e in s.risk_events if e.kind == "denied"]


def test_a_trailing_buy_stop_with_activation_is_checked_at_the_highest_it_may_fire():
    """A buy trailing stop armed at `activation` trails the lows up by its percent: it may
    fire as high as activation * (1 + percent), and it is checked (notional, funds) there,
    not at the activation: 9 at 95 is 855, but it fires at up to 114 (1026), above
    max_order_notional = 900, so it is denied; one that fits at 114 passes."""
    def trail(amount):
        return lambda s: call(s, "trailing_stop_order", SYM, amount, side="buy", percent=0.2,
                              activation=95.0)
    rows = prices(100, 100, (100, 100, 95, 95), 95, (95, 114, 95, 114), 114, 114)
    r = run({1: lambda s: [trail(9.0)(s), trail(7.5)(s)]}, rows, cash=5000.0,
            risk=RiskRules(max_order_notional=900.0))
    s = r.strategy
    assert s.results[1] == [None, missing]
    (e,) = denied(s)
    assert e.rule == "max_order_notional" and "order notional 1026 USD" in e.reason
    assert [(t.side.value, t.amount, t.price) for t in s.trades] == [("buy", 7.5, 114.0)]
    assert all(t.cost <= 900.0 for t in s.trades)


def test_a_brackets_exits_are_placed_while_halted():
    """A bracket entry that fills after a halt (halt_cancels_orders = false keeps it) gets
    its exits: they only protect what the entry bought, and a halt must not leave it
    without its stop-loss."""
    rows = prices(100, 100, 100, 97, (97, 97, 94, 94), 94, 94, 94)
    script = {0: lambda s: call(s, "market_order", SYM, 5.0),
              1: lambda s: call(s, "bracket_order", SYM, 1.0, price=95.0, stop_loss=90.0,
                                take_profit=110.0)}
    r = run(script, rows, risk=RiskRules(max_drawdown=0.01, halt_cancels_orders=False))
    s = r.strategy
    assert s.state.risk.trading is TradingState.HALTED
    assert s.state.risk.changes[0]["ts"] <= s.trades[1].date  # halted before the entry filled
    ai = s.asset(SYM)
    exits = sorted((o.type.value, o.price, o.amount) for o in ai.orders.values())
    assert exits == [("limit", 110.0, 1.0), ("stop_market", 90.0, 1.0)]
    assert denied(s) == []



def test_a_brackets_exits_pass_a_full_order_throttle():
    """A bracket entry and a bid fill max_orders_per_minute = 2 (a third order is
    denied); the entry fills within that minute and its exits are placed all the same
    (they count in the window): a throttle must not leave what the entry bought without
    its stop-loss. They come once per fill of an entry the throttle admitted: no loop."""
    rows = prices(100, 100, (100, 100, 94, 96), 96, 96)
    script = {1: lambda s: [call(s, "bracket_order", SYM, 1.0, price=95.0, stop_loss=90.0,
                                 take_profit=110.0),
                            call(s, "limit_order", SYM, 1.0, 50.0, side="buy"),
                            call(s, "limit_order", SYM, 1.0, 51.0, side="buy")]}
    r = run(script, rows, risk=RiskRules(max_orders_per_minute=2))
    s = r.strategy
    assert s.results[1][1:] == [missing, None] and s.trades[0].price == 95.0
    assert [e.rule for e in denied(s)] == ["max_orders_per_minute"]
    ai = s.asset(SYM)
    left = sorted((o.type.value, o.price, o.amount) for o in ai.orders.values())
    assert left == [("limit", 50.0, 1.0), ("limit", 110.0, 1.0), ("stop_market", 90.0, 1.0)]
    assert len(s.state.risk.orders) == 4  # the exits count in the window


def test_a_spot_sell_brackets_buy_exits_add_exposure_and_wait_while_halted():
    """The exits of a spot sell entry buy back: they add to the holding, so they are no
    protection a halt lets through; they are denied."""
    rows = prices(100, 100, 100, 100, (100, 106, 100, 106), 106, 106)
    taker = lambda s: call(s, "limit_order", SYM, 1.0, 200.0, tif="PO")  # noqa: E731
    script = {0: lambda s: call(s, "market_order", SYM, 5.0),
              1: lambda s: call(s, "bracket_order", SYM, 1.0, side="sell", price=105.0,
                                stop_loss=110.0, take_profit=95.0),
              2: lambda s: [taker(s), taker(s)]}  # two order errors: the breaker halts
    r = run(script, rows, risk=RiskRules(max_errors_per_minute=1, halt_cancels_orders=False))
    s = r.strategy
    assert s.state.risk.trading is TradingState.HALTED and s.trades[-1].side.value == "sell"
    assert s.asset(SYM).orders == {}
    assert {e.rule for e in denied(s)} == {"trading_state"}


def _stop_then_close(s):
    return [call(s, "stop_order", SYM, 5.0, 90.0), call(s, "close_position", SYM)]


def test_a_close_the_halt_denies_leaves_the_orders_it_would_have_cancelled():
    """close_position while halted: its closing order is denied, so it cancels nothing
    (it used to cancel the stop-loss first, then be denied: a position without a stop)."""
    taker = lambda s: call(s, "limit_order", SYM, 1.0, 200.0, tif="PO")  # noqa: E731
    script = {0: lambda s: call(s, "market_order", SYM, 5.0),
              1: lambda s: call(s, "stop_order", SYM, 5.0, 90.0),
              2: lambda s: [taker(s), taker(s)],  # two order errors: the breaker halts
              3: lambda s: call(s, "close_position", SYM)}
    r = run(script, prices(*[100] * 6),
            risk=RiskRules(max_errors_per_minute=1, halt_cancels_orders=False))
    s = r.strategy
    assert s.state.risk.trading is TradingState.HALTED and s.results[3] is False
    assert [(o.type.value, o.amount) for o in s.asset(SYM).orders.values()] == [
        ("stop_market", 5.0)]
    assert [e.rule for e in denied(s)] == ["trading_state"]
    assert s.asset(SYM).balance > 4.9


def test_a_close_the_throttle_denies_leaves_the_orders_it_would_have_cancelled():
    """The same when the order throttle denies the closing order: the stop-loss stays."""
    script = {0: lambda s: call(s, "market_order", SYM, 5.0), 1: _stop_then_close}
    r = run(script, prices(*[100] * 5), risk=RiskRules(max_orders_per_minute=1))
    s = r.strategy
    assert s.results[1][1] is False
    assert [(o.type.value, o.amount) for o in s.asset(SYM).orders.values()] == [
        ("stop_market", 5.0)]
    assert [e.rule for e in denied(s)] == ["max_orders_per_minute"]


def test_a_close_while_reducing_cancels_and_closes():
    """Reducing lets the close go: the stop is cancelled and the holding sold."""
    rows = prices(100, 100, 100, 96, 96, 96, 96)
    script = {0: lambda s: call(s, "market_order", SYM, 5.0),
              1: lambda s: call(s, "stop_order", SYM, 5.0, 90.0),
              4: lambda s: call(s, "close_position", SYM)}
    r = run(script, rows, risk=RiskRules(max_drawdown=0.01, on_drawdown="reduce"))
    s = r.strategy
    assert s.state.risk.trading is TradingState.REDUCING and s.results[4] is True
    assert s.asset(SYM).orders == {} and s.asset(SYM).balance == 0


def test_a_market_order_placed_by_a_fill_is_checked_at_the_price_it_fills_at():
    """A fill's callback places a market order inside candle 1: it executes as if placed
    at that candle's close, at the next open (120). It was checked at candle 1's open
    (100: notional 900, under 950) and filled 9 @ 120 = 1080; now it is checked at 120
    and denied."""
    rows = prices(100, (100, 100, 95, 100), 120, 120, 120)

    def on_trade(self, ai, trade):
        if trade.amount == 1.0:
            self.results["callback"] = call(self, "market_order", SYM, 9.0)
    r = run({0: lambda s: call(s, "limit_order", SYM, 1.0, 95.0)}, rows, cash=5000.0,
            risk=RiskRules(max_order_notional=950.0), on_trade=on_trade)
    s = r.strategy
    assert s.results["callback"] is None
    (e,) = denied(s)
    assert e.rule == "max_order_notional" and "order notional 1080 USD" in e.reason
    assert [(t.amount, t.price) for t in s.trades] == [(1.0, 95.0)]


def test_a_market_order_placed_by_a_fill_fills_at_the_price_it_was_checked_at():
    """Without a rule in the way it fills at the price the gate saw (the funds check too)."""
    rows = prices(100, (100, 100, 95, 100), 120, 120, 120)
    seen = {}

    def on_trade(self, ai, trade):
        if trade.amount == 1.0:
            seen["order"] = call(self, "market_order", SYM, 2.0)
            seen["checked"] = next(o.price for o in ai.orders.values() if o.amount == 2.0)
    r = run({0: lambda s: call(s, "limit_order", SYM, 1.0, 95.0)}, rows, on_trade=on_trade)
    assert seen["order"] is missing and seen["checked"] == 120.0
    assert [(t.amount, t.price) for t in r.strategy.trades] == [(1.0, 95.0), (2.0, 120.0)]


def test_an_oco_buy_counts_once_toward_the_position():
    """The two legs of a buy OCO hold one commitment and at most one of them fills: the
    position rule counts the pair once (it counted both, and refused a pair that could
    never hold more than 315 against a limit of 500)."""
    script = {1: lambda s: call(s, "oco_order", SYM, 3.0, side="buy", price=95.0, stop=105.0),
              2: lambda s: call(s, "limit_order", SYM, 1.0, 99.0),
              3: lambda s: call(s, "limit_order", SYM, 2.0, 99.0)}
    r = run(script, prices(*[100] * 6), risk=RiskRules(max_position_notional=500.0))
    s = r.strategy
    assert s.results[1] is missing and s.results[2] is missing and s.results[3] is None
    (e,) = denied(s)  # 3 (the pair, at 99) + 1 + 2 at 99 is 594
    assert e.rule == "max_position_notional" and "would reach 594 USD" in e.reason


@pytest.mark.parametrize("amount, rules", [
    (4.0, RiskRules(max_position_notional=500.0)), (1.0, RiskRules(max_open_orders=1))],
    ids=["position", "open orders"])
def test_amending_a_buy_stop_counts_it_once(amount, rules):
    """amend_stop places the replacement before it cancels the old stop: the position
    rule counts the two (one group) once, and the open-orders rule counts them as one
    order (the move leaves as many open), so a stop within either limit can be moved."""
    script = {1: lambda s: call(s, "stop_order", SYM, amount, 105.0, side="buy"),
              2: lambda s: call(s, "amend_stop", SYM, s.asset(SYM).orders and
                                next(iter(s.asset(SYM).orders)), 104.0)}
    r = run(script, prices(*[100] * 6), risk=rules)
    s = r.strategy
    assert s.results[2] is missing and denied(s) == []
    assert [(o.trigger, o.amount) for o in s.asset(SYM).orders.values()] == [(104.0, amount)]


def test_reducing_on_margin_lets_the_long_close_but_never_flip():
    """While reducing: a sell bigger than the long (it would go short through zero) is
    refused, a sell of the long passes, and a short after it is denied: it opens one."""
    rows = prices(100, 100, 100, 96, 96, 96, 96, 96)
    sell = lambda amount, pos="long", **kw: lambda s: call(  # noqa: E731
        s, "market_order", PSYM, amount, side="sell", pos=pos, **kw)
    script = {0: lambda s: call(s, "market_order", PSYM, 2.0),
              4: lambda s: [sell(3.0)(s), sell(2.0)(s)], 5: sell(1.0, "short")}
    r = run(script, rows, market=PERP,
            risk=RiskRules(max_drawdown=0.005, on_drawdown="reduce"))
    s = r.strategy
    assert s.state.risk.trading is TradingState.REDUCING
    assert s.results[4][0] is None and "only 2 is open" in s.errors[0]
    assert s.results[4][1] and s.results[5] is None
    assert [e.rule for e in denied(s)] == ["trading_state"]
    ai = s.asset(PSYM)
    assert ai.open_position() is None and ai.orders == {}


def test_two_resting_buys_each_under_the_position_limit_cannot_both_go():
    """A claim that holds: resting buys count toward the position (at the new order's
    price), so a second buy that with the first would pass the limit is denied, and what
    fills stays under it."""
    rows = prices(100, 100, 100, (100, 100, 97, 97), 97, 97)
    script = {1: lambda s: [call(s, "limit_order", SYM, 3.0, 99.0),
                            call(s, "limit_order", SYM, 3.0, 98.0)]}
    r = run(script, rows, risk=RiskRules(max_position_notional=500.0))
    s = r.strategy
    assert s.results[1][0] is missing and s.results[1][1] is None
    (e,) = denied(s)
    assert e.rule == "max_position_notional" and "would reach 588 USD" in e.reason
    assert s.asset(SYM).balance * 99.0 <= 500.0
