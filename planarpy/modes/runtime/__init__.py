"""What paper and live mode share: the engine thread, the watchers, the session lifecycle.

Both modes run the same way: an asyncio loop on its own thread does the exchange I/O and
changes state; the strategy's synchronous code runs on that loop in a greenlet that `call`
suspends (see engine.py), and `call` from any other thread blocks that thread.
"""

from .engine import EngineStopped, EngineThread, ExchangeClock
from .handle import RunHandle
from .session import Session
from .stopping import StopReport
from .watchers import Watcher

__all__ = ["EngineStopped", "EngineThread", "ExchangeClock", "RunHandle", "Session", "StopReport",
           "Watcher"]
