"""Market data: OHLCV containers, CSV import, the bundled sample data (and the Zarr store)."""

from .ohlcv import OHLCV, align, load_csv, timeframe_ms

__all__ = ["OHLCV", "align", "load_csv", "timeframe_ms"]
