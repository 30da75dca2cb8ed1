"""planarpy: one trading strategy, three modes (sim, paper, live), one `call`."""

from .actions import Action, Mode, call
from .core.clock import Clock, WallClock
from .core.errors import (ConfigError, DataError, InvalidArgument, LookAheadError, PlanarError,
                          StrategyNotFound, UnknownSymbol, UnsupportedAction,
                          UnsupportedMarginMode)
from .core.instances import AssetInstance, State
from .core.market import Market
from .core.orders import (Order, OrderStatus, OrderType, PositionSide, Side, TimeInForce, Trade,
                          missing)
from .core.positions import Position
from .core.risk import RiskEvent, RiskRules, TradingState
from .data.ohlcv import OHLCV, load_csv
from .loader import find_strategy
from .modes.sim import SimConfig, SimResult, backtest
from .params import Param, ParamError
from .strategy import Strategy

__version__ = "0.1.0"

__all__ = [
    "Action", "AssetInstance", "Clock", "ConfigError", "DataError", "InvalidArgument",
    "LookAheadError", "Market", "Mode", "OHLCV", "Order", "OrderStatus", "OrderType", "Param",
    "ParamError", "PlanarError", "Position", "PositionSide", "RiskEvent", "RiskRules",
    "SimConfig", "SimResult", "Side", "State", "Strategy", "StrategyNotFound", "TimeInForce",
    "Trade", "TradingState", "UnknownSymbol", "UnsupportedAction", "UnsupportedMarginMode", "WallClock", "backtest",
    "call", "find_strategy", "load_csv", "missing", "__version__",
]
