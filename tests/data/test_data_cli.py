"""`planarpy fetch` and `planarpy data import|ls` through the real command line entry point."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planarpy.cli.main import main
from planarpy.data.ohlcv import OHLCV
from planarpy.data.sample import sample_path
from planarpy.data.store import OHLCVStore, SeriesKey


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def write_csv(path: Path, ohlcv: OHLCV, extra: str = "") -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [",".join(repr(x) for x in row) for row in ohlcv.to_rows()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def test_fetch_command_end_to_end(server: Any, tmp_path: Path, capsys: Any, xrp: OHLCV) -> None:
    """`planarpy fetch` downloads through the URL override with ccxt's rate limiter on."""
    data = tmp_path / "data"
    code, out, err = run(capsys, "fetch", "binance", "XRP/ETH", "1m", "--since", "2019-10-11",
                         "--until", "2019-10-12", "--data-dir", str(data),
                         "--exchange-url", server.url, "--no-progress")
    assert code == 0 and err == "", err  # no progress bar when asked for none
    assert "binance XRP/ETH 1m:" in out and "candles added" in out
    stored = OHLCVStore(data).load("binance", "XRP/ETH", "1m")
    assert np.array_equal(stored.close, xrp.between(1570752000000, 1570838400000).close)
    done = len(server.requests)
    code, out, err = run(capsys, "fetch", "binance", "XRP/ETH", "1m", "--data-dir", str(data),
                         "--exchange-url", server.url, "--limit", "500", "--progress")
    assert code == 0 and "candle" in err  # the bar, drawn on stderr
    assert len(OHLCVStore(data).load("binance", "XRP/ETH", "1m")) == len(xrp)
    assert all(r["limit"] == "500" for r in server.requests[done:])


def test_fetch_uses_planarpy_data(server: Any, tmp_path: Path, capsys: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --data-dir, the store is $PLANARPY_DATA."""
    monkeypatch.setenv("PLANARPY_DATA", str(tmp_path / "env"))
    code, _, err = run(capsys, "fetch", "binance", "ETH/BTC", "5m", "--since", "0",
                       "--until", "2018-01-11", "--exchange-url", server.url, "--no-rate-limit")
    assert code == 0, err
    assert OHLCVStore(tmp_path / "env").info("binance", "ETH/BTC", "5m") is not None


@pytest.mark.parametrize("args,message", [
    (("DOGE/ETH", "1m"), "planarpy: error: 'DOGE/ETH' is not in binance's markets"),
    (("XRP/ETH", "2m"), "planarpy: error: binance has no timeframe '2m' for XRP/ETH"),
    (("XRP/ETH", "1m", "--since", "2022-01-01"),
     "planarpy: error: binance XRP/ETH 1m: the exchange has no candles from 2022-01-01"),
    (("XRP/ETH", "1m", "--since", "soon"),
     "planarpy: error: argument --since: time 'soon' is neither"),
])
def test_fetch_errors_are_one_line(server: Any, tmp_path: Path, capsys: Any, args: tuple,
                                   message: str) -> None:
    """User errors print one `planarpy: error:` line naming the market, and exit 2."""
    code, out, err = run(capsys, "fetch", "binance", *args, "--data-dir", str(tmp_path),
                         "--exchange-url", server.url, "--no-rate-limit")
    assert code == 2 and err.startswith(message), err
    assert "Traceback" not in err


def test_import_then_ls(tmp_path: Path, capsys: Any) -> None:
    """A bundled CSV imports into the store and `data ls` lists it."""
    data = tmp_path / "data"
    csv = sample_path("binance", "ETH/BTC", "5m")
    code, out, err = run(capsys, "data", "import", str(csv), "--exchange", "binance",
                         "--symbol", "ETH/BTC", "--timeframe", "5m", "--data-dir", str(data))
    assert code == 0 and "5760 candles added" in out, err
    code, out, _ = run(capsys, "data", "ls", "--data-dir", str(data), "--check")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["EXCHANGE", "SYMBOL", "TIMEFRAME", "CANDLES", "MISSING", "FIRST",
                              "LAST"]
    assert row.split() == ["binance", "ETH/BTC", "5m", "5760", "0", "2018-01-10T04:55Z",
                           "2018-01-30T04:50Z"]


def test_ls_counts_the_missing_candles(tmp_path: Path, capsys: Any, xrp: OHLCV) -> None:
    """`data ls` says how many candles are missing inside each series (gaps)."""
    OHLCVStore(tmp_path).save("binance", "XRP/ETH", "1m", xrp)
    code, out, _ = run(capsys, "data", "ls", "--data-dir", str(tmp_path))
    assert code == 0 and out.splitlines()[1].split()[3:5] == ["2469", "1091"]


def test_ls_empty_store(tmp_path: Path, capsys: Any) -> None:
    """An empty store lists nothing; a --data-dir that does not exist is an error."""
    code, out, _ = run(capsys, "data", "ls", "--data-dir", str(tmp_path))
    assert code == 0 and out.startswith("no stored candles in")
    code, _, err = run(capsys, "data", "ls", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "argument --data-dir: must be an existing directory" in err


def test_ls_reports_damage(tmp_path: Path, capsys: Any, xrp: OHLCV, ethbtc: OHLCV) -> None:
    """`data ls --check` lists the healthy series and names the damaged one on stderr."""
    store = OHLCVStore(tmp_path)
    store.save("binance", "XRP/ETH", "1m", xrp)
    store.save("binance", "ETH/BTC", "5m", ethbtc)
    chunk = tmp_path / SeriesKey("binance", "XRP/ETH", "1m").path / "g0" / "high" / "c" / "0"
    chunk.unlink()
    code, out, err = run(capsys, "data", "ls", "--data-dir", str(tmp_path), "--check")
    assert code == 1 and "ETH/BTC" in out and "XRP/ETH" not in out
    assert "damaged: binance XRP/ETH 1m" in err and "column high chunk 0: missing" in err


def test_import_overlap_and_bad_rows(tmp_path: Path, capsys: Any, xrp: OHLCV) -> None:
    """Overlapping or bad CSVs are refused with the file named; stored candles stay."""
    data = tmp_path / "data"
    first = write_csv(tmp_path / "first.csv", xrp[:1500])
    both = write_csv(tmp_path / "both.csv", xrp[1000:])
    common = ["--exchange", "binance", "--symbol", "XRP/ETH", "--timeframe", "1m",
              "--data-dir", str(data)]
    assert run(capsys, "data", "import", str(first), *common)[0] == 0
    code, _, err = run(capsys, "data", "import", str(both), *common)
    assert code == 2 and f"{both}: 500 candle(s)" in err and "nothing was written" in err
    bad = write_csv(tmp_path / "bad.csv", xrp[1500:1600], extra="1571000000000,1,2,x,1,1\n")
    code, _, err = run(capsys, "data", "import", str(bad), *common)
    assert code == 2 and f"{bad}:102: bad row" in err
    unsorted = tmp_path / "unsorted.csv"
    write_csv(unsorted, xrp[1500:1600])
    lines = unsorted.read_text().splitlines()
    unsorted.write_text("\n".join([lines[0], *lines[5:], *lines[1:5]]) + "\n")
    code, _, err = run(capsys, "data", "import", str(unsorted), *common)
    assert code == 2 and f"{unsorted}: out-of-order timestamp" in err
    assert np.array_equal(OHLCVStore(data).load("binance", "XRP/ETH", "1m").close, xrp[:1500].close)
    code, out, _ = run(capsys, "data", "import", str(both), *common, "--skip-existing")
    assert code == 0 and "500 already stored skipped" in out
    assert len(OHLCVStore(data).load("binance", "XRP/ETH", "1m")) == len(xrp)


def test_import_wrong_timeframe_and_gz(tmp_path: Path, capsys: Any, ethbtc: OHLCV) -> None:
    """A 5m file imported as 1m is caught; gzip files import as they are."""
    gz = tmp_path / "eth.csv.gz"
    rows = ["timestamp,open,high,low,close,volume"] + [
        ",".join(repr(x) for x in r) for r in ethbtc[:100].to_rows()]
    gz.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    common = ["--exchange", "binance", "--symbol", "ETH/BTC", "--data-dir", str(tmp_path / "d")]
    code, _, err = run(capsys, "data", "import", str(gz), *common, "--timeframe", "1m")
    assert code == 2 and f"{gz}: candles are 300 s or a multiple apart, never one 1m" in err
    code, out, _ = run(capsys, "data", "import", str(gz), *common, "--timeframe", "5m")
    assert code == 0 and "100 candles added" in out
    code, out, _ = run(capsys, "data", "import", str(gz), *common, "--timeframe", "5m",
                       "--replace")
    assert code == 0 and len(OHLCVStore(tmp_path / "d").load("binance", "ETH/BTC", "5m")) == 100


def test_fetch_into_damaged_store_names_it(server: Any, tmp_path: Path, capsys: Any,
                                           xrp: OHLCV) -> None:
    """A damaged series stops the fetch with its path and market; its files are untouched."""
    OHLCVStore(tmp_path).save("binance", "XRP/ETH", "1m", xrp[:100])
    meta = tmp_path / SeriesKey("binance", "XRP/ETH", "1m").path / "zarr.json"
    meta.write_text(meta.read_text().replace('"rows": 100', '"rows": 100000'))
    before = meta.read_bytes()
    code, _, err = run(capsys, "fetch", "binance", "XRP/ETH", "1m", "--data-dir", str(tmp_path),
                       "--exchange-url", server.url, "--no-rate-limit")
    assert code == 2 and "binance XRP/ETH 1m" in err and str(meta.parent) in err
    assert "is corrupted" in err and meta.read_bytes() == before
