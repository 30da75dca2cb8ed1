import math
from types import SimpleNamespace

import numpy as np
import pytest

from planarpy import InvalidArgument, Mode, UnknownSymbol, UnsupportedAction, call
from planarpy.actions import Action, supported_actions

from simkit import PERP, SPOT, T0, flat, run

SYM = SPOT.symbol


class Fake:
    """Anything with an engine side holding a mode and an action table can be called."""

    engine = SimpleNamespace(name="Fake", mode=Mode.SIM,
                             dispatch={Action.MARKET_ORDER: lambda e, req: req})


def test_unknown_action_names_the_vocabulary():
    """A misspelt action raises at once, listing every action."""
    with pytest.raises(UnsupportedAction, match="unknown action 'market'; actions are: market_order, "
                                               "limit_order, cancel_orders"):
        call(Fake(), "market", None, 1.0)


def test_action_missing_in_a_mode_names_what_it_supports():
    """A mode whose table lacks an action raises naming the actions it has (no import of
    any mode needed: the table is the strategy's own, given when its run starts)."""
    class Paper:
        engine = SimpleNamespace(name="Paper", mode=Mode.PAPER, dispatch={
            Action.LIMIT_ORDER: lambda e, r: r, Action.CANCEL_ORDERS: lambda e, r: r})
    with pytest.raises(UnsupportedAction, match="paper mode does not support 'market_order'; "
                                                "it supports: limit_order, cancel_orders$"):
        call(Paper(), Action.MARKET_ORDER, None, 1.0)


def test_a_strategy_that_is_not_running_says_so():
    """call() on a strategy no mode has started raises, naming how to start one."""
    from simkit import scripted
    s = scripted({})({SYM: SPOT})
    with pytest.raises(UnsupportedAction, match="Scripted is not running: call\\(\\) works "
                                                "from its callbacks during backtest\\(\\)"):
        call(s, "market_order", SYM, 1.0)


def test_the_pipeline_handles_the_whole_vocabulary():
    """The one table every mode uses handles every action of DESIGN section 2."""
    from planarpy.actions import pipeline
    assert supported_actions(pipeline.HANDLERS) == [a.value for a in Action]


@pytest.mark.parametrize("mode", list(Mode))
def test_every_mode_has_an_executor_of_the_whole_protocol(mode):
    """Sim, paper and live each execute through a class with every method of
    `pipeline.Executor` (and nothing mode-specific is asked of the pipeline)."""
    import inspect

    from planarpy.actions.pipeline import Executor
    from planarpy.modes.live.executor import LiveExecutor
    from planarpy.modes.paper.executor import PaperExecutor
    from planarpy.modes.sim.executor import SimExecutor
    cls = {Mode.SIM: SimExecutor, Mode.PAPER: PaperExecutor, Mode.LIVE: LiveExecutor}[mode]
    wanted = [n for n, v in vars(Executor).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert wanted and all(callable(getattr(cls, n, None)) or n in getattr(cls, "__slots__", ())
                          for n in wanted), cls


def raised(action, *args, market=SPOT, **kwargs):
    """The exception `call(s, action, *args, **kwargs)` raises from a tick of a backtest;
    also asserts that nothing reached the mode (no event, no order error)."""
    seen = []

    def attempt(s):
        before = (len(s.state.trades), s.state.risk.denied, len(s.errors))
        try:
            call(s, action, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            seen.append(e)
        assert (len(s.state.trades), s.state.risk.denied, len(s.errors)) == before
    run({1: attempt}, flat(4), market=market)
    assert seen, f"{action} {args} {kwargs} did not raise"
    return seen[0]


BAD = [
    # (action, args, kwargs, words the message must hold)
    ("market_order", (SYM, True), {}, ["amount must be a number", "True"]),
    ("market_order", (SYM, "1"), {}, ["amount must be a number", "'1'"]),
    ("market_order", (SYM, math.nan), {}, ["amount must be a finite number > 0", "nan"]),
    ("market_order", (SYM, math.inf), {}, ["amount must be a finite number > 0", "inf"]),
    ("market_order", (SYM, -1.0), {}, ["amount must be a finite number > 0", "-1.0"]),
    ("market_order", (SYM, 0), {}, ["amount must be a finite number > 0", "0"]),
    ("market_order", (SYM, None), {}, ["amount must be a number", "None"]),
    ("market_order", (SYM, 1.0), {"reduce_only": "no"}, ["reduce_only must be True or False", "'no'"]),
    ("market_order", (SYM, 1.0), {"reduce_only": 1}, ["reduce_only must be True or False", "1"]),
    ("market_order", (SYM, 1.0), {"side": "bye"}, ["side must be 'buy' or 'sell'", "'bye'"]),
    ("market_order", (SYM, 1.0), {"side": ["buy"]}, ["side must be 'buy' or 'sell'", "['buy']"]),
    ("market_order", (SYM, 1.0), {"pos": "x"}, ["pos must be 'long' or 'short'", "'x'"]),
    ("market_order", (SYM, 1.0), {"date": 1.5}, ["date must be None or a time", "1.5"]),
    ("market_order", (SYM, 1.0), {"waitfor": -1}, ["waitfor must be a finite number >= 0", "-1"]),
    ("market_order", (SYM, 1.0), {"synced": "yes"}, ["synced must be True or False", "'yes'"]),
    ("market_order", (123, 1.0), {}, ["asset must be a symbol or an asset instance", "123"]),
    ("limit_order", (SYM, 1.0, math.nan), {}, ["price must be a finite number > 0", "nan"]),
    ("limit_order", (SYM, 1.0, -5.0), {}, ["price must be a finite number > 0", "-5.0"]),
    ("limit_order", (SYM, 1.0, math.inf), {}, ["price must be a finite number > 0", "inf"]),
    ("limit_order", (SYM, 1.0, False), {}, ["price must be a number", "False"]),
    ("limit_order", (SYM, 1.0, 100.0), {"tif": "DAY"}, ["tif must be one of GTC, IOC, FOK, PO", "'DAY'"]),
    ("cancel_orders", (SYM, "up"), {}, ["side must be 'buy' or 'sell' or 'both'", "'up'"]),
    ("cancel_orders", (SYM,), {"ids": "sim-1"}, ["ids must be None or a list of order ids", "'sim-1'"]),
    ("cancel_orders", (SYM,), {"ids": [1, 2]}, ["ids must be None or a list of order ids", "[1, 2]"]),
    ("cancel_orders", (SYM,), {"confirm": "no"}, ["confirm must be True or False", "'no'"]),
    ("close_position", (SYM,), {"pos": "x"}, ["pos must be 'long' or 'short'", "'x'"]),
    ("close_position", (3.0,), {}, ["asset must be a symbol or an asset instance", "or None for all"]),
    ("update_leverage", (SYM, True), {}, ["leverage must be a number", "True"]),
    ("update_leverage", (SYM, math.nan), {}, ["leverage must be a finite number > 0", "nan"]),
    ("watch_ohlcv", (SYM, 5), {}, ["timeframe must be None or the strategy's timeframe '1m'", "5"]),
    # a timeframe other than the strategy's was ignored in every mode
    ("watch_ohlcv", (SYM, "5m"), {}, ["timeframe must be None or the strategy's timeframe '1m'",
                                      "got '5m'"]),
    ("watch_ohlcv", (None, "7q"), {}, ["timeframe must be None or the strategy's timeframe",
                                       "got '7q'"]),
    # an array compared with == gave an array, whose truth is a ValueError
    ("watch_ohlcv", (None, np.array(["1m", "5m"])), {},
     ["timeframe must be None or the strategy's timeframe", "ndarray"]),
    ("reset_trading_state", (3,), {}, ["reason must be a string", "3"]),
    # ints (and fractions) beyond any float: an OverflowError before
    ("market_order", (SYM, 10**400), {}, ["amount must be a finite number > 0", "got 100000"]),
    ("limit_order", (SYM, 1.0, -10**400), {}, ["price must be a finite number > 0", "got -100000"]),
    ("market_order", (SYM, 1.0), {"waitfor": 10**400}, ["waitfor must be", "got 100000"]),
    ("update_leverage", (SYM, 10**5000), {}, ["leverage must be a finite number > 0",
                                              "an int of 16610 bits"]),
    ("stop_order", (SYM, 1.0, 10**400), {}, ["trigger must be a finite number > 0", "..."]),
    ("trailing_stop_order", (SYM, 1.0), {"percent": 10**400}, ["percent must be a finite number"]),
    # a wait longer than Python's thread waits allow: an OverflowError once the order was placed
    ("limit_order", (SYM, 1.0, 99.0), {"waitfor": 1e10}, ["waitfor must be None or seconds from 0 "
                                                          "to 86400 (a day)", "got 10000000000.0"]),
    ("oco_order", (SYM, 1.0), {"price": 110.0, "stop": 90.0, "waitfor": 86_401},
     ["waitfor must be None or seconds from 0 to 86400", "got 86401"]),
    # exits that could never work, accepted before
    ("bracket_order", (SYM, 1.0), {"take_profit": 110.0, "stop_limit": 88.0},
     ["stop_limit is the limit of the stop_loss once it triggers: give stop_loss with it",
      "stop_limit=88"]),
    ("trailing_stop_order", (SYM, 1.0), {"offset": 120.0, "activation": 110.0},
     ["a sell's offset must be below its activation", "offset=120, activation=110"]),
    # misreadings a first day brings: 2 for 2%, both trails, the exits of a bracket swapped
    ("trailing_stop_order", (SYM, 1.0), {"percent": 2},
     ["percent must be a fraction between 0 and 1 (0.02 is 2%)", "got 2"]),
    ("trailing_stop_order", (SYM, 1.0), {"percent": 0.02, "offset": 1.0},
     ["give exactly one of percent", "or offset (a price distance)", "percent=0.02, offset=1"]),
    ("bracket_order", (SYM, 1.0), {"stop_loss": 110.0, "take_profit": 90.0},
     ["a buy entry needs its take_profit above its stop_loss", "stop_loss=110, take_profit=90"]),
    # a reduce-only buy of a spot asset adds to it (see the test of derivatives below)
    ("market_order", (SYM, 1.0), {"reduce_only": True},
     ["reduce_only=True needs the side that reduces the long position, side='sell'"]),
    # a backtest places an order when it is called: a ValueError that ended the run before
    ("market_order", (SYM, 1.0), {"date": 5}, ["date must be None or the time now", "got 5"]),
    ("limit_order", (SYM, 1.0, 99.0), {"date": np.int64(T0)}, ["date must be None or the time now",
                                                                f"got {T0}"]),
    # an array's comparison with "both" has no truth value: a ValueError before
    ("cancel_orders", (SYM, np.array(["buy", "sell"])), {}, ["side must be 'buy' or 'sell' or 'both'",
                                                            "array(['buy', 'sell']"]),
]


@pytest.mark.parametrize("action,args,kwargs,words", BAD,
                         ids=[f"{a}-{i}" for i, (a, *_rest) in enumerate(BAD)])
def test_bad_arguments_are_refused_naming_argument_value_and_what_is_allowed(
        action, args, kwargs, words):
    """Each wrong type or value raises InvalidArgument (a TypeError and a ValueError) whose
    message names the action, the argument, its value and what is allowed."""
    e = raised(action, *args, **kwargs)
    assert isinstance(e, InvalidArgument) and isinstance(e, TypeError) and isinstance(e, ValueError)
    assert str(e).startswith(f"{action}: ")
    for w in words:
        assert w in str(e), str(e)


@pytest.mark.parametrize("action,args,kwargs,words", [
    ("market_order", (1.0,), {"side": "sell", "pos": "short", "reduce_only": True},
     ["reduce_only=True needs the side that reduces the short position, side='buy'; a sell "
      "adds to it, got side='sell', pos='short'"]),
    ("limit_order", (1.0, 90.0), {"reduce_only": True},
     ["reduce_only=True needs the side that reduces the long position, side='sell'"]),
    ("stop_order", (1.0, 110.0), {"side": "buy", "reduce_only": True},
     ["reduce_only=True needs the side that reduces the long position"]),
    ("oco_order", (1.0,), {"price": 90.0, "stop": 110.0, "side": "buy", "reduce_only": True},
     ["reduce_only=True needs the side that reduces the long position"]),
])
def test_a_reduce_only_order_on_the_side_that_adds_is_refused(action, args, kwargs, words):
    """reduce_only=True on the side that opens the position (a sell of a short, a buy of a
    long) is a contradiction: a reduce-only market sell of a short of 2 left a short of 1
    after the sell filled."""
    e = raised(action, PERP.symbol, *args, market=PERP, **kwargs)
    assert isinstance(e, InvalidArgument) and str(e).startswith(f"{action}: ")
    for w in words:
        assert w in str(e), str(e)


def test_unknown_keyword_and_extra_arguments_name_what_the_action_takes():
    """An unknown keyword (or one positional too many) raises naming it and the signature."""
    e = raised("market_order", SYM, size=1.0)
    assert isinstance(e, InvalidArgument)
    assert "unexpected keyword argument 'size'" in str(e)
    assert "it takes (ai, amount, *, side='buy', pos='long', reduce_only=False" in str(e)
    e = raised("cancel_orders", SYM, "buy", "extra")
    assert isinstance(e, InvalidArgument) and "positional argument" in str(e)
    e = raised("limit_order", SYM, 1.0)
    assert isinstance(e, InvalidArgument) and "missing 1 required positional argument: 'price'" in str(e)


def test_short_on_spot_and_unknown_symbol_raise_at_once():
    """A short on spot and a symbol outside the universe are programming errors."""
    e = raised("market_order", SYM, 1.0, side="sell", pos="short")
    assert isinstance(e, InvalidArgument) and "TST/USD is a spot market: it has no short" in str(e)
    e = raised("close_position", SYM, pos="short")
    assert isinstance(e, InvalidArgument) and "spot market" in str(e)
    e = raised("market_order", "XYZ/USD", 1.0)
    assert isinstance(e, UnknownSymbol) and "'XYZ/USD' is not in Scripted's universe" in str(e)


PSYM = PERP.symbol
BACKWARDS = [  # a reduce-only order on the side that opens its position; a bracket whose
    # entry closes its position (its exits, reduce-only, would open it)
    ("market_order", (PSYM, 1.0), {"reduce_only": True}, "reduce_only=True needs the side that reduces the long position"),
    ("limit_order", (PSYM, 1.0, 99.0), {"side": "sell", "pos": "short", "reduce_only": True},
     "reduce_only=True needs the side that reduces the short position"),
    ("stop_order", (PSYM, 1.0, 101.0), {"side": "buy", "reduce_only": True},
     "reduce_only=True needs the side that reduces the long position"),
    ("trailing_stop_order", (PSYM, 1.0), {"side": "buy", "percent": 0.01, "reduce_only": True},
     "reduce_only=True needs the side that reduces the long position"),
    ("oco_order", (PSYM, 1.0), {"price": 90.0, "stop": 110.0, "side": "buy", "reduce_only": True},
     "reduce_only=True needs the side that reduces the long position"),
    ("bracket_order", (PSYM, 1.0), {"side": "sell", "stop_loss": 110.0},
     "a sell entry opens a short"),
]


@pytest.mark.parametrize("action,args,kwargs,words", BACKWARDS,
                         ids=[a for a, *_rest in BACKWARDS])
def test_a_derivative_order_that_would_act_backwards_on_its_position_is_refused(
        action, args, kwargs, words):
    """With a long of 5 open: a reduce-only buy (pos "long" by default) is no close of the
    long, which the exchange refuses ("ReduceOnly Order is rejected") while the sim and
    paper filled it as a sale, the buy shrinking the long; a bracket that sells on the
    long would close it, with reduce-only buy exits (passing a halt and the throttle as
    protection) that shrink it further. Each raises at once, the long untouched."""
    seen = []

    def attempt(s):
        try:
            call(s, action, *args, **kwargs)
        except InvalidArgument as e:
            seen.append(str(e))
    r = run({0: lambda s: call(s, "market_order", PSYM, 5.0), 1: attempt},
            [(100.0, 112.0, 88.0, 100.0, 1e6)] * 4, market=PERP)
    ai = r.strategy.asset(PSYM)
    assert [(t.side.value, t.amount) for t in r.trades] == [("buy", 5.0)] and not ai.orders
    assert ai.long.amount == 5.0 and r.strategy.errors == []
    assert len(seen) == 1 and seen[0].startswith(f"{action}: {words}"), seen


def test_an_order_before_the_first_candle_of_a_backtest_is_unsupported():
    """An order from start() has no candle to be placed at: UnsupportedAction naming the
    action and where orders may be placed (a RuntimeError before)."""
    seen = []

    def start(s):
        try:
            call(s, "market_order", SYM, 1.0)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            seen.append(e)
    r = run({}, flat(3), start=start)
    assert r.trades == [] and len(seen) == 1 and isinstance(seen[0], UnsupportedAction)
    assert str(seen[0]) == ("market_order: a backtest places orders from tick() and the callbacks "
                            "after it, not before its first candle (reset, start)")


def test_a_symbol_in_another_case_names_the_one_meant():
    """A symbol that differs only in case says which symbol it may mean."""
    e = raised("close_position", "tst/usd")
    assert isinstance(e, UnknownSymbol)
    assert "'tst/usd' is not in Scripted's universe (did you mean 'TST/USD'? symbols are " \
           "case-sensitive); known: TST/USD" == str(e)


def test_asset_of_another_strategy_is_refused():
    """An asset instance must be one of the calling strategy's own."""
    from simkit import scripted
    other = scripted({})({SYM: SPOT}).asset(SYM)
    e = raised("market_order", other, 1.0)
    assert isinstance(e, InvalidArgument) and "asset must be one of Scripted's assets" in str(e)


def test_close_position_on_nothing_with_a_bad_side_is_refused_not_true():
    """close_position(pos='x') raises even when there is no position (it returned True)."""
    e = raised("close_position", PERP.symbol, pos="x", market=PERP)
    assert isinstance(e, InvalidArgument)


def test_numbers_of_any_real_type_and_enums_are_accepted():
    """ints, numpy floats, ints and strings, enums and numpy bools are taken as what they
    mean."""
    from planarpy import PositionSide, Side
    script = {1: lambda s: call(s, "market_order", np.str_(SYM), np.float32(1.5), side=Side.BUY,
                                pos=PositionSide.LONG, reduce_only=np.bool_(False)),
              2: lambda s: call(s, "limit_order", SYM, 1, np.int64(99), side="buy", tif="gtc")}
    r = run(script, flat(5))
    s = r.strategy
    assert r.trades[0].amount == 1.5 and type(r.trades[0].amount) is float
    assert s.errors == []
    (order,) = s.asset(SYM).orders.values()
    assert (order.amount, order.price) == (1.0, 99.0) and type(order.price) is float


def test_ids_given_as_a_set_are_kept_in_one_order():
    """Order ids given as a set are kept sorted, so that the request (and the trace's copy
    of it) is the same in every run; a list keeps its own order."""
    from planarpy.actions import requests
    e = run({}, flat(3)).strategy.engine
    ids = [f"sim-{i}" for i in range(30)]
    assert requests.cancel_orders(e, SYM, ids=set(ids)).ids == tuple(sorted(ids))
    assert requests.cancel_orders(e, SYM, ids=ids[::-1]).ids == tuple(ids[::-1])


def test_a_backtest_attaches_the_sim_executor_to_the_engine():
    """The sim's side of the pipeline is attached to the strategy's engine, and has every
    method of the Executor protocol."""
    import inspect

    from planarpy.actions.pipeline import Executor
    from planarpy.modes.sim.executor import SimExecutor
    r = run({}, flat(3))
    assert isinstance(r.strategy.engine.executor, SimExecutor)
    assert isinstance(r.strategy.engine.executor, Executor)
    wanted = {n for n, _ in inspect.getmembers(Executor, inspect.isfunction)}
    assert wanted <= set(dir(SimExecutor)) | {"new_id"}
