"""An OHLCV import or fetch on a really full disk (a small tmpfs; root only): one line
saying so, the stored candles as they were, and the same command completing once there
is room (it was a raw OSError traceback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from planarpy.cli.main import main
from planarpy.data.ohlcv import OHLCV
from planarpy.data.store import OHLCVStore

from diskkit import fill, small_tmpfs


def write_csv(path: Path, o: OHLCV) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [",".join(repr(float(x)) if i else str(int(x)) for i, x in enumerate(row))
              for row in o.to_rows()]
    path.write_text("\n".join(lines) + "\n")
    return path


def noisy(n: int, t0: int) -> OHLCV:
    """`n` 1m candles of random prices (they compress badly, so they take room)."""
    rng = np.random.default_rng(7)
    close = 100 * np.exp(0.001 * rng.standard_normal(n).cumsum())
    ts = t0 + 60_000 * np.arange(n, dtype=np.int64)
    return OHLCV(ts, close, close + 1, close - 1, close, rng.random(n) * 1000)


def test_import_on_a_full_disk_is_one_line_and_keeps_the_store(tmp_path: Path, capsys: Any):
    """Importing more candles than the disk holds fails with `No space left on device`,
    naming the store; the committed candles read back unchanged; after freeing space the
    same import succeeds."""
    with small_tmpfs(tmp_path / "mnt", "32m") as mount:
        data = mount / "data"
        first = noisy(2000, 1_700_000_000_000 - 1_700_000_000_000 % 60_000)
        OHLCVStore(data).save("binance", "BTC/USDT", "1m", first)
        more = noisy(200_000, int(first.timestamp[-1]) + 60_000)
        csv = write_csv(tmp_path / "more.csv", more)  # outside the tmpfs
        filler = fill(mount, 256 * 1024)
        code = main(["data", "import", str(csv), "--exchange", "binance", "--symbol",
                     "BTC/USDT", "--timeframe", "1m", "--data-dir", str(data)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert f"cannot write binance BTC/USDT 1m in {data}:" in err
        assert "No space left on device" in err and "stored candles are unchanged" in err
        back = OHLCVStore(data).load("binance", "BTC/USDT", "1m")
        assert np.array_equal(back.timestamp, first.timestamp)
        assert np.array_equal(back.close, first.close)
        assert OHLCVStore(data).check("binance", "BTC/USDT", "1m") == []
        filler.unlink()
        assert main(["data", "import", str(csv), "--exchange", "binance", "--symbol",
                     "BTC/USDT", "--timeframe", "1m", "--data-dir", str(data)]) == 0
        assert "200000 candles added" in capsys.readouterr().out
        assert len(OHLCVStore(data).load("binance", "BTC/USDT", "1m")) == 202_000


def test_fetch_on_a_full_disk_keeps_the_pages_stored_before(server: Any, tmp_path: Path,
                                                            monkeypatch: Any, capsys: Any):
    """The disk fills up at the store's third write: `fetch` says so in one line, the two
    pages committed before are kept and named, and running it again resumes."""
    import errno

    from planarpy.data import store as store_module
    real = store_module.OHLCVStore.append
    calls = []

    def append(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)
    monkeypatch.setattr(store_module.OHLCVStore, "append", append)
    args = ["fetch", "binance", "XRP/ETH", "1m", "--since", "0", "--limit", "500",
            "--data-dir", str(tmp_path), "--exchange-url", server.url, "--no-rate-limit"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot write to the data store {tmp_path}: No space left on device" in err
    assert "the 1000 candles stored before this are kept" in err
    assert OHLCVStore(tmp_path).info("binance", "XRP/ETH", "1m").rows == 1000
    monkeypatch.setattr(store_module.OHLCVStore, "append", real)
    assert main(args) == 0
    assert OHLCVStore(tmp_path).info("binance", "XRP/ETH", "1m").rows == 2469
