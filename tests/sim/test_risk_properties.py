"""Properties of the risk layer under random order streams, prices and rules (hypothesis).

The central one is checked where the gate hands over to the executor: no order that
breaks a configured rule ever reaches it, whatever the strategy sends. The oracle below
re-derives every rule from the raw state, independently of core/risk.py.
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planarpy import InvalidArgument, RiskRules, Side, TradingState, call
from planarpy.actions import contingent, pipeline
from planarpy.core import risk as core_risk
from planarpy.core.instances import State
from planarpy.core.orders import OrderStatus, OrderType

MARKET_AFTER_TRIGGER = {OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET,
                        OrderType.TRAILING_STOP}
from planarpy.core.risk import Breach, RiskState

from simkit import PERP, SPOT, decides_as_measuring_every_close, run, walk

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

rules_st = st.builds(
    RiskRules,
    max_order_notional=st.none() | st.floats(50, 600),
    max_position_notional=st.none() | st.floats(100, 900),
    max_leverage=st.none() | st.floats(0.2, 3),
    max_open_orders=st.none() | st.integers(1, 4),
    max_orders_per_second=st.none() | st.integers(1, 3),
    max_orders_per_minute=st.none() | st.integers(1, 5),
    max_daily_loss=st.none() | st.floats(0.005, 0.2),
    max_drawdown=st.none() | st.floats(0.005, 0.2),
    max_errors_per_minute=st.none() | st.integers(1, 4),
    on_daily_loss=st.sampled_from(["halt", "reduce"]),
    on_drawdown=st.sampled_from(["halt", "reduce"]),
    on_errors=st.sampled_from(["halt", "reduce"]),
    halt_cancels_orders=st.booleans(),
    halt_closes_positions=st.booleans())

op_st = st.tuples(
    st.sampled_from(["market", "market", "limit", "limit", "limit", "cancel", "close", "reset",
                     "leverage", "stop", "take_profit", "trail", "oco", "bracket", "bracket",
                     "amend", "reducing", "halted"]),
    st.sampled_from(["buy", "sell"]),
    st.floats(0.1, 3.0).map(lambda x: round(x, 1)),
    st.floats(0.9, 1.1),  # limit price as a share of the close
    st.sampled_from(["GTC", "IOC", "FOK", "PO"]),
    st.sampled_from(["long", "short"]),  # margin only
    st.booleans())  # reduce_only (margin only)


class Oracle:
    """Wraps a SimExecutor: asserts at `place` that the order breaks no configured rule.

    It keeps its own count of the orders the executor took (`created`, for the
    throttle), and prices a buy trailing stop with an activation at the highest it may
    fire, independently of the gate's figures."""

    def __init__(self, s, inner):
        self.s, self.inner, self.placed, self.created = s, inner, 0, []
        self.buy_stops = []  # (order, the price the gate checked it at)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def place(self, ai, order, req):
        self.check(ai, order)
        self.placed += 1
        result = self.inner.place(ai, order, req)
        # the executor took it (None: refused before it was made, or an IOC or FOK taken
        # and expired unfilled, as a venue does: that one is an order)
        if result is not None or order.status is OrderStatus.CANCELED:
            self.created.append(self.s.clock.now())
        if order.side is Side.BUY and order.type in MARKET_AFTER_TRIGGER:
            self.buy_stops.append((order, order.price))
        return result

    def check_triggers(self):
        """A market-type buy stop never stands (so never fires) above the price the gate
        checked it at: its notional then is at most the one checked (a gap aside)."""
        for order, checked in self.buy_stops:
            assert order.trigger <= checked * (1 + 1e-12), (order, checked)

    def check(self, ai, order):
        s = self.s
        risk = s.state.risk
        rules = risk.rules
        m = ai.market
        assert m.check_order(order.amount, order.price) is None
        increases = (order.side is Side.BUY) if not m.is_derivative else \
            (not order.reduce_only and (order.side is Side.BUY) == (order.pos.value == "long"))
        trip = getattr(s, "in_trip", False)
        exits = getattr(s, "in_exits", False)  # a bracket's exits: protection
        if risk.trading is TradingState.HALTED:
            assert (trip or exits) and not increases, "an order reached the executor while halted"
        if risk.trading is TradingState.REDUCING:
            assert not increases, "an order adding exposure reached the executor while reducing"
        if trip or (exits and not increases):  # the close-out, a bracket's protection:
            return  # no throttle (and no size rule: they only reduce)
        now = s.clock.now()
        times = self.created  # the creation times of the orders before this one
        for limit, span in ((rules.max_orders_per_second, 1000),
                            (rules.max_orders_per_minute, 60_000)):
            if limit is not None:
                assert sum(1 for t in times if t > now - span) < limit, "throttle broken"
        if not increases:
            return
        price = order.price
        if order.type is OrderType.TRAILING_STOP and order.side is Side.BUY and order.activation:
            a = order.activation  # armed there, it trails the lows up by its trail
            price = max(price, a * (1 + order.trail) if order.trail_pct else a + order.trail)
        notional = order.amount * price * m.contract_size
        if rules.max_order_notional is not None:
            assert notional <= rules.max_order_notional
        if rules.max_open_orders is not None:
            # a stop's replacement leaves as many open: the stop it moves, open in its
            # group, is cancelled once it is placed
            moved = getattr(s, "in_amend", False) and any(
                o.group == order.group and o.is_conditional and o.is_open
                for o in ai.orders.values())
            assert sum(len(a.orders) for a in s.assets) - moved < rules.max_open_orders
        def ordered(a, new=None):
            """What the open orders (and `new`) that add exposure add: the legs of a group
            (an OCO pair, a stop and its replacement) once, as at most one fills."""
            by_group = {}
            for o in [*a.orders.values(), *([new] if new is not None else [])]:
                if (o.side is Side.BUY if not a.market.is_derivative else
                        not o.reduce_only and (o.side is Side.BUY) == (o.pos.value == "long")):
                    key = o.group or o.id
                    by_group[key] = max(by_group.get(key, 0.0), o.remaining)
            return sum(by_group.values())

        def held(a):
            return a.balance if not a.market.is_derivative else a.long.amount + a.short.amount
        cs = m.contract_size
        if rules.max_position_notional is not None:
            after = (held(ai) + ordered(ai, order)) * price * cs
            assert after <= rules.max_position_notional * (1 + 1e-12)
        if rules.max_leverage is not None:
            close = ai.ohlcv.close.item(s.i)
            eq = s.state.equity({ai.symbol: close})
            now_held = held(ai) + ordered(ai)
            gross = now_held * close * cs + (ordered(ai, order) - ordered(ai)) * price * cs
            assert eq > 0 and gross <= rules.max_leverage * eq * (1 + 1e-12)


def stream_strategy(ops_by_tick, margin):
    sym = (PERP if margin else SPOT).symbol

    def act(s, op):
        kind, side, amount, share, tif, pos, reduce_only = op
        close = s.asset(sym).ohlcv.close.item(s.i)
        pos = {} if not margin else {"pos": pos, "reduce_only": reduce_only}
        if margin and reduce_only and (side == "buy") == (pos["pos"] == "long") \
                and kind == "market":  # on the side that adds: refused before any gate
            with pytest.raises(InvalidArgument, match="reduce_only=True needs the side"):
                call(s, "market_order", sym, amount, side=side, **pos)
            return None
        if margin and reduce_only and (side == "buy") == (pos["pos"] == "long"):
            pos["reduce_only"] = False  # the other orders as they come, not reduce-only
        if kind == "market":
            return call(s, "market_order", sym, amount, side=side, **pos)
        if kind == "limit":
            price = round(close * share, 2)
            return call(s, "limit_order", sym, amount, price, side=side, tif=tif, **pos)
        if kind == "cancel":
            return call(s, "cancel_orders", sym)
        if kind == "close":
            return call(s, "close_position", sym)
        if kind == "leverage":
            return margin and call(s, "update_leverage", sym, round(amount * 2, 1) + 1)
        if kind == "reset":
            return call(s, "reset_trading_state")
        if kind in ("reducing", "halted"):  # a breaker trips, as the loss breakers do
            return pipeline.trip(s.engine, Breach("test", "a test", TradingState(kind)))
        # conditional orders: prices `off` away from the close, on the side each needs
        off = abs(share - 1.0) + 0.005
        up, down = round(close * (1 + off), 2), round(close * (1 - off), 2)
        sell = side == "sell"
        if kind == "stop":
            return call(s, "stop_order", sym, amount, down if sell else up, side=side, **pos)
        if kind == "take_profit":
            return call(s, "take_profit_order", sym, amount, up if sell else down, side=side,
                        **pos)
        if kind == "trail":
            near = round(close * (1 + off / 5 if sell else 1 - off / 5), 2)
            armed = {} if tif != "GTC" else {"activation": near}
            return call(s, "trailing_stop_order", sym, amount, side=side,
                        percent=round(3 * off, 3), **armed, **pos)
        if kind == "oco":
            return call(s, "oco_order", sym, amount, price=up if sell else down,
                        stop=down if sell else up, side=side, **pos)
        if kind == "bracket":
            entry = {"price": up if sell else down, "tif": tif} if tif != "FOK" else {}
            wide = (round(close * (1 + off + 0.06), 2), round(close * (1 - off - 0.06), 2))
            stop_loss, take_profit = wide if sell else wide[::-1]
            return call(s, "bracket_order", sym, amount, side=side, stop_loss=stop_loss,
                        take_profit=take_profit, **entry,
                        **({} if not margin else {"pos": "short" if sell else "long"}))
        stops = [o for o in s.asset(sym).orders.values()
                 if o.is_conditional and o.type is not OrderType.TRAILING_STOP]
        if not stops:
            return None
        s.in_amend = True  # the oracle knows a stop's replacement from another order
        try:
            return call(s, "amend_stop", sym, stops[0].id, round(stops[0].trigger * share, 2))
        finally:
            s.in_amend = False

    script = {i: (lambda ops: lambda s: [act(s, op) for op in ops])(ops)
              for i, ops in ops_by_tick.items()}
    return script


@pytest.mark.parametrize("margin", [False, True])
@SETTINGS
@given(rules=rules_st,
       steps=st.lists(st.floats(-0.04, 0.04), min_size=12, max_size=30),
       ops=st.dictionaries(st.integers(0, 28), st.lists(op_st, min_size=1, max_size=5),
                           min_size=6, max_size=20))
def test_no_order_that_breaks_a_rule_reaches_the_executor(margin, rules, steps, ops):
    """Whatever the order stream, prices and rules: every order the executor receives
    passes the market rules, the trading state, the throttle and the size rules."""
    rows = walk(steps)
    ops = {i: v for i, v in ops.items() if i < len(rows) - 1}
    script = stream_strategy(ops, margin)
    oracle = {}

    def start(s):
        oracle["o"] = s.engine.executor = Oracle(s, s.engine.executor)

    real_trip, real_release = pipeline.trip, contingent.release_legs

    def flagged(real, flag):
        def wrapped(e, *args, **kwargs):
            setattr(e.strategy, flag, True)
            try:
                return real(e, *args, **kwargs)
            finally:
                setattr(e.strategy, flag, False)
        return wrapped
    pipeline.trip = flagged(real_trip, "in_trip")
    contingent.release_legs = flagged(real_release, "in_exits")
    try:
        r = run(script, rows, market=PERP if margin else SPOT, risk=rules,
                config=__import__("planarpy").SimConfig(slippage=0.5, volume_cap=True, seed=1,
                                                        check_lookahead=False),  # one executor
                start=start)
    finally:
        pipeline.trip, contingent.release_legs = real_trip, real_release
    s = r.strategy
    risk = s.state.risk
    assert risk.denied == sum(1 for e in s.risk_events if e.kind == "denied")
    assert s.state.committed >= -1e-9 and s.cash > -1e-6
    assert s.engine.executor is oracle["o"]  # every order went through the oracle
    assert len(oracle["o"].created) == len(risk.orders)  # the throttle counts each order once
    oracle["o"].check_triggers()


@SETTINGS
@given(k=st.floats(-1e4, 1e4), q=st.floats(-50, 50), price=st.floats(0.01, 1e3),
       peak=st.floats(1, 1e4), start=st.floats(1, 1e4),
       dd=st.none() | st.floats(0.001, 1), day=st.none() | st.floats(0.001, 1),
       day_quote=st.none() | st.floats(0.01, 1e3))
def test_inside_the_price_band_no_breaker_trips_and_no_peak_is_made(k, q, price, peak, start,
                                                                     dd, day, day_quote):
    """price_band is exact enough: a close inside it never hides a breach or a new peak."""
    risk = RiskState(rules=RiskRules(max_drawdown=dd, max_daily_loss=day,
                                     max_daily_loss_quote=day_quote),
                     peak_equity=peak, day_start_equity=start)
    lo, hi = core_risk.price_band(core_risk.equity_bounds(risk), k, q)
    if lo <= price <= hi:
        value = k + q * price
        assert core_risk.equity_breach(risk, value) is None
        assert dd is None or value <= peak


@pytest.mark.parametrize("margin", [False, True])
@settings(max_examples=60, deadline=None, derandomize=True)
@given(steps=st.lists(st.floats(-0.03, 0.03), min_size=20, max_size=60),
       dd=st.floats(0.005, 0.08), day=st.none() | st.floats(0.002, 0.05),
       on=st.sampled_from(["halt", "reduce"]), closes=st.booleans(),
       buys=st.lists(st.integers(0, 58), max_size=8))
def test_the_guard_decides_as_measuring_every_close(margin, steps, dd, day, on, closes, buys):
    """The guarded loop trips the same breakers at the same closes, with the same trades,
    as one that measures the equity at every close."""
    rows = walk(steps)
    sym = (PERP if margin else SPOT).symbol
    script = {i: (lambda s: call(s, "market_order", sym, 2.0, side="buy"))
              for i in buys if i < len(rows) - 1}
    rules = RiskRules(max_drawdown=dd, max_daily_loss=day, on_drawdown=on,
                      halt_closes_positions=closes)

    def go():
        r = run(script, rows, market=PERP if margin else SPOT, risk=rules)
        return r.strategy.state.risk.changes, [t for t in r.trades]
    decides_as_measuring_every_close(go)


def test_state_defaults():
    assert State("USD", 1.0).risk.trading is TradingState.ACTIVE


def _reference_leverage(state, mark):
    """The leverage rule's figures as first written: equity(state, mark) and the sum of
    exposure() over the assets held or with open orders."""
    eq = core_risk.equity(state, mark)
    gross = 0.0
    for a in state.assets.values():
        if core_risk.held(a) or a.orders:
            gross += core_risk.exposure(a, mark(a))
    return eq, gross


asset_st = st.tuples(st.floats(0, 5), st.floats(0, 4), st.floats(1, 200), st.floats(0, 300),
                     st.booleans(), st.lists(st.tuples(st.booleans(), st.floats(0.1, 3),
                                                       st.booleans()), max_size=3))


@SETTINGS
@given(cash=st.floats(-500, 5000), spot=asset_st, perp=asset_st,
       prices=st.tuples(st.floats(0.5, 500), st.floats(0.5, 500)), notional=st.floats(0, 2000),
       nudge=st.sampled_from([-1, 0, 1]))
def test_leverage_denial_decides_as_equity_over_exposure(cash, spot, perp, prices, notional,
                                                          nudge):
    """leverage_denial's one pass gives the figures of equity() and exposure() to the bit:
    at a limit set exactly on the boundary (or one float either side) it decides the same."""
    from planarpy.core.instances import AssetInstance
    from planarpy.core.orders import Order, OrderType, PositionSide, Side as S
    from simkit import PERP, SPOT
    state = State("USD", cash)
    for market, (balance, amount, entry, margin, short, orders) in ((SPOT, spot), (PERP, perp)):
        ai = AssetInstance(market)
        if market.is_derivative:
            pos = ai.short if short else ai.long
            pos.amount, pos.entry_price, pos.margin = amount, entry, margin
        else:
            ai.balance = balance
        for n, (buy, size, reduce_only) in enumerate(orders):
            ai.orders[f"o{n}"] = Order(f"o{n}", market.symbol, S.BUY if buy else S.SELL,
                                       OrderType.LIMIT, size, entry, 0,
                                       pos=PositionSide.SHORT if short else PositionSide.LONG,
                                       reduce_only=reduce_only)
        state.assets[market.symbol] = ai
    marks = dict(zip(state.assets, prices))
    mark = lambda a: marks[a.symbol]  # noqa: E731
    eq, gross = _reference_leverage(state, mark)
    gross += notional
    ai = state.assets[SPOT.symbol]
    if eq <= 0:
        assert core_risk.leverage_denial(state, ai, notional, mark, 1.0) is not None
        return
    limit = gross / eq
    if nudge:
        limit = math.nextafter(limit, math.inf * nudge)
    denied = core_risk.leverage_denial(state, ai, notional, mark, limit) is not None
    assert denied == (gross > limit * eq)


@SETTINGS
@given(cash=st.floats(-10, 5000), balances=st.lists(st.floats(-1e-9, 50), min_size=1, max_size=2),
       prices=st.tuples(st.floats(0.5, 500), st.floats(0.5, 500)), notional=st.floats(0, 5000),
       order=st.booleans(), limit=st.sampled_from([1.0, 1.0 + 2**-52, 1.5, 1000.0, math.inf]))
def test_leverage_denial_of_a_spot_buy_decides_as_equity_over_exposure(cash, balances, prices,
                                                                      notional, order, limit):
    """On spot with no open order a limit of 1 or more is decided without the walk: the
    same decisions as equity() and exposure(), also with cash, an order or a balance at
    the edges."""
    import attrs
    from planarpy.core.instances import AssetInstance
    from planarpy.core.orders import Order, OrderType, Side as S
    state = State("USD", cash)
    markets = [SPOT, attrs.evolve(SPOT, symbol="TWO/USD", id="TWOUSD", base="TWO")]
    for market, balance in zip(markets, balances):
        ai = AssetInstance(market)
        ai.balance = balance
        state.assets[market.symbol] = ai
    if order:
        ai.orders["o"] = Order("o", ai.symbol, S.BUY, OrderType.LIMIT, 1.0, 2.0, 0)
    if notional > cash and cash > 0 and notional < 2 * cash:
        notional = cash  # an order of exactly the cash: the bound holds with equality
    marks = dict(zip(state.assets, prices))
    mark = lambda a: marks[a.symbol]  # noqa: E731
    eq, gross = _reference_leverage(state, mark)
    gross += notional
    denied = core_risk.leverage_denial(state, state.assets[SPOT.symbol], notional, mark,
                                       limit) is not None
    assert denied == (eq <= 0 or gross > limit * eq)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(steps=st.lists(st.tuples(st.floats(-0.02, 0.02), st.floats(-0.02, 0.02)),
                      min_size=140, max_size=260),
       dd=st.floats(0.005, 0.08), day=st.none() | st.floats(0.002, 0.05),
       ops=st.lists(st.tuples(st.integers(0, 250), st.booleans(), st.booleans()), max_size=12))
def test_the_guard_decides_as_measuring_every_close_with_two_assets(steps, dd, day, ops):
    """With two assets (the one held changes, both may be held) the guarded loop, which
    passes over blocks of closes, trips the same breakers with the same trades as
    measuring every close."""
    import attrs
    from simkit import candles, scripted
    two = attrs.evolve(SPOT, symbol="TWO/USD", id="TWOUSD", base="TWO")
    rows = [walk([a for a, _ in steps]), walk([b for _, b in steps])]
    script: dict = {}
    for i, first, buy in ops:
        if i < len(steps) - 1:
            sym = (SPOT if first else two).symbol
            script[i] = (lambda s, sym=sym, side="buy" if buy else "sell":
                         call(s, "market_order", sym, 2.0, side=side))
    cls = scripted(script, universe=(SPOT.symbol, two.symbol))
    rules = RiskRules(max_drawdown=dd, max_daily_loss=day)

    def go():
        s = cls({SPOT.symbol: SPOT, two.symbol: two})
        r = pipeline_backtest(s, {SPOT.symbol: candles(rows[0]), two.symbol: candles(rows[1])},
                              rules)
        return r.strategy.state.risk.changes, list(r.trades)
    decides_as_measuring_every_close(go)


def pipeline_backtest(s, data, rules):
    from planarpy import backtest
    from planarpy.modes.sim import SimConfig
    return backtest(s, data=data, config=SimConfig(slippage=0.0, volume_cap=False),
                    settings={}, risk=rules)
