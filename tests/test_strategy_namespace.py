"""The strategy's names are the user's: planarpy's own live on `strategy.engine`, and a
setting that would take the place of a callback or an engine name is refused at load."""

import gc
import sys

import pytest

from planarpy import Param, Strategy, call
from planarpy.actions.engine import Engine
from planarpy.core.errors import ConfigError
from planarpy.core.instances import State

from simkit import SPOT, flat, run

SYM = SPOT.symbol


def test_a_parameter_named_like_a_callback_is_refused_naming_both():
    """`stop = 0.03` once replaced the stop() callback and the run ended in a TypeError."""
    with pytest.raises(ConfigError, match=r"Stops\.stop = 0\.03 shadows the callback "
                                          r"Strategy\.stop\(\) .*another name"):
        type("Stops", (Strategy,), {"stop": 0.03})
    with pytest.raises(ConfigError, match=r"Stops\.tick = Param.* shadows the callback "
                                          r"Strategy\.tick\(\) .*give the parameter"):
        type("Stops", (Strategy,), {"tick": Param(3, low=1, high=9)})


@pytest.mark.parametrize("name", ["engine", "assets", "i", "params", "cash", "now"])
def test_a_setting_named_like_an_engine_name_is_refused(name):
    with pytest.raises(ConfigError, match=rf"Mine\.{name} shadows the engine's '{name}'"):
        type("Mine", (Strategy,), {name: 1})


def test_a_method_may_override_a_callback():
    cls = type("Fine", (Strategy,), {"stop": lambda self: None})
    assert callable(cls.stop)


def test_an_attribute_set_in_reset_that_hides_a_callback_is_refused_when_the_run_starts():
    def reset(self):
        self.seen, self.results, self.errors, self.risk_events = [], {}, [], []
        self.on_trade = 0.5
    with pytest.raises(ConfigError, match=r"self\.on_trade = 0\.5 shadows the callback "
                                          r"on_trade\(\)"):
        run({}, flat(3), reset=reset)


def test_a_strategy_may_take_state_mode_clock_and_trades_for_its_own_variables():
    """`self.state = "long"` is the strategy's variable; the engine keeps its own state,
    and the run trades on."""
    def tick(self, ts):
        self.state, self.mode, self.clock, self.trades = "long", "fast", "wall", ["mine"]
        self.recorder, self.executor, self.dispatch = "r", "x", "d"  # once the engine's
        if self.i == 1:
            self.results[1] = call(self, "market_order", SYM, 1.0)
    r = run({}, flat(4), tick=tick)
    s = r.strategy
    assert s.state == "long" and s.trades == ["mine"]
    assert isinstance(s.engine.state, State) and len(s.engine.state.trades) == 1
    assert r.trades[0].amount == 1.0 and s.asset(SYM).balance == pytest.approx(1.0)


def test_the_engine_cannot_be_replaced_and_is_one_type_in_every_mode():
    s = type("Idle", (Strategy,), {"exchange": "test", "quote": "USD",
                                   "universe": (SYM,)})({SYM: SPOT})
    assert isinstance(s.engine, Engine) and s.engine.strategy is s
    with pytest.raises(AttributeError, match="engine-side object and cannot be replaced"):
        s.engine = None
    assert s.state is s.engine.state  # a read-only view until the strategy takes the name


class _Plain:
    def __init__(self):
        self.a = ()


def _dict_made(obj, name: str) -> bool:
    """Whether CPython holds `obj`'s attributes (`name` one of them) in a dict of their
    own: reading `obj.__dict__` (vars) makes one for good, and every attribute access
    gets slower."""
    return any(type(x) is dict and x.get(name, x) is getattr(obj, name)
               for x in gc.get_referents(obj))


@pytest.mark.skipif(sys.implementation.name != "cpython" or _dict_made(_Plain(), "a"),
                    reason="CPython's inline attribute values (3.11+) are what this pins")
def test_starting_a_run_keeps_the_strategy_attributes_fast():
    """The run's checks read the strategy's names without its __dict__: that cost every
    `self.i` and `self.x` of every tick ~50 ns (the example's tick, a third of its time)."""
    made = []

    def start(self):
        made.append(_dict_made(self, "_engine"))
    run({}, flat(4), start=start)
    assert made == [False]
