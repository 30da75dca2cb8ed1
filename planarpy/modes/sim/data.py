"""What data a backtest used: where each market's candles came from, and the gaps."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import attrs
import numpy as np

from ...data.ohlcv import OHLCV, iso
from ...data.sources import DataSource


@attrs.frozen(slots=True)
class DataUsed:
    """The candles of a backtest: each market's source, the gap policy ("fill" or
    "skip", see SimConfig.gaps), per market how many of the steps ticked had no candle of
    it (filled in flat), and how many steps of the timeframe had no candle of any market
    and were stepped over ("skip")."""

    sources: tuple[DataSource, ...] = ()
    gaps: str = "fill"
    filled: Mapping[str, int] = attrs.field(factory=dict)
    skipped: int = 0

    @classmethod
    def of(cls, sources: list[DataSource], gaps: str, series: Mapping[str, OHLCV],
           timeline: np.ndarray, tf: int) -> "DataUsed":
        steps = (int(timeline[-1]) - int(timeline[0])) // tf + 1 if len(timeline) else 0
        return cls(tuple(sources), gaps,
                   {sym: len(timeline) - len(o) for sym, o in series.items()},
                   steps - len(timeline))

    def rows(self, date: Callable[[int | None], str] = iso) -> list[tuple[str, str]]:
        """The summary's lines: one per market's source, then the gaps."""
        rows = [("data" if k == 0 else "", s.describe(date))
                for k, s in enumerate(self.sources)]
        return rows + [("gaps", self.describe_gaps())]

    def describe_gaps(self) -> str:
        filled = [f"{n} of {sym} filled in with flat candles" for sym, n in self.filled.items()
                  if n]
        if self.gaps == "skip":
            parts = [f"{self.skipped} missing candle{'s' if self.skipped != 1 else ''} "
                     "skipped"] if self.skipped else []
            parts += [f"{f} (another market traded then)" for f in filled]
        else:
            parts = filled
        return f"{'; '.join(parts) or 'no candle missing'} (policy {self.gaps})"

    def to_dict(self) -> dict[str, Any]:
        return {"sources": [s.to_dict() for s in self.sources], "gaps": self.gaps,
                "filled": dict(self.filled), "skipped": self.skipped}
