"""Bad input, fed to every command and config table: each is refused with one line,
`planarpy: error: ...`, naming the value (and its option or key) and what is allowed; the
exit code is 2; there is no traceback; and nothing is written (the project's files are as
they were) or traded (no run starts).

Every row runs the real command line in a fresh project (the repository's strategies, a
trace, a store, CSVs). Rows marked `{lx}` talk to a local exchange over real ccxt.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
from zarr.storage import LocalStore

from planarpy.cli.main import main
from planarpy.data.ohlcv import load_csv
from planarpy.data.sample import sample_path
from planarpy.data.store import OHLCVStore
from planarpy.localexchange import LocalExchange

from diskkit import read_only

ETH_5M = sample_path("binance", "ETH/BTC", "5m")

# (name, command line, planar.toml or None, texts the message must hold)
ROWS: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    # sim: values that ran, or ended in a traceback after the whole run
    ("taker -1", "sim sma_cross --taker -1", None, ("--taker", "'-1'", "fee rate")),
    ("slippage -1", "sim sma_cross --slippage -1", None, ("--slippage", "'-1'", ">= 0")),
    ("cash 0", "sim sma_cross --cash 0", None, ("--cash", "'0'", "> 0")),
    ("cash -5", "sim sma_cross --cash -5", None, ("--cash", "'-5'", "> 0")),
    ("cash nan", "sim sma_cross --cash nan", None, ("--cash", "'nan'")),
    ("cash huge", "sim sma_cross --cash 1e308", None, ("--cash", "'1e308'", "< 1e+15")),
    ("maker nan", "sim sma_cross --maker nan", None, ("--maker", "'nan'", "fee rate")),
    ("seed -1", "sim sma_cross --seed -1", None, ("--seed", "'-1'", "whole number")),
    ("relative name", "sim ..up", None, ("'..up'", "no strategy named")),
    ("empty name", "sim ''", None, ("''", "no strategy named")),
    ("record to a file", "sim sma_cross --record afile.txt", None,
     ("--record", "'afile.txt'", "not a file")),
    ("plot suffix", "sim sma_cross --plot out.txt", None, ("--plot", "'out.txt'", ".html")),
    ("plot folder", "sim sma_cross --plot nodir/out.html", None,
     ("--plot", "'nodir/out.html'", "existing directory")),
    ("from", "sim sma_cross --from yesterday", None, ("--from", "'yesterday'", "ISO date")),
    ("to before from", "sim sma_cross --from 2018-01-20 --to 2018-01-15", None,
     ("--to 2018-01-15", "--from 2018-01-20")),
    ("data dir", "sim sma_cross --data-dir /nonexistent", None,
     ("--data-dir", "'/nonexistent'", "existing directory")),
    ("data symbol case", "sim sma_cross --data eth/btc=eth5m.csv", None,
     ("'eth/btc'", "'ETH/BTC'", "case-sensitive")),
    ("data coarser", "sim sma_cross --data ETH/BTC=eth15m.csv", None,
     ("eth15m.csv", "15m", "5m")),
    ("gaps", "sim sma_cross --gaps holes", None, ("--gaps", "'holes'", "fill", "skip")),
    ("param", "sim sma_cross -p fast=abc", None, ("fast", "'abc'", "int from 2 to 50")),
    # planar.toml
    ("[sim] slippage", "sim sma_cross", "[sim]\nslippage = -5\n",
     ("[sim] slippage", "-5", ">= 0")),
    ("[sim] seed", "sim sma_cross", '[sim]\nseed = "x"\n', ("[sim] seed", "'x'")),
    ("[sim] gaps", "sim sma_cross", '[sim]\ngaps = "holes"\n', ("[sim] gaps", "'holes'")),
    ("[sim] volume_cap", "sim sma_cross", '[sim]\nvolume_cap = "yes"\n',
     ("[sim] volume_cap", "'yes'", "true or false")),
    ("[sim] unknown key", "sim sma_cross", "[sim]\nslipage = 1\n", ("slipage", "slippage")),
    ("[sim] taker nan", "sim sma_cross", "[sim]\ntaker = nan\n", ("[sim] taker", "nan")),
    ("precision x", "sim sma_cross", '[markets.binance."BTC/USDT"]\nprecision = "x"\n',
     ('[markets.binance."BTC/USDT"]', "precision", "'x'")),
    ("market maker nan", "sim sma_cross",
     '[markets.binance."BTC/USDT"]\nprecision = { amount = 0.1, price = 0.1 }\nmaker = nan\n',
     ('[markets.binance."BTC/USDT"]', "maker", "nan")),
    ("market type", "sim sma_cross",
     '[markets.binance."BTC/USDT"]\nprecision = { amount = 0.1, price = 0.1 }\ntype = "option"\n',
     ("type", "'option'", "spot, swap, future")),
    ("market unknown key", "sim sma_cross",
     '[markets.binance."BTC/USDT"]\nprecison = { amount = 0.1, price = 0.1 }\n',
     ("precison", "unknown key")),
    ("markets table", "sim sma_cross", "[markets]\nbinance = 5\n", ("[markets.binance]", "5")),
    ("strategies", "sim sma_cross", "[strategies]\nx = 5\n", ("[strategies] x", "5")),
    ("exchanges = 5", "fetch binance ETH/BTC 5m --since 0", "exchanges = 5\n",
     ("[exchanges]", "int")),
    ("timeout abc", "fetch binance ETH/BTC 5m --since 0",
     '[exchanges.binance]\ntimeout = "abc"\n', ("[exchanges.binance] timeout", "'abc'")),
    ("sandbox false", "fetch binance ETH/BTC 5m --since 0",
     '[exchanges.binance]\nsandbox = "false"\n',
     ("[exchanges.binance] sandbox", "'false'", "true or false")),
    ("url query", "fetch binance ETH/BTC 5m --since 0",
     '[exchanges.binance]\nurl = "http://127.0.0.1:9/?x=1"\n',
     ("[exchanges.binance] url", "no query")),
    ("top-level table", "sim sma_cross", "[simm]\nseed = 1\n", ("simm", "known tables")),
    # [risk]: a traceback (TypeError, OverflowError) or rules left out silently before
    ("[risk] on_* list", "sim sma_cross", '[risk]\non_daily_loss = ["halt"]\n',
     ("[risk] on_daily_loss", "['halt']", '"halt" or "reduce"')),
    ("[risk] huge int", "sim sma_cross", "[risk]\nmax_drawdown = 1" + "0" * 400 + "\n",
     ("[risk] max_drawdown", "(0, 1]", "got 1000")),
    ("[risk] rule as a table", "sim sma_cross", "[risk.max_open_orders]\nlimit = 2\n",
     ("[risk] max_open_orders", "not a table")),
    ("[risk.module name]", "sim sma_cross", "[risk.sma_cross]\nmax_open_orders = 2\n",
     ("[risk.sma_cross]", "does not apply to SmaCross", "[risk.SmaCross]")),
    # fetch and markets
    ("fetch timeframe", "fetch binance ETH/BTC 7q --since 0", None, ("'7q'", "1m, 5m")),
    ("fetch limit", "fetch binance ETH/BTC 5m --since 0 --limit 0", None, ("--limit", "'0'")),
    ("fetch retries", "fetch binance ETH/BTC 5m --since 0 --retries -1", None,
     ("--retries", "'-1'")),
    ("fetch since", "fetch binance ETH/BTC 5m --since soon", None, ("--since", "'soon'")),
    ("fetch url", "fetch binance ETH/BTC 5m --since 0 --exchange-url ftp://x", None,
     ("--exchange-url", "'ftp://x'")),
    ("fetch data dir", "fetch binance ETH/BTC 5m --since 0 --data-dir afile.txt", None,
     ("--data-dir", "'afile.txt'")),
    ("fetch symbol case", "fetch binance eth/btc 5m --since 0 --exchange-url {lx}", None,
     ("'eth/btc'", "'ETH/BTC'", "case-sensitive", "known: ETH/BTC, XRP/ETH")),
    ("url path kept", "markets fetch binance ETH/BTC --retries 0 --exchange-url {lx}/api", None,
     ("/api/api/v3/exchangeInfo",)),
    ("markets fetch case", "markets fetch binance xrp/eth --exchange-url {lx}", None,
     ("'xrp/eth'", "'XRP/ETH'", "case-sensitive")),
    ("markets ls dir", "markets ls binance --data-dir /nonexistent", None,
     ("--data-dir", "'/nonexistent'")),
    # data
    ("import timeframe", "data import eth5m.csv --exchange binance --symbol ETH/BTC "
     "--timeframe 7q", None, ("--timeframe", "'7q'")),
    ("import missing file", "data import nofile.csv --exchange binance --symbol ETH/BTC "
     "--timeframe 5m", None, ("nofile.csv", "No such file")),
    ("import exchange", "data import eth5m.csv --exchange b/x --symbol ETH/BTC "
     "--timeframe 5m", None, ("'b/x'",)),
    ("import wrong timeframe", "data import eth5m.csv --exchange binance --symbol ETH/BTC "
     "--timeframe 1h", None, ("eth5m.csv", "1h grid")),
    ("import read-only", "data import eth5m.csv --exchange binance --symbol ETH/BTC "
     "--timeframe 5m --data-dir ro", None, ("in ro:", "Read-only file system",
                                            "stored candles are unchanged")),
    ("append on a full disk", "data import eth5m_more.csv --exchange binance --symbol ETH/BTC "
     "--timeframe 5m --data-dir store", None, ("in store:", "No space left",
                                              "stored candles are unchanged")),
    ("ls dir", "data ls --data-dir /nonexistent", None, ("--data-dir", "'/nonexistent'")),
    ("rm case", "data rm binance eth/btc --data-dir store", None,
     ("'eth/btc'", "'ETH/BTC'", "case-sensitive")),
    ("rm timeframe", "data rm binance ETH/BTC 1h --data-dir store", None,
     ("1h", "stored: 5m", "nothing was removed")),
    # trace
    ("follow interval -1", "trace tail trace -f --interval -1", None, ("--interval", "'-1'")),
    ("follow interval nan", "trace tail trace -f --interval nan", None, ("--interval", "'nan'")),
    ("follow interval 0", "trace tail trace -f --interval 0", None, ("--interval", "'0'")),
    ("tail n", "trace tail trace -n -5", None, ("-n", "'-5'")),
    ("tail run", "trace tail trace --run -3", None, ("--run", "'-3'")),
    ("tail symbol case", "trace tail trace --symbol eth/btc", None,
     ("'eth/btc'", "'ETH/BTC'", "case-sensitive")),
    ("tail since", "trace tail trace --since abc", None, ("'abc'",)),
    ("export folder", "trace export trace --csv nodir/x.csv", None,
     ("--csv", "'nodir/x.csv'", "existing directory")),
    ("export onto a folder", "trace export trace --csv trace", None, ("--csv", "'trace'")),
    ("chart out", "chart trace --strategy sma_cross -o chart.txt", None, ("-o", "'chart.txt'")),
    # exchange serve, optimize, paper
    ("port 99999", "exchange serve --port 99999", None, ("--port", "'99999'", "0 to 65535")),
    ("port -1", "exchange serve --port -1", None, ("--port", "'-1'")),
    ("speed nan", "exchange serve --speed nan", None, ("--speed", "'nan'")),
    ("speed 0", "exchange serve --speed 0", None, ("--speed", "'0'")),
    ("clock offset", "exchange serve --clock-offset nan", None, ("--clock-offset", "'nan'")),
    ("serve data symbol", "exchange serve --data xrp/eth=eth5m.csv", None,
     ("'xrp/eth'", "'XRP/ETH'", "case-sensitive")),
    ("optimize jobs", "optimize sma_cross --jobs 0", None, ("--jobs", "'0'")),
    ("optimize split", "optimize sma_cross --split 2", None, ("--split", "'2'")),
    ("optimize plot", "optimize sma_cross --plot heat.png", None, ("--plot", "'heat.png'")),
    ("paper cash", "paper sma_cross --cash -5", None, ("--cash", "'-5'")),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: Any) -> Iterator[Path]:
    """A project with the repository's strategies, a trace, a store and some CSVs."""
    root = tmp_path_factory.mktemp("project")
    repo = Path(__file__).parent.parent
    shutil.copytree(repo / "strategies", root / "strategies")
    (root / "user").mkdir()
    rows = load_csv(ETH_5M)
    _write_csv(root / "eth5m.csv", rows[:300])
    _write_csv(root / "eth5m_more.csv", rows[300:400])
    _write_csv(root / "eth15m.csv", rows[:900:3])
    (root / "afile.txt").write_text("not a directory\n")
    OHLCVStore(root / "store").save("binance", "ETH/BTC", "5m", rows[:300])
    (root / "ro").mkdir()
    old = Path.cwd()
    os.chdir(root)
    try:
        assert main(["sim", "sma_cross", "--record", "trace"]) == 0
    finally:
        os.chdir(old)
    yield root


@pytest.fixture(scope="module")
def lx() -> Iterator[LocalExchange]:
    with LocalExchange() as exchange:
        yield exchange


def _write_csv(path: Path, o: Any) -> None:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [",".join(str(x) for x in row) for row in o.to_rows()]
    path.write_text("\n".join(lines) + "\n")


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root`: its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def disk_full(monkeypatch: Any) -> None:
    """zarr's local store fails every write with ENOSPC (the boundary the store writes at)."""
    async def set_(self: Any, key: str, value: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(LocalStore, "set", set_)


def test_the_table_is_large_enough() -> None:
    """At least 40 bad inputs, each with a distinct name."""
    assert len(ROWS) >= 40 and len({r[0] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("name,line,toml,texts", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_changes_nothing(project: Path, lx: LocalExchange,
                                                   monkeypatch: Any, capsys: Any, name: str,
                                                   line: str, toml: str | None,
                                                   texts: tuple[str, ...]) -> None:
    """A bad value: exit 2, one `planarpy: error:` line naming it, no traceback, no output
    of a run, and no file written or changed."""
    monkeypatch.chdir(project)
    monkeypatch.setenv("PLANARPY_HOME", str(project))
    monkeypatch.delenv("PLANARPY_DATA", raising=False)
    config = project / "user" / "planar.toml"
    if toml is not None:
        config.write_text(toml)
    if name == "append on a full disk":
        disk_full(monkeypatch)
    before = snapshot(project)
    argv = shlex.split(line.format(lx=lx.url))
    try:
        if name == "import read-only":
            with read_only(project / "ro"):
                code = main(argv)
        else:
            code = main(argv)
    finally:
        config.unlink(missing_ok=True)
    out, err = capsys.readouterr()
    after = snapshot(project)
    after.pop("user/planar.toml", None)
    before.pop("user/planar.toml", None)
    assert code == 2, (code, out, err)
    assert err.startswith("planarpy: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in texts:
        assert text in err, f"{text!r} not in {err!r}"
    assert "final equity" not in out and "candles added" not in out and "stored in" not in out
    assert after == before, f"files written or changed: {set(after.items()) ^ set(before.items())}"
