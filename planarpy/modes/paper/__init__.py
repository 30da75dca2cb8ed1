"""Paper mode: live market data through ccxt.pro, fills simulated by planarpy.

Importing it registers its `call` handlers.
"""

from . import handlers as _handlers  # noqa: F401  (registers the handlers)
from .run import PaperRun, paper_run, start_paper
from .session import PaperSession

__all__ = ["PaperRun", "PaperSession", "paper_run", "start_paper"]
