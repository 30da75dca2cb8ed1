"""The Zarr OHLCV store: round trips, appends, overlaps, resampling and damage reports."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st

from planarpy.core.errors import DataError
from planarpy.integrity import seal
from planarpy.data.ohlcv import OHLCV, concat, resample
from planarpy.data.store import (CHUNK, OHLCVStore, SeriesKey, default_root, symbol_from_key,
                                 symbol_key)

M = 60_000
EX, SYM = "binance", "XRP/ETH"


def same(a: OHLCV, b: OHLCV) -> bool:
    return len(a) == len(b) and all(np.array_equal(getattr(a, c), getattr(b, c)) for c in
                                    ("timestamp", "open", "high", "low", "close", "volume"))


def synthetic(n: int, start: int = 1_600_000_000_000) -> OHLCV:
    rng = np.random.default_rng(n)
    close = 100 + np.cumsum(rng.normal(0, 0.1, n))
    return OHLCV(start + M * np.arange(n, dtype=np.int64), close, close + 1, close - 1, close,
                 rng.uniform(1, 10, n))


def series_dir(store: OHLCVStore, symbol: str = SYM, tf: str = "1m") -> Path:
    return store.root / SeriesKey(EX, symbol, tf).path


def set_attrs(store: OHLCVStore, sealed: bool = True, **attributes: object) -> None:
    """Change a series' committed attributes, sealed again as a faulty writer would, or not."""
    meta = series_dir(store) / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"].update(attributes)
    if sealed:
        doc["attributes"] = seal(doc["attributes"])
    meta.write_text(json.dumps(doc))


# round trips

def test_save_and_load_round_trip(store: OHLCVStore, xrp: OHLCV) -> None:
    """Saved candles load back bit for bit, and the report counts the real gaps."""
    report = store.save(EX, SYM, "1m", xrp)
    assert report.added == len(xrp) == report.rows and report.gaps
    assert same(store.load(EX, SYM, "1m"), xrp)
    info = store.info(EX, SYM, "1m")
    assert info is not None and (info.first, info.last) == (xrp.timestamp[0], xrp.timestamp[-1])


def test_load_time_range(store: OHLCVStore, xrp: OHLCV) -> None:
    """A range load returns the candles with open time in [start, stop), ISO or ms."""
    store.save(EX, SYM, "1m", xrp)
    lo, hi = int(xrp.timestamp[100]), int(xrp.timestamp[900])
    assert same(store.load(EX, SYM, "1m", lo, hi), xrp.between(lo, hi))
    day = store.load(EX, SYM, "1m", "2019-10-12", "2019-10-13")
    assert same(day, xrp.between(1570838400000, 1570924800000))
    assert len(store.load(EX, SYM, "1m", "2030-01-01")) == 0


def test_append_in_pieces_equals_one_save(store: OHLCVStore, xrp: OHLCV) -> None:
    """Appending page by page stores the same candles as one save; joins report gaps."""
    reports = [store.append(EX, SYM, "1m", xrp[i:i + 300]) for i in range(0, len(xrp), 300)]
    assert sum(r.added for r in reports) == len(xrp)
    assert sum(r.missing for r in reports) == sum(g.missing for g in store.gaps(EX, SYM, "1m"))
    assert same(store.load(EX, SYM, "1m"), xrp)


def test_capacity_grows_across_chunks(store: OHLCVStore) -> None:
    """Appends past the spare capacity grow the arrays and keep every candle."""
    data = synthetic(CHUNK + 5000)
    store.append(EX, SYM, "1m", data[:CHUNK - 10])
    store.append(EX, SYM, "1m", data[CHUNK - 10:])
    assert same(store.load(EX, SYM, "1m"), data)


def test_prepend_rewrites_atomically(store: OHLCVStore, xrp: OHLCV) -> None:
    """Candles before the stored ones are prepended as a new generation; the old is removed."""
    store.append(EX, SYM, "1m", xrp[1000:])
    report = store.append(EX, SYM, "1m", xrp[:1000])
    assert report.rewritten and report.added == 1000
    assert same(store.load(EX, SYM, "1m"), xrp)
    assert sorted(p.name for p in series_dir(store).glob("g*")) == ["g1"]


def test_save_refuses_to_overwrite_unless_replace(store: OHLCVStore, xrp: OHLCV) -> None:
    """save never replaces stored candles by accident; replace=True does it atomically."""
    store.save(EX, SYM, "1m", xrp)
    with pytest.raises(DataError, match="already holds 2469 candles.*nothing was written"):
        store.save(EX, SYM, "1m", xrp[:10])
    assert same(store.load(EX, SYM, "1m"), xrp)
    store.save(EX, SYM, "1m", xrp[:10], replace=True)
    assert same(store.load(EX, SYM, "1m"), xrp[:10])


def test_store_is_plain_zarr(store: OHLCVStore, xrp: OHLCV) -> None:
    """Any Zarr v3 reader finds the columns and the committed count."""
    store.save(EX, SYM, "1m", xrp)
    group = zarr.open_group(str(store.root), mode="r")[f"{EX}/XRP_ETH/1m"]
    rows = group.attrs["rows"]
    assert rows == len(xrp) and group.attrs["symbol"] == SYM
    assert np.array_equal(group[f"g{group.attrs['generation']}/close"][:rows], xrp.close)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing in the data dir that zarr does not know
        names = {name for name, _ in zarr.open_group(str(store.root), mode="r").members(max_depth=None)}
    assert f"{EX}/XRP_ETH/1m/g0/timestamp" in names


def test_series_lists_everything(store: OHLCVStore, xrp: OHLCV, ethbtc: OHLCV) -> None:
    """series() lists every stored market with its real symbol."""
    store.save(EX, SYM, "1m", xrp)
    store.save(EX, "ETH/BTC", "5m", ethbtc)
    store.save("binanceusdm", "XRP/USDT:USDT", "1m", xrp)
    listed = {(i.key.exchange, i.key.symbol, i.key.timeframe, i.rows) for i in store.series()}
    assert listed == {(EX, SYM, "1m", len(xrp)), (EX, "ETH/BTC", "5m", len(ethbtc)),
                      ("binanceusdm", "XRP/USDT:USDT", "1m", len(xrp))}


def test_default_root_from_env_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data dir is $PLANARPY_DATA, else user/data under the current directory."""
    monkeypatch.delenv("PLANARPY_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert OHLCVStore().root == tmp_path / "user" / "data"
    monkeypatch.setenv("PLANARPY_DATA", str(tmp_path / "elsewhere"))
    assert default_root() == tmp_path / "elsewhere" and OHLCVStore().root == default_root()


# symbols

def test_symbol_keys_are_safe_and_readable() -> None:
    """'/' and ':' map to '_' and '+'; anything else unusual is %-escaped."""
    assert symbol_key("ETH/BTC") == "ETH_BTC"
    assert symbol_key("XRP/USDT:USDT") == "XRP_USDT+USDT"
    assert symbol_key("BTC/USD:BTC-240329-50000-C") == "BTC_USD+BTC-240329-50000-C"
    assert symbol_key("A_B/C") == "A%5FB_C"
    assert symbol_key("../x") == "%2E._x"


@given(st.text(min_size=1, max_size=20).filter(lambda s: s.strip()))
def test_symbol_key_round_trips(symbol: str) -> None:
    """Every symbol maps to a safe name and back, so two symbols never share a group."""
    key = symbol_key(symbol)
    assert set(key) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._+%")
    assert not key.startswith(".")
    assert symbol_from_key(key) == symbol


# resampling

def test_load_derives_larger_timeframes(store: OHLCVStore, xrp: OHLCV) -> None:
    """5m, 1h and 1d come from stored 1m; buckets cut by the data's edges are left out."""
    store.save(EX, SYM, "1m", xrp)
    assert same(store.load(EX, SYM, "5m"), resample(xrp, "1m", "5m"))  # ends at 11:19
    assert same(store.load(EX, SYM, "5m", stop="2019-10-13T11:18"),
                resample(xrp, "1m", "5m")[:-1])  # `stop` cuts the last bucket
    hour = store.load(EX, SYM, "1h")
    assert len(hour) == 59 and hour.timestamp[0] == xrp.timestamp[0]
    day = store.load(EX, SYM, "1d")
    assert len(day) == 2 and same(day, resample(xrp, "1m", "1d")[:2])
    part = store.load(EX, SYM, "1h", "2019-10-11T05:30", "2019-10-11T09:30")
    assert part.timestamp.tolist() == [1570752000000 + h * 3_600_000 for h in (6, 7, 8)]
    with pytest.raises(DataError, match=r"no stored candles for binance XRP/ETH 1h.*stored: 1m"):
        store.load(EX, SYM, "1h", derive=False)
    assert store.can_load(EX, SYM, "1h") and store.can_load(EX, SYM, "1m")
    assert not store.can_load(EX, SYM, "30s") and not store.can_load(EX, "ETH/BTC", "1h")


def test_derived_5m_to_1h_matches_direct(store: OHLCVStore, ethbtc: OHLCV) -> None:
    """Hourly candles derived from stored 5m equal resampling the source directly."""
    store.save(EX, "ETH/BTC", "5m", ethbtc)
    hour = store.load(EX, "ETH/BTC", "1h")
    direct = resample(ethbtc, "5m", "1h")
    assert same(hour, direct.between(hour.timestamp[0], hour.timestamp[-1] + 1))
    assert len(hour) >= len(direct) - 2


def test_missing_market_message_names_it(store: OHLCVStore) -> None:
    """Loading a market that is not stored names it, the store and how to get it."""
    with pytest.raises(DataError, match=r"no stored candles for binance DOGE/ETH 1m in .*planarpy fetch"):
        store.load(EX, "DOGE/ETH", "1m")


# bad input never merges silently and never loses stored candles

@pytest.mark.parametrize("how,match", [
    ("overlap", r"overlap the stored binance XRP/ETH 1m.*nothing was written"),
    ("conflict", r"has volume .* but the stored binance XRP/ETH 1m has .*nothing was written"),
    ("fill", r"inside the stored range .* filling gaps is not supported"),
    ("unsorted", r"out-of-order timestamp"),
    ("duplicate", r"duplicate timestamp"),
    ("offgrid", r"not on the 1m grid"),
    ("empty", r"no candles to store"),
])
def test_bad_appends_change_nothing(store: OHLCVStore, xrp: OHLCV, how: str, match: str) -> None:
    """Overlaps, conflicts, gap filling, disorder and off-grid candles raise; nothing changes."""
    store.append(EX, SYM, "1m", xrp[:1500])
    part = xrp[1400:1600]
    on_overlap = "error"
    if how == "conflict":
        part = OHLCV(part.timestamp, part.open, part.high, part.low, part.close, part.volume + 1)
        on_overlap = "skip"
    elif how == "fill":
        gap = next(g for g in store.gaps(EX, SYM, "1m"))
        part = OHLCV(np.array([gap.start]), *(np.ones(1) for _ in range(5)))
        on_overlap = "skip"
    elif how == "unsorted":
        part = OHLCV(*(np.r_[c[1500:1510], c[1520:1530], c[1510:1520]] for c in
                       (xrp.timestamp, xrp.open, xrp.high, xrp.low, xrp.close, xrp.volume)))
    elif how == "duplicate":
        part = OHLCV(*(np.r_[c[1500:1510], c[1509:1520]] for c in
                       (xrp.timestamp, xrp.open, xrp.high, xrp.low, xrp.close, xrp.volume)))
    elif how == "offgrid":
        part = xrp[1500:1510]
        part = OHLCV(part.timestamp + 1000, part.open, part.high, part.low, part.close, part.volume)
    elif how == "empty":
        part = xrp[0:0]
    with pytest.raises(DataError, match=match):
        store.append(EX, SYM, "1m", part, on_overlap=on_overlap)  # type: ignore[arg-type]
    assert same(store.load(EX, SYM, "1m"), xrp[:1500])


def test_identical_overlap_is_skipped_and_counted(store: OHLCVStore, xrp: OHLCV) -> None:
    """With on_overlap='skip', candles already stored identically are skipped and reported."""
    store.append(EX, SYM, "1m", xrp[:1500])
    report = store.append(EX, SYM, "1m", xrp[1000:], on_overlap="skip")
    assert (report.skipped, report.added) == (500, len(xrp) - 1500)
    assert "500 already stored skipped" in str(report)
    assert same(store.load(EX, SYM, "1m"), xrp)


def test_bad_first_batch_creates_nothing(store: OHLCVStore, xrp: OHLCV) -> None:
    """Refused candles for a new market leave no empty series behind."""
    with pytest.raises(DataError, match="no candles to store"):
        store.append(EX, SYM, "1m", xrp[0:0])
    with pytest.raises(DataError, match="duplicate timestamp"):
        store.append(EX, SYM, "1m", concat(xrp[:5], xrp[4:6]))
    assert store.series() == [] and store.info(EX, SYM, "1m") is None


def test_bad_names_are_refused(store: OHLCVStore, xrp: OHLCV) -> None:
    """Exchange ids that could escape the data dir and bad timeframes are refused."""
    with pytest.raises(DataError, match="exchange id"):
        store.save("../evil", SYM, "1m", xrp)
    with pytest.raises(DataError, match="timeframe '1x'"):
        store.save(EX, SYM, "1x", xrp)
    assert not store.root.exists() or not any(store.root.rglob("*.json"))


# damage: a clear message naming the store path and the market

def damaged(store: OHLCVStore, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        store.load(EX, SYM, "1m")
    message = str(info.value)
    assert "binance XRP/ETH 1m" in message and str(series_dir(store)) in message


def test_deleted_chunk_is_reported(store: OHLCVStore, xrp: OHLCV) -> None:
    """A deleted data chunk reads as missing rows, not as zeros."""
    store.save(EX, SYM, "1m", xrp)
    (series_dir(store) / "g0" / "close" / "c" / "0").unlink()
    damaged(store, r"is corrupted: close of rows 0 to 2468 is missing")


def test_deleted_timestamp_chunk_is_reported(store: OHLCVStore, xrp: OHLCV) -> None:
    """A deleted timestamp chunk is reported too."""
    store.save(EX, SYM, "1m", xrp)
    (series_dir(store) / "g0" / "timestamp" / "c" / "0").unlink()
    damaged(store, r"is corrupted: timestamps of rows 0 to 2468 are missing")


def test_garbled_chunk_is_reported(store: OHLCVStore, xrp: OHLCV) -> None:
    """A chunk that does not decode is reported with the column."""
    store.save(EX, SYM, "1m", xrp)
    (series_dir(store) / "g0" / "volume" / "c" / "0").write_bytes(b"not zstd at all")
    damaged(store, r"is corrupted: column volume cannot be read")


@pytest.mark.parametrize("attributes,match", [
    ({"rows": 10 ** 6}, r"1000000 candles committed but column timestamp holds only 65536"),
    ({"rows": 3000}, r"timestamps of rows 2469 to 2999 are missing"),
    ({"rows": 100}, r"committed range .* does not match the stored timestamps"),
    ({"rows": "many"}, r"bad committed state rows='many'"),
    ({"rows": -1}, r"bad committed state"),
    ({"generation": 7}, r"generation g7 cannot be opened"),
    ({"format": "other"}, r"is not a planarpy OHLCV series"),
])
def test_bad_committed_state_is_reported(store: OHLCVStore, xrp: OHLCV, attributes: dict,
                                         match: str) -> None:
    """A committed count or generation that does not fit the arrays is reported, not trusted."""
    store.save(EX, SYM, "1m", xrp)
    set_attrs(store, **attributes)
    damaged(store, match)


def test_garbled_metadata_is_reported(store: OHLCVStore, xrp: OHLCV) -> None:
    """A series whose zarr.json is not JSON is reported with its path."""
    store.save(EX, SYM, "1m", xrp)
    (series_dir(store) / "zarr.json").write_text("{half a file")
    damaged(store, r"is corrupted: its metadata cannot be read")
    with pytest.raises(DataError, match="metadata cannot be read"):
        store.append(EX, SYM, "1m", synthetic(3, int(xrp.timestamp[-1]) + M))


def test_missing_metadata_is_reported_not_overwritten(store: OHLCVStore, xrp: OHLCV) -> None:
    """Candle files without their zarr.json are reported; a writer does not start over."""
    store.save(EX, SYM, "1m", xrp)
    (series_dir(store) / "zarr.json").unlink()
    damaged(store, r"zarr.json is missing but candle files are there")
    with pytest.raises(DataError, match="zarr.json is missing"):
        store.save(EX, SYM, "1m", xrp[:10])
    assert (series_dir(store) / "g0" / "close" / "c" / "0").is_file()


def test_listing_reports_damage_and_goes_on(store: OHLCVStore, xrp: OHLCV,
                                            ethbtc: OHLCV) -> None:
    """series() returns the damaged series as its error and still lists the others."""
    store.save(EX, SYM, "1m", xrp)
    store.save(EX, "ETH/BTC", "5m", ethbtc)
    set_attrs(store, rows="x")
    entries = store.series()
    assert len(entries) == 2
    assert sum(isinstance(e, DataError) for e in entries) == 1


# crashes

def test_uncommitted_rows_are_ignored_then_overwritten(store: OHLCVStore, xrp: OHLCV) -> None:
    """A writer killed after its data but before its commit leaves the committed rows as
    they were; the next append overwrites the half-written rows."""
    store.append(EX, SYM, "1m", xrp[:1000])
    group = zarr.open_group(str(series_dir(store)), mode="r+")
    junk = synthetic(500, int(xrp.timestamp[999]) + M)
    for c in ("timestamp", "open", "high", "low", "close", "volume"):
        group[f"g0/{c}"][1000:1500] = getattr(junk, c)
    (series_dir(store) / "g0" / "close" / "c" / "0.abc.partial").write_bytes(b"x")
    assert same(store.load(EX, SYM, "1m"), xrp[:1000])
    store.append(EX, SYM, "1m", xrp[1000:])
    assert same(store.load(EX, SYM, "1m"), xrp)
    assert not list(series_dir(store).rglob("*.partial"))


def test_uncommitted_generation_is_ignored_then_dropped(store: OHLCVStore, xrp: OHLCV) -> None:
    """A rewrite killed before its commit leaves the old generation in force."""
    store.save(EX, SYM, "1m", xrp[:1000])
    group = zarr.open_group(str(series_dir(store)), mode="r+")
    group.create_array("g1/close", shape=(10,), dtype="float64")
    assert same(store.load(EX, SYM, "1m"), xrp[:1000])
    store.append(EX, SYM, "1m", xrp[1000:])
    assert same(store.load(EX, SYM, "1m"), xrp)
    assert sorted(p.name for p in series_dir(store).glob("g*")) == ["g0"]


@pytest.mark.skipif(sys.platform == "win32", reason="advisory locks are POSIX only")
def test_second_writer_is_refused(store: OHLCVStore, xrp: OHLCV) -> None:
    """Two writers never interleave on one series: the second gets a clear error."""
    import fcntl

    store.save(EX, SYM, "1m", xrp[:100])
    fd = os.open(series_dir(store), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(DataError, match="being written by another process"):
            store.append(EX, SYM, "1m", xrp[100:])
        assert len(store.load(EX, SYM, "1m")) == 100  # readers are not blocked
    finally:
        os.close(fd)
    store.append(EX, SYM, "1m", xrp[100:])


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from planarpy.data.ohlcv import OHLCV
    from planarpy.data.store import OHLCVStore
    root, batch, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n = np.arange(total, dtype=np.int64)
    data = OHLCV(1_600_000_000_000 + 60_000 * n, n + 1.0, n + 2.0, n + 0.5, n + 1.5, n + 3.0)
    store = OHLCVStore(root)
    info = store.info("binance", "XRP/ETH", "1m")
    done = info.rows if info else 0
    print("ready", flush=True)
    for i in range(done, total, batch):
        store.append("binance", "XRP/ETH", "1m", data[i:i + batch])
""")


@pytest.mark.slow
def test_sigkill_mid_append_loses_nothing(tmp_path: Path) -> None:
    """Killed at random moments, a writer leaves whole committed batches; a restart resumes
    and ends with every candle exactly once."""
    root, batch, total = tmp_path / "data", 4_000, 120_000
    rng = random.Random(5)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(batch), str(total)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        try:
            proc.wait(rng.uniform(0.05, 0.2))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        info = OHLCVStore(root).info("binance", "XRP/ETH", "1m")
        if info is not None and info.rows:
            got = OHLCVStore(root).load("binance", "XRP/ETH", "1m")
            assert info.rows % batch == 0 or info.rows == total
            assert np.array_equal(got.open, np.arange(info.rows) + 1.0)
    subprocess.run([sys.executable, "-c", WRITER, str(root), str(batch), str(total)],
                   check=True, capture_output=True)
    got = OHLCVStore(root).load("binance", "XRP/ETH", "1m")
    assert np.array_equal(got.close, np.arange(total) + 1.5)


def test_append_refuses_a_damaged_last_chunk(store: OHLCVStore, xrp: OHLCV) -> None:
    """Appending would rewrite the last chunk with its holes, so it is refused; files stay."""
    store.save(EX, SYM, "1m", xrp[:1000])
    chunk = series_dir(store) / "g0" / "low" / "c" / "0"
    chunk.unlink()
    with pytest.raises(DataError, match=r"binance XRP/ETH 1m \(store .*\) is corrupted: column low "
                                        r"chunk 0: missing; nothing was written"):
        store.append(EX, SYM, "1m", xrp[1000:])
    assert not chunk.exists()
    assert store.info(EX, SYM, "1m").rows == 1000  # type: ignore[union-attr]
