"""Live mode: a real exchange through ccxt. Importing it registers its `call` handlers."""

from . import handlers as _handlers  # noqa: F401  (registers the handlers)
from ..runtime import EngineStopped
from .run import LiveRun, live_run, start_live

__all__ = ["EngineStopped", "LiveRun", "live_run", "start_live"]
