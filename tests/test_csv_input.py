import gzip

import numpy as np
import pytest

from planarpy import DataError, load_csv
from planarpy.data.ohlcv import align, timeframe_ms


def write(tmp_path, text, name="c.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_missing_column_names_the_file_and_column(tmp_path):
    """A CSV without volume says which column is missing and what it found."""
    p = write(tmp_path, "timestamp,open,high,low,close\n1,1,1,1,1\n")
    with pytest.raises(DataError, match=r"c.csv: missing column\(s\) volume; expected .* found "
                                        r"timestamp,open,high,low,close"):
        load_csv(p)


def test_unsorted_and_duplicate_timestamps(tmp_path):
    """Out-of-order and repeated timestamps are refused with the row number."""
    head = "timestamp,open,high,low,close,volume\n"
    p = write(tmp_path, head + "1600000060000,1,1,1,1,1\n1600000000000,1,1,1,1,1\n")
    with pytest.raises(DataError, match="out-of-order timestamp 1600000000000 at row 2"):
        load_csv(p)
    p = write(tmp_path, head + "1600000000000,1,1,1,1,1\n1600000000000,1,1,1,1,1\n", "d.csv")
    with pytest.raises(DataError, match="duplicate timestamp 1600000000000 at row 2"):
        load_csv(p)


def test_bad_row_names_the_line(tmp_path):
    """A non-numeric cell names file and line."""
    p = write(tmp_path, "timestamp,open,high,low,close,volume\n1600000000000,1,x,1,1,1\n")
    with pytest.raises(DataError, match=r"c.csv:2: bad row"):
        load_csv(p)


def test_high_below_low_is_refused(tmp_path):
    """A candle whose high/low do not contain open and close is bad data."""
    p = write(tmp_path, "timestamp,open,high,low,close,volume\n1600000000000,2,1,1,1,1\n")
    with pytest.raises(DataError, match="high/low that do not contain"):
        load_csv(p)


def test_gzip_and_seconds_and_column_order(tmp_path):
    """Gzipped files, columns in any order and second timestamps all load."""
    p = tmp_path / "x.csv.gz"
    p.write_bytes(gzip.compress(b"volume,close,low,high,open,timestamp\n5,2,1,3,2,1600000000\n"))
    o = load_csv(p)
    assert o.timestamp.tolist() == [1_600_000_000_000] and o.high.tolist() == [3.0]


def test_align_fills_gaps_with_flat_zero_volume_candles():
    """Missing minutes become flat candles at the last close with no volume."""
    from planarpy import OHLCV
    ts = np.array([0, 60_000, 180_000], dtype=np.int64)
    o = OHLCV(ts, np.array([1.0, 2, 4]), np.array([1.0, 2, 4]), np.array([1.0, 2, 4]),
              np.array([1.5, 2.5, 4.5]), np.array([10.0, 20, 40]))
    timeline, out = align({"a": o}, "1m")
    a = out["a"]
    assert timeline.tolist() == [0, 60_000, 120_000, 180_000]
    assert a.close.tolist() == [1.5, 2.5, 2.5, 4.5] and a.volume.tolist() == [10, 20, 0, 40]
    assert a.open[2] == a.high[2] == a.low[2] == 2.5


def test_bad_timeframe():
    """A timeframe that is not like 5m is refused."""
    with pytest.raises(DataError, match="timeframe '5 minutes' is not of the form"):
        timeframe_ms("5 minutes")
