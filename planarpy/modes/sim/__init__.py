"""Sim mode: backtests on candles, through the order pipeline (`planarpy.actions.pipeline`)."""

from .config import SimConfig
from .results import SimResult
from .run import backtest

__all__ = ["SimConfig", "SimResult", "backtest"]
