"""Sim mode: backtests on candles. Importing it registers its `call` handlers."""

from . import handlers as _handlers  # noqa: F401  (registers the handlers)
from .config import SimConfig
from .results import SimResult
from .run import backtest

__all__ = ["SimConfig", "SimResult", "backtest"]
