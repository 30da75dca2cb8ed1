"""The OHLCV store never serves changed candles: checksums, damage found before a write,
clear errors, and stores written by the code at fa13644 (format 1)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

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
