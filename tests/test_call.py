import pytest

from planarpy import Mode, UnsupportedAction, call
from planarpy.actions import Action, supported_actions

from simkit import SPOT


class Fake:
    mode = Mode.SIM


def test_unknown_action_names_the_vocabulary():
    """A misspelt action raises at once, listing every action."""
    with pytest.raises(UnsupportedAction, match="unknown action 'market'; actions are: market_order, "
                                               "limit_order, cancel_orders"):
        call(Fake(), "market", None, 1.0)


def test_action_missing_in_a_mode_names_what_it_supports(monkeypatch):
    """A (mode, action) pair with no handler raises naming the mode's actions."""
    from planarpy import actions

    class Paper:
        mode = Mode.PAPER
    handlers = dict(actions._HANDLERS)
    del handlers[(Mode.PAPER, Action.MARKET_ORDER)]
    monkeypatch.setattr(actions, "_HANDLERS", handlers)
    with pytest.raises(UnsupportedAction, match="paper mode does not support 'market_order'; "
                                                "it supports: limit_order"):
        call(Paper(), Action.MARKET_ORDER, None, 1.0)


@pytest.mark.parametrize("mode", list(Mode))
def test_every_mode_supports_the_whole_vocabulary(mode):
    """Sim, paper and live handle every action of DESIGN section 2."""
    import planarpy.modes.live  # noqa: F401  (registers its handlers)
    import planarpy.modes.paper  # noqa: F401
    assert sorted(supported_actions(mode)) == sorted(a.value for a in Action)


def test_wrong_arguments_raise_type_error():
    """A call with an argument the handler does not take raises TypeError naming it."""
    from simkit import flat, run
    with pytest.raises(TypeError, match="unexpected keyword argument 'size'"):
        run({1: lambda s: call(s, "market_order", SPOT.symbol, size=1.0)}, flat(4))
