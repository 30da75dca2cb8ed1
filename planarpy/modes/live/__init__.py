"""Live mode: a real exchange through ccxt (`executor.py` is its side of the order pipeline)."""

from ..runtime import EngineStopped
from .run import LiveRun, live_run, start_live

__all__ = ["EngineStopped", "LiveRun", "live_run", "start_live"]
