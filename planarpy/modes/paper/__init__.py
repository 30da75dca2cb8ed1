"""Paper mode: live market data through ccxt.pro, fills simulated by planarpy
(`executor.py` is its side of the order pipeline)."""

from .run import PaperRun, paper_run, start_paper
from .session import PaperSession

__all__ = ["PaperRun", "PaperSession", "paper_run", "start_paper"]
