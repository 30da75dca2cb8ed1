"""Paper mode: live market data through ccxt.pro, fills simulated by planarpy
(`start_paper` gives the run its `call` table)."""

from .run import PaperRun, paper_run, start_paper
from .session import PaperSession

__all__ = ["PaperRun", "PaperSession", "paper_run", "start_paper"]
