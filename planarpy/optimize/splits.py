"""Train/test and walk-forward splits of the candles an optimisation runs on.

Walk-forward with K folds and a train share R: the out-of-sample (test) windows are K
equal, consecutive pieces at the end of the data; each fold's in-sample (train) window is
the stretch just before its test window, of length R/(1-R) test windows (rolling), or
everything from the start (anchored). A train/test split is the one-fold case. Candles
before a window still warm the indicators up; none after it is seen.
"""

from __future__ import annotations

import attrs
import numpy as np

from ..core.errors import ConfigError


@attrs.frozen(slots=True)
class Window:
    """Ticks from `start` to before `stop` (epoch ms; None: the data's own end)."""

    start: int | None
    stop: int | None

    def __str__(self) -> str:
        """'2024-01-01T00:00 to 2024-02-01T00:00' ('start' or 'end' where unbounded)."""
        from ..data.ohlcv import iso
        return f"{iso(self.start) if self.start is not None else 'start'} to " \
               f"{iso(self.stop) if self.stop is not None else 'end'}"


@attrs.frozen(slots=True)
class Fold:
    index: int
    train: Window
    test: Window | None


def whole(start: int | None, stop: int | None) -> list[Fold]:
    """No split: one fold, in-sample only."""
    return [Fold(0, Window(start, stop), None)]


def walk_forward(timeline: np.ndarray, first: int, folds: int, train: float,
                 anchored: bool = False) -> list[Fold]:
    """`folds` folds over the candles `timeline[first:]` (open times, epoch ms)."""
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 1:
        raise ConfigError(f"walk-forward folds must be an int >= 1, got {folds!r}")
    if not isinstance(train, (int, float)) or not 0 < train < 1:
        raise ConfigError(f"the train share must be between 0 and 1 (exclusive), got {train!r}")
    n = len(timeline)
    total = n - first
    test_len = int(total / (train / (1 - train) + folds))
    train_len = total - folds * test_len
    if test_len < 2 or train_len < 2:
        raise ConfigError(f"{total} candles are too few for {folds} fold(s) with a train share "
                          f"of {train}: each window needs at least 2 candles")
    out = []
    for k in range(folds):
        lo = first + k * test_len
        mid = lo + train_len
        hi = mid + test_len
        at = lambda i: int(timeline[i]) if i < n else None  # noqa: E731
        out.append(Fold(k, Window(at(first if anchored else lo), at(mid)),
                        Window(at(mid), at(hi))))
    return out
