"""The action vocabulary and `call`.

`call(s, action, ...)` parses its arguments once into a request (`requests.py`) and hands
it to the handler of the action in the table the strategy's mode attached to its engine
when its run started (`s.engine.dispatch`: `pipeline.HANDLERS` in every mode), never by
importing a module. Strategies never ask which mode they run in.
"""

from __future__ import annotations

import enum
import inspect
from typing import Any, Callable, Mapping

from ..core.errors import InvalidArgument, UnsupportedAction
from . import conditional, requests


class Mode(str, enum.Enum):
    SIM = "sim"
    PAPER = "paper"
    LIVE = "live"


class Action(str, enum.Enum):
    MARKET_ORDER = "market_order"
    LIMIT_ORDER = "limit_order"
    CANCEL_ORDERS = "cancel_orders"
    UPDATE_LEVERAGE = "update_leverage"
    CLOSE_POSITION = "close_position"
    WATCH_OHLCV = "watch_ohlcv"
    RESET_TRADING_STATE = "reset_trading_state"
    STOP_ORDER = "stop_order"
    TAKE_PROFIT_ORDER = "take_profit_order"
    TRAILING_STOP_ORDER = "trailing_stop_order"
    OCO_ORDER = "oco_order"
    BRACKET_ORDER = "bracket_order"
    AMEND_STOP = "amend_stop"


Handler = Callable[[Any, Any], Any]
Dispatch = Mapping[Action, Handler]

# each action's parser: the action's signature, returning its request
PARSERS: dict[Action, Callable[..., Any]] = {
    Action.MARKET_ORDER: requests.market_order,
    Action.LIMIT_ORDER: requests.limit_order,
    Action.CANCEL_ORDERS: requests.cancel_orders,
    Action.UPDATE_LEVERAGE: requests.update_leverage,
    Action.CLOSE_POSITION: requests.close_position,
    Action.WATCH_OHLCV: requests.watch_ohlcv,
    Action.RESET_TRADING_STATE: requests.reset_trading_state,
    Action.STOP_ORDER: conditional.stop_order,
    Action.TAKE_PROFIT_ORDER: conditional.take_profit_order,
    Action.TRAILING_STOP_ORDER: conditional.trailing_stop_order,
    Action.OCO_ORDER: conditional.oco_order,
    Action.BRACKET_ORDER: conditional.bracket_order,
    Action.AMEND_STOP: conditional.amend_stop,
}
_ACTIONS: dict[Any, Action] = {**{a.value: a for a in Action}, **{a: a for a in Action}}


def supported_actions(dispatch: Dispatch) -> list[str]:
    """The actions a dispatch table handles, in the vocabulary's order."""
    return [a.value for a in Action if a in dispatch]


def call(s: Any, action: Action | str, *args: Any, **kwargs: Any) -> Any:
    """Ask the strategy's mode to perform `action`.

    Orders return a Trade, `missing` (accepted, no fill yet) or None (refused: an
    `on_order_error` or `on_risk` callback says why). Other actions return a bool. An
    unknown action, an action the mode does not support, or a wrong argument raises
    (UnsupportedAction, InvalidArgument) naming what is allowed.
    """
    try:
        act = _ACTIONS[action]
    except (KeyError, TypeError):
        raise UnsupportedAction(f"unknown action {action!r}; actions are: "
                                f"{', '.join(a.value for a in Action)}") from None
    try:
        engine = s._engine  # Strategy.engine's own slot: the property costs a call per order
    except AttributeError:
        engine = s.engine
    handler = engine.dispatch.get(act)
    if handler is None:
        raise _unsupported(engine, act)
    parser = PARSERS[act]
    try:
        request = parser(engine, *args, **kwargs)
    except InvalidArgument:
        raise
    except TypeError as e:  # a missing or unknown argument: say what the action takes
        error = _signature_error(act, parser, engine, args, kwargs, e)
        if error is None:
            raise
        raise error from None
    return handler(engine, request)


def _unsupported(engine: Any, act: Action) -> UnsupportedAction:
    if not engine.dispatch:
        return UnsupportedAction(f"{engine.name} is not running: call() works from its "
                                 "callbacks during backtest(), start_paper() or start_live()")
    return UnsupportedAction(f"{engine.mode.value} mode does not support {act.value!r}; it "
                             f"supports: {', '.join(supported_actions(engine.dispatch))}")


def _signature_error(act: Action, parser: Callable[..., Any], engine: Any,
                     args: tuple[Any, ...], kwargs: dict[str, Any],
                     e: TypeError) -> InvalidArgument | None:
    """InvalidArgument if the arguments do not fit the action's signature, else None."""
    sig = inspect.signature(parser)
    try:
        sig.bind(engine, *args, **kwargs)
    except TypeError:
        params = [p.replace(annotation=p.empty) for p in list(sig.parameters.values())[1:]]
        takes = sig.replace(parameters=params, return_annotation=sig.empty)
        what = str(e).split(") ", 1)[-1]  # "market_order() got an ...": the "got an ..."
        return InvalidArgument(f"{act.value}: {what}; it takes {takes}")
    return None


__all__ = ["Action", "Dispatch", "Handler", "Mode", "call", "supported_actions"]
