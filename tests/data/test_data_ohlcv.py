"""Helpers of planarpy.data.ohlcv: gaps, grids, times, joining."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from planarpy.core.errors import DataError
from planarpy.data.ohlcv import (OHLCV, Gap, check_grid, check_spacing, concat, empty,
                                 find_gaps, iso, load_csv, to_ms)

M = 60_000


def candles(ts: list[int]) -> OHLCV:
    n = len(ts)
    return OHLCV(np.asarray(ts, np.int64), np.ones(n), np.full(n, 2.0), np.full(n, 0.5),
                 np.ones(n), np.ones(n))


def test_find_gaps_counts_missing_candles() -> None:
    """A jump of k timeframes is one gap of k-1 candles starting one step after."""
    assert find_gaps(np.array([0, M, 4 * M, 5 * M, 7 * M]), "1m") == [
        Gap(2 * M, 4 * M, 2), Gap(6 * M, 7 * M, 1)]
    assert find_gaps(np.array([0]), "1m") == []


def test_real_sample_gaps(xrp: OHLCV) -> None:
    """The XRP/ETH sample has gaps; their missing counts add up to the whole range."""
    gaps = find_gaps(xrp.timestamp, "1m")
    span = (int(xrp.timestamp[-1]) - int(xrp.timestamp[0])) // M + 1
    assert gaps and len(xrp) + sum(g.missing for g in gaps) == span


def test_check_grid_anchors_on_origin() -> None:
    """Off-grid candles are refused with the row named; the anchor need not be the epoch."""
    week = 7 * 86_400_000
    monday = 4 * 86_400_000  # 1970-01-05
    check_grid(candles([monday, monday + week]), "1w", "weeks")
    with pytest.raises(DataError, match=r"x.csv: timestamp 90000 at row 2 is not on the 1m"):
        check_grid(candles([0, 90_000]), "1m", "x.csv")
    with pytest.raises(DataError, match="not on the 1m"):
        check_grid(candles([60_000]), "1m", "x", origin=30_000)


def test_check_spacing_catches_mislabelled_timeframe() -> None:
    """Candles always 5m apart are not 1m candles."""
    five = candles([i * 5 * M for i in range(20)])
    check_spacing(five, "5m", "f")
    with pytest.raises(DataError, match="never one 1m"):
        check_spacing(five, "1m", "f")


@pytest.mark.parametrize("value,expected", [
    ("2019-10-11", 1570752000000),
    ("2019-10-11T00:01Z", 1570752060000),
    ("2019-10-11T02:00+02:00", 1570752000000),
    ("1570752000000", 1570752000000),
    (1570752000000, 1570752000000),
    (datetime(2019, 10, 11), 1570752000000),
    (datetime(2019, 10, 11, tzinfo=timezone.utc), 1570752000000),
])
def test_to_ms(value: object, expected: int) -> None:
    """Dates, ISO times (naive means UTC) and epoch ms all become epoch ms."""
    assert to_ms(value) == expected  # type: ignore[arg-type]


def test_to_ms_rejects_nonsense() -> None:
    """A bad time names itself and the accepted forms."""
    with pytest.raises(DataError, match="'yesterday' is neither epoch milliseconds nor an ISO"):
        to_ms("yesterday")


def test_iso_and_concat() -> None:
    """iso is short UTC; concat keeps order and columns."""
    assert iso(1570752000000) == "2019-10-11T00:00Z"
    assert iso(None) == "-"
    both = concat(candles([0, M]), candles([2 * M]))
    assert both.timestamp.tolist() == [0, M, 2 * M] and len(empty()) == 0


def test_load_csv_bad_row_names_file_and_line(tmp_path) -> None:
    """A CSV with a bad row names the file and line."""
    p = tmp_path / "bad.csv"
    p.write_text("timestamp,open,high,low,close,volume\n60000,1,2,0.5,1,3\n120000,1,x,0.5,1,3\n")
    with pytest.raises(DataError, match=r"bad.csv:3: bad row"):
        load_csv(p)
