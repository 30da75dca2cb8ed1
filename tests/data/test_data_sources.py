"""Which candles a backtest uses, and that it says so: a stored series replaces a bundled
sample only for the same market and timeframe; `data rm`; CSVs of another timeframe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planarpy.cli.main import main
from planarpy.data.ohlcv import OHLCV, resample
from planarpy.data.store import OHLCVStore
from planarpy.trace import trace_tail

SAMPLE_ROWS = 5760  # the bundled ETH/BTC 5m candles


def sim_json(capsys: Any, *args: str) -> dict[str, Any]:
    assert main(["sim", "sma_cross", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def one_minute(ethbtc: OHLCV, n: int) -> OHLCV:
    """`n` 1m candles inside the sample's range (what a short fetch at 1m stores)."""
    t0 = int(ethbtc.timestamp[100])
    rows = [[t0 + 60_000 * k, 0.1, 0.1, 0.1, 0.1, 5.0] for k in range(n)]
    return OHLCV.from_rows(rows)


@pytest.fixture
def project(repo_root: Path, tmp_path: Path, monkeypatch: Any) -> Path:
    """The repository's strategies, run from an empty directory (its store: user/data)."""
    (tmp_path / "strategies").symlink_to(repo_root / "strategies")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLANARPY_HOME", str(tmp_path))
    monkeypatch.delenv("PLANARPY_DATA", raising=False)
    return tmp_path


def test_a_series_of_another_timeframe_does_not_replace_the_sample(project, ethbtc, capsys):
    """144 stored ETH/BTC 1m candles leave `sim sma_cross` (5m) on the bundled sample (it
    ran on 5 candles made from them), and the summary says which data it used."""
    OHLCVStore(project / "user" / "data").save("binance", "ETH/BTC", "1m", one_minute(ethbtc, 144))
    d = sim_json(capsys)
    assert d["candles"] > 5000
    (source,) = d["data"]["sources"]
    assert source["kind"] == "sample" and source["rows"] == SAMPLE_ROWS
    assert source["where"] == "binance_ETH-BTC_5m" and source["resampled_from"] is None
    assert main(["sim", "sma_cross"]) == 0
    out = capsys.readouterr().out
    assert "data            ETH/BTC: the bundled sample binance_ETH-BTC_5m, 5760 candles" in out


def test_a_series_of_the_same_timeframe_replaces_the_sample(project, ethbtc, capsys):
    """A stored 5m series is used instead of the sample, and named as the store's."""
    OHLCVStore(project / "user" / "data").save("binance", "ETH/BTC", "5m", ethbtc[:2000])
    (source,) = sim_json(capsys)["data"]["sources"]
    assert source["kind"] == "store" and source["rows"] == 2000
    assert source["where"] == str(project / "user" / "data")
    assert source["first"] == int(ethbtc.timestamp[0])
    assert source["last"] == int(ethbtc.timestamp[1999])


def test_an_explicit_store_may_be_resampled_and_says_so(project, ethbtc, capsys):
    """With --data-dir, 1m candles are resampled to the strategy's 5m, and the summary
    says from what."""
    store = project / "mine"
    one = resample(ethbtc, "5m", "5m")  # a copy
    rows = [[int(t) + 60_000 * k, o, h, lo, c, v / 5]
            for t, o, h, lo, c, v in zip(one.timestamp[:600], one.open, one.high, one.low,
                                         one.close, one.volume) for k in range(5)]
    OHLCVStore(store).save("binance", "ETH/BTC", "1m", OHLCV.from_rows(rows))
    (source,) = sim_json(capsys, "--data-dir", str(store))["data"]["sources"]
    assert source["kind"] == "store" and source["resampled_from"] == "1m"
    assert source["rows"] == 600


def test_data_rm_brings_the_sample_back(project, ethbtc, capsys):
    """`data rm` removes a stored series (all its timeframes without one named); the next
    run uses the sample again."""
    store = OHLCVStore(project / "user" / "data")
    store.save("binance", "ETH/BTC", "5m", ethbtc[:2000])
    store.save("binance", "ETH/BTC", "1m", one_minute(ethbtc, 144))
    assert main(["data", "rm", "binance", "ETH/BTC", "5m"]) == 0
    assert capsys.readouterr().out.startswith("removed binance ETH/BTC 5m: 2000 candles")
    assert store.timeframes("binance", "ETH/BTC") == ["1m"]
    assert sim_json(capsys)["data"]["sources"][0]["kind"] == "sample"
    assert main(["data", "rm", "binance", "ETH/BTC"]) == 0
    assert "removed binance ETH/BTC 1m: 144 candles" in capsys.readouterr().out
    assert store.series() == []
    assert main(["data", "rm", "binance", "ETH/BTC"]) == 2
    assert "'ETH/BTC' is not in the stored candles of binance" in capsys.readouterr().err


def test_data_rm_removes_a_damaged_series_and_leftovers(tmp_path, ethbtc, capsys):
    """A damaged series can be removed (it cannot be loaded or appended to); what a killed
    remove left behind is cleaned up by the next one."""
    store = OHLCVStore(tmp_path)
    store.save("binance", "ETH/BTC", "5m", ethbtc[:100])
    store.save("binance", "ETH/BTC", "1h", resample(ethbtc[:240], "5m", "1h"))
    series = tmp_path / "binance" / "ETH_BTC" / "5m"
    (series / "g0" / "close" / "c" / "0").write_bytes(b"garbage")
    leftover = series.with_name(".5m.removed-123")
    (leftover / "g0").mkdir(parents=True)
    assert main(["data", "rm", "binance", "ETH/BTC", "5m", "--data-dir", str(tmp_path)]) == 0
    assert "removed binance ETH/BTC 5m" in capsys.readouterr().out
    assert not series.exists() and not leftover.exists()
    assert [str(s.key) for s in store.series()] == ["binance ETH/BTC 1h"]


def test_the_run_header_says_which_data(project, capsys):
    """`sim --record` puts the data and the gap policy in the run's strategy_started."""
    assert main(["sim", "sma_cross", "--record", "t"]) == 0
    capsys.readouterr()
    (started,) = trace_tail("t", 1, kinds="strategy_started")
    data = started["payload"]["data"]
    assert data["gaps"] == "fill" and data["skipped"] == 0
    assert data["sources"][0]["kind"] == "sample" and data["sources"][0]["rows"] == SAMPLE_ROWS


def write_csv(path: Path, o: OHLCV) -> Path:
    lines = ["timestamp,open,high,low,close,volume"] + \
        [",".join(str(x) for x in row) for row in o.to_rows()]
    path.write_text("\n".join(lines) + "\n")
    return path


ONE_MINUTE = """from planarpy import Strategy

class Minutes(Strategy):
    exchange = "binance"
    quote = "ETH"
    timeframe = "1m"
    universe = ("XRP/ETH",)
"""


def test_a_csv_coarser_than_the_strategy_is_refused(tmp_path, xrp, capsys):
    """5m candles for a 1m strategy are refused, naming both (they ran as 4 synthetic
    candles in 5), and nothing runs."""
    path = write_csv(tmp_path / "xrp5m.csv", resample(xrp, "1m", "5m"))
    (tmp_path / "minutes.py").write_text(ONE_MINUTE)
    assert main(["sim", str(tmp_path / "minutes.py"), "--data", f"XRP/ETH={path}"]) == 2
    out, err = capsys.readouterr()
    assert "xrp5m.csv holds 5m candles" in err and "the strategy trades 1m candles" in err
    assert "final equity" not in out


def test_a_csv_finer_than_the_strategy_is_resampled_in_whole_buckets(tmp_path, xrp):
    """1m candles for a 5m strategy are aggregated (whole buckets only) and described."""
    from planarpy.data.sources import find_ohlcv
    path = write_csv(tmp_path / "xrp1m.csv", xrp)
    o, source = find_ohlcv("binance", "XRP/ETH", "5m", csv=path)
    want = resample(xrp, "1m", "5m")
    first = int(xrp.timestamp[0])
    assert o.timestamp[0] >= first and o.timestamp[0] % 300_000 == 0
    assert len(o) in (len(want), len(want) - 1, len(want) - 2)
    assert source.kind == "csv" and source.resampled_from == "1m" and source.rows == len(o)
    assert "(1m resampled to 5m)" in source.describe()
