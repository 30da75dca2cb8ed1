"""Live mode: a real exchange through ccxt (`start_live` gives the run its `call` table)."""

from ..runtime import EngineStopped
from .run import LiveRun, live_run, start_live

__all__ = ["EngineStopped", "LiveRun", "live_run", "start_live"]
