"""Parameter optimisation: grid, random, TPE and NSGA-II searches over a strategy's
`Param`s, each trial one backtest, resumable in Optuna storage, on local worker processes
or on Ray, with train/test and walk-forward out-of-sample reports.

    from planarpy.optimize import optimize
    result = optimize("sma_cross", method="grid", ranges={"fast": "5:20:5"}, params={...})
    result.best_params, result.table(), result.report(), result.frame()
"""

from .api import optimize
from .objectives import STATS, Constraint, Objective
from .result import FoldResult, OptimizeResult
from .space import Dim, Space, build_space
from .splits import Fold, Window
from .storage import StorageError
from .work import TrialError

__all__ = ["Constraint", "Dim", "Fold", "FoldResult", "Objective", "OptimizeResult", "STATS",
           "Space", "StorageError", "TrialError", "Window", "build_space", "optimize"]
