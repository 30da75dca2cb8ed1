"""The risk gate on the paths an order takes besides a plain call: conditional orders,
bracket exits, close_position, in every trading state (a hostile review, issue 14)."""

from planarpy import RiskRules, call, missing

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

