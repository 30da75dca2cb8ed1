"""The OHLCV store never serves changed candles: checksums, damage found before a write,
clear errors, and stores written by the code at fa13644 (format 1)."""

from __future__ import annotations

import asyncio
import errno
import random
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import diskkit
import numpy as np
import pytest
from zarr.storage import LocalStore

from planarpy.cli.main import main
from planarpy.core.errors import DataError
from planarpy.data.ohlcv import OHLCV, load_csv
from planarpy.data.sample import sample_path
from planarpy.data.store import CHUNK, OHLCVStore, SeriesKey

EX, SYM = "binance", "XRP/ETH"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "v1" / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def same(a: OHLCV, b: OHLCV) -> bool:
    return len(a) == len(b) and all(np.array_equal(getattr(a, c), getattr(b, c)) for c in
                                    ("timestamp", "open", "high", "low", "close", "volume"))


def series_dir(store: OHLCVStore, symbol: str = SYM, tf: str = "1m") -> Path:
    return store.root / SeriesKey(EX, symbol, tf).path


def synthetic(n: int, start: int = 1_600_000_000_000) -> OHLCV:
    close = 100 + np.arange(n) * 0.01
    return OHLCV(start + 60_000 * np.arange(n, dtype=np.int64), close, close + 1, close - 1,
                 close, np.full(n, 5.0))


# finding 3: bit flips

def test_bit_flips_are_found_never_loaded(store: OHLCVStore, xrp: OHLCV, capsys: Any,
                                          repo_root: Path, monkeypatch: Any) -> None:
    """40 single-bit flips in a price chunk: each load fails naming the column and chunk,
    `data ls --check` names it, and a backtest refuses the data (11 open prices changed to
    values like -1.06e-191, `ls --check` passed and `sim` ran on them)."""
    monkeypatch.chdir(repo_root)
    store.save(EX, "ETH/BTC", "5m", load_csv(sample_path(EX, "ETH/BTC", "5m")))
    chunk = series_dir(store, "ETH/BTC", "5m") / "g0" / "open" / "c" / "0"
    original = chunk.read_bytes()
    for bit in random.Random(11).sample(range(len(original) * 8), 40):
        data = bytearray(original)
        data[bit // 8] ^= 1 << (bit % 8)
        chunk.write_bytes(bytes(data))
        with pytest.raises(DataError, match=r"column open cannot be read \(chunk 0 \(rows "
                                             r"0..65535\) fails its checksum\)"):
            store.load(EX, "ETH/BTC", "5m")
        code, _, err = run(capsys, "data", "ls", "--check", "--data-dir", str(store.root))
        assert code == 1 and "column open chunk 0: checksum mismatch" in err
    code, _, err = run(capsys, "sim", "sma_cross", "--data-dir", str(store.root))
    assert code == 2 and "column open cannot be read" in err
    chunk.write_bytes(original)
    assert run(capsys, "data", "ls", "--check", "--data-dir", str(store.root))[0] == 0


def test_damaged_commit_is_found(store: OHLCVStore, xrp: OHLCV) -> None:
    """A hand-edited (or bit-flipped) committed count fails the series' seal."""
    store.save(EX, SYM, "1m", xrp)
    meta = series_dir(store) / "zarr.json"
    meta.write_text(meta.read_text().replace('"rows": 2469', '"rows": 2468'))
    with pytest.raises(DataError, match="its metadata fails its checksum"):
        store.load(EX, SYM, "1m")


# finding 7: the smaller cases

def test_ls_check_lists_a_series_whose_metadata_was_deleted(store: OHLCVStore, xrp: OHLCV,
                                                            capsys: Any) -> None:
    """A series whose zarr.json is gone is named as damaged (it was left out)."""
    store.save(EX, SYM, "1m", xrp)
    store.save(EX, "ETH/BTC", "1m", xrp)
    (series_dir(store) / "zarr.json").unlink()
    code, out, err = run(capsys, "data", "ls", "--check", "--data-dir", str(store.root))
    assert code == 1 and "ETH/BTC" in out
    assert "damaged: binance XRP/ETH 1m" in err and "zarr.json is missing" in err


def test_append_refuses_a_damaged_middle_chunk(store: OHLCVStore) -> None:
    """An unreadable chunk anywhere, not only the last, stops an append (it succeeded)."""
    data = synthetic(2 * CHUNK + 100)
    store.save(EX, SYM, "1m", data[:-10])
    chunk = series_dir(store) / "g0" / "close" / "c" / "1"
    chunk.write_bytes(chunk.read_bytes()[:-8])
    with pytest.raises(DataError, match=r"is corrupted: column close chunk 1: checksum mismatch; "
                                        r"nothing was written"):
        store.append(EX, SYM, "1m", data[-10:])
    assert store.info(EX, SYM, "1m").rows == len(data) - 10  # type: ignore[union-attr]
    store.save(EX, SYM, "1m", data, replace=True)  # replacing from good candles repairs it
    assert same(store.load(EX, SYM, "1m"), data)


def test_garbage_root_metadata_is_a_clear_error(store: OHLCVStore, xrp: OHLCV) -> None:
    """A damaged zarr.json above a series names the file and what to do (it gave "'utf-16-le'
    codec can't decode..."); stored series still load."""
    store.save(EX, SYM, "1m", xrp)
    (store.root / "zarr.json").write_bytes(b"\xff\xfe\x00garbage\x81")
    with pytest.raises(DataError, match=rf"cannot write binance ETH/BTC 1m in {store.root}: "
                                        rf"{store.root}/zarr.json is not valid JSON .*delete it"):
        store.save(EX, "ETH/BTC", "1m", xrp)
    assert same(store.load(EX, SYM, "1m"), xrp)


def test_sim_with_a_missing_data_dir_is_an_error(capsys: Any, repo_root: Path,
                                                 monkeypatch: Any, tmp_path: Path) -> None:
    """`sim --data-dir` names a directory that does not exist, or lacks the market, instead
    of quietly using the bundled sample."""
    monkeypatch.chdir(repo_root)
    code, _, err = run(capsys, "sim", "sma_cross", "--data-dir", "/nonexistent")
    assert code == 2
    assert err == ("planarpy: error: argument --data-dir: must be an existing directory, not "
                   "'/nonexistent' (see planarpy sim --help)\n")
    code, _, err = run(capsys, "sim", "sma_cross", "--data-dir", str(tmp_path))
    assert code == 2 and f"no stored candles for binance ETH/BTC 5m in {tmp_path}" in err


# stores written by the code at fa13644 (format 1)

@pytest.fixture
def v1(tmp_path: Path) -> OHLCVStore:
    shutil.copytree(FIXTURE, tmp_path / "data")
    return OHLCVStore(tmp_path / "data")


def fixture_candles(symbol: str, timeframe: str, rows: int) -> OHLCV:
    return load_csv(sample_path(EX, symbol, timeframe))[:rows]


def test_format_1_loads_as_it_is(v1: OHLCVStore, capsys: Any) -> None:
    """A store written by the code at fa13644 loads unchanged; `ls` notes its format."""
    assert same(v1.load(EX, "ETH/BTC", "5m"), fixture_candles("ETH/BTC", "5m", 600))
    assert same(v1.load(EX, "XRP/ETH", "1m"), fixture_candles("XRP/ETH", "1m", 300))
    code, out, err = run(capsys, "data", "ls", "--check", "--data-dir", str(v1.root))
    assert code == 0 and len(out.splitlines()) == 3
    assert "note: binance ETH/BTC 5m is in format planarpy.ohlcv/1 (no checksums)" in err
    assert f"`planarpy data upgrade --data-dir {v1.root}`" in err


def test_format_1_write_names_the_upgrade(v1: OHLCVStore) -> None:
    """Adding to a format-1 series is refused with the format and the command to run."""
    more = fixture_candles("ETH/BTC", "5m", 700)[600:]
    with pytest.raises(DataError, match=r"written in format planarpy.ohlcv/1 \(no checksums\).*"
                                        r"`planarpy data upgrade --data-dir .*`; nothing was written"):
        v1.append(EX, "ETH/BTC", "5m", more)


def test_data_upgrade_converts_every_series(v1: OHLCVStore, capsys: Any, repo_root: Path,
                                           monkeypatch: Any) -> None:
    """`planarpy data upgrade` rewrites each series with checksums, the same candles; then
    appends work, and a backtest reads the store before and after alike."""
    monkeypatch.chdir(repo_root)
    code, before, _ = run(capsys, "sim", "sma_cross", "--data-dir", str(v1.root), "--json")
    assert code == 0
    code, out, _ = run(capsys, "data", "upgrade", "--data-dir", str(v1.root))
    assert code == 0
    assert "binance ETH/BTC 5m: 600 candles converted from planarpy.ohlcv/1 to planarpy.ohlcv/2" in out
    assert "binance XRP/ETH 1m: 300 candles converted" in out
    assert same(v1.load(EX, "ETH/BTC", "5m"), fixture_candles("ETH/BTC", "5m", 600))
    assert all(e.format == "planarpy.ohlcv/2" for e in v1.series())  # type: ignore[union-attr]
    assert run(capsys, "sim", "sma_cross", "--data-dir", str(v1.root), "--json")[1] == before
    v1.append(EX, "ETH/BTC", "5m", fixture_candles("ETH/BTC", "5m", 700)[600:])
    assert same(v1.load(EX, "ETH/BTC", "5m"), fixture_candles("ETH/BTC", "5m", 700))
    assert "already in format planarpy.ohlcv/2" in run(capsys, "data", "upgrade", "--data-dir",
                                                        str(v1.root))[1]


# review r12: readers while a writer replaces a series' generation

@pytest.mark.parametrize("call", ["load", "check", "derived load"])
def test_a_reader_during_a_rewrite_reads_whole_candles(store: OHLCVStore, call: str,
                                                       monkeypatch: Any) -> None:
    """A prepend (fetch going back, `data import --replace`, `data upgrade`) writes a new
    generation and deletes the old one. A reader that had opened the old one said the
    series was corrupted (a sim run beside a fetch failed; `ls --check` reported damage);
    now it reads the new generation."""
    candles = synthetic(600)
    store.save(EX, SYM, "1m", candles[300:])
    writer = OHLCVStore(store.root)
    real = OHLCVStore._read
    done: list[Any] = []

    def read(self: OHLCVStore, series: Any, lo: Any, hi: Any) -> OHLCV:
        if self is not writer and not done:  # the writer commits a new generation now
            done.append(writer.append(EX, SYM, "1m", candles[:300]))
        return real(self, series, lo, hi)
    monkeypatch.setattr(OHLCVStore, "_read", read)
    reader = OHLCVStore(store.root)
    if call == "load":
        assert same(reader.load(EX, SYM, "1m"), candles)
    elif call == "check":
        assert reader.check(EX, SYM, "1m") == []
    else:
        got = reader.load(EX, SYM, "5m")
        assert len(got) == 119 and same(got, OHLCVStore(store.root).load(EX, SYM, "5m"))
    assert done and done[0].rewritten


# review r12: a full or read-only disk is a one-line error, and the stored candles stay

def test_a_write_failure_is_a_clear_error_and_changes_nothing(store: OHLCVStore,
                                                              monkeypatch: Any) -> None:
    """A chunk write failing with ENOSPC came out of append as a raw OSError (a traceback
    from `data import` and `fetch`); now it is a DataError naming the series and the
    cause, and the stored candles are as before; a retry once there is room completes."""
    candles = synthetic(200)
    store.save(EX, SYM, "1m", candles[:100])
    real = LocalStore.set

    async def full(self: Any, key: str, value: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(LocalStore, "set", full)
    with pytest.raises(DataError, match=r"cannot write binance XRP/ETH 1m .*: \[Errno 28\] No "
                                        r"space left on device; the stored candles are unchanged"):
        store.append(EX, SYM, "1m", candles[100:])
    monkeypatch.setattr(LocalStore, "set", real)
    assert same(store.load(EX, SYM, "1m"), candles[:100])
    store.append(EX, SYM, "1m", candles[100:])
    assert same(store.load(EX, SYM, "1m"), candles) and store.check(EX, SYM, "1m") == []


def test_data_import_on_a_real_full_disk(tmp_path: Path, capsys: Any) -> None:
    """`data import` onto a full tmpfs ends with one line and exit 2 (a 60-line traceback);
    once there is room the same command stores every candle."""
    csv = tmp_path / "eth.csv"
    candles = load_csv(sample_path(EX, "ETH/BTC", "5m"))
    csv.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        ",".join(repr(v) for v in row) + "\n" for row in candles.to_rows()))
    with diskkit.small_tmpfs(tmp_path / "mnt", "300k") as mount:
        filler = diskkit.fill(mount, 16 << 10)
        argv = ["data", "import", str(csv), "--exchange", EX, "--symbol", "ETH/BTC",
                "--timeframe", "5m", "--data-dir", str(mount / "data")]
        code, out, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, err
        assert "No space left on device; the stored candles are unchanged" in err
        filler.unlink()
        assert run(capsys, *argv)[0] == 0
        assert same(OHLCVStore(mount / "data").load(EX, "ETH/BTC", "5m"), candles)


KILLED_CREATING = """
import os, signal, sys
from pathlib import Path
from zarr.storage import _local
from planarpy.data.store import OHLCVStore
from planarpy.data.ohlcv import OHLCV
import numpy as np

real_open = _local.Path.open


def open_(self, *args, **kwargs):  # killed inside the write of the new series' metadata
    f = real_open(self, *args, **kwargs)
    if self.name.endswith(".partial") and self.parent.name == "1m":
        os.kill(os.getpid(), signal.SIGKILL)
    return f


_local.Path.open = open_
ts = 1_600_000_000_000 + 60_000 * np.arange(10, dtype=np.int64)
OHLCVStore(sys.argv[1]).save("binance", "XRP/ETH", "1m", OHLCV(ts, *[np.ones(10)] * 5))
"""


def test_a_series_whose_creation_was_killed_is_no_damage(store: OHLCVStore,
                                                         tmp_path: Path) -> None:
    """Killed (or interrupted) while zarr wrote a new series' zarr.json, the store was left
    with only zarr's temporary file there, and every later write or read called the series
    corrupted ("zarr.json is missing but candle files are there") for good. A temporary
    file holds no candles: the series is simply not stored yet."""
    script = tmp_path / "creator.py"
    script.write_text(KILLED_CREATING)
    done = subprocess.run([sys.executable, str(script), str(store.root)])
    assert done.returncode == -signal.SIGKILL
    assert [p.name.endswith(".partial") for p in series_dir(store).iterdir()] == [True]
    assert store.info(EX, SYM, "1m") is None and store.series() == []
    assert store.check(EX, SYM, "1m") == []
    candles = synthetic(50)
    store.save(EX, SYM, "1m", candles)
    assert same(store.load(EX, SYM, "1m"), candles)
    assert not list(series_dir(store).glob("*.partial"))


def test_a_failed_write_leaves_no_chunk_write_in_flight(store: OHLCVStore,
                                                        monkeypatch: Any) -> None:
    """An append across a chunk boundary writes two chunks of each column at once. When one
    fails, the other must not still be in flight: landing after a retry that wrote more
    candles into its chunk, it took committed candles back (read as missing)."""
    candles = synthetic(CHUNK + 400)
    store.save(EX, SYM, "1m", candles[:CHUNK - 100])
    real = LocalStore.set
    failing, started, landed = [True], threading.Event(), threading.Event()

    async def set_(self: Any, key: str, value: Any) -> None:
        if failing[0] and key.endswith("/open/c/0"):
            raise OSError(errno.ENOSPC, "No space left on device")
        if failing[0] and key.endswith("/open/c/1"):
            started.set()
            await asyncio.sleep(0.3)  # this write of the failing append is slow
            await real(self, key, value)
            landed.set()
            return
        await real(self, key, value)
    monkeypatch.setattr(LocalStore, "set", set_)
    with pytest.raises(DataError, match="No space left on device"):
        store.append(EX, SYM, "1m", candles[CHUNK - 100:CHUNK + 100])
    failing[0] = False
    store.append(EX, SYM, "1m", candles[CHUNK - 100:])  # more candles now
    assert not started.is_set() or landed.wait(10)
    assert same(store.load(EX, SYM, "1m"), candles)
