"""Markets' rules: a market without `type` follows ccxt; `planarpy markets fetch` and
`planarpy fetch` store precision, limits, fees and type from the exchange (the local one,
over real ccxt), so the README's fetch -> sim flow works for a market that is not bundled."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from planarpy import Market
from planarpy.cli.main import main
from planarpy.config import load_config
from planarpy.data.ohlcv import load_csv
from planarpy.data.sample import sample_path
from planarpy.data.sources import markets_for
from planarpy.exchanges import rewrite_urls
from planarpy.localexchange import LocalExchange
from planarpy.localexchange.server import bundled_markets

SOL = Market(symbol="SOL/USDT", id="SOLUSDT", base="SOL", quote="USDT", settle=None,
             kind="spot", amount_step=0.01, price_step=0.01, min_amount=0.01, min_cost=5.0,
             maker=0.001, taker=0.001)

SOL_STRATEGY = '''from planarpy import Strategy, call
from planarpy.indicators import sma


class SolTrend(Strategy):
    exchange = "binance"
    quote = "USDT"
    timeframe = "5m"
    universe = ("SOL/USDT",)
    initial_cash = 1000.0
    warmup = 20

    def indicators(self, ai):
        return {"mean": sma(ai.ohlcv.close, 20)}

    def tick(self, ts):
        ai = self.assets[0]
        price = ai.ohlcv.close.item(self.i)
        mean = ai.ind["mean"][self.i]
        if ai.free_balance < ai.market.min_amount and price > mean:
            call(self, "market_order", ai, ai.floor_amount(self.free_cash * 0.5 / price))
        elif ai.free_balance >= ai.market.min_amount and price < mean:
            call(self, "market_order", ai, ai.floor_amount(ai.free_balance), side="sell")
'''


@pytest.mark.parametrize("symbol,kind,settle", [
    ("BTC/USDT", "spot", None), ("BTC/USDT:USDT", "swap", "USDT"),
    ("BTC/USD:BTC-250328", "future", "BTC")])
def test_a_market_without_type_follows_its_symbol(symbol, kind, settle):
    """ccxt's symbols say the type: no `:SETTLE` is spot (it became a swap)."""
    m = Market.from_ccxt({"symbol": symbol, "base": "BTC", "quote": symbol[4:7],
                          "precision": {"amount": 0.001, "price": 0.1}})
    assert (m.kind, m.settle) == (kind, settle)


def test_the_commented_example_of_planar_toml_works_once_uncommented(repo_root, tmp_path,
                                                                      monkeypatch, capsys):
    """Uncommenting the [markets] example shipped in user/planar.toml gives a spot
    BTC/USDT that a spot strategy backtests (it was a swap, refused by a spot strategy)."""
    text = (repo_root / "user" / "planar.toml").read_text()
    block = re.search(r"^# \[markets\.binance\.\"BTC/USDT\"\]\n(?:^# .*\n)+", text, re.M)
    assert block is not None, "the example is gone from user/planar.toml"
    uncommented = re.sub(r"^# ", "", block.group(0), flags=re.M)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "planar.toml").write_text(text.replace(block.group(0), uncommented))
    (tmp_path / "strategies").symlink_to(repo_root / "strategies")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLANARPY_HOME", str(tmp_path))
    m = markets_for("binance", load_config())["BTC/USDT"]
    assert m.kind == "spot" and m.min_cost == 5.0 and m.amount_step == 0.00001
    strategy = tmp_path / "btc.py"
    strategy.write_text(SOL_STRATEGY.replace("SOL/USDT", "BTC/USDT"))
    csv = tmp_path / "btc.csv"
    write_scaled(csv, 400_000.0)  # ETH/BTC's 5m candles as BTC/USDT prices
    assert main(["sim", str(strategy), "--data", f"BTC/USDT={csv}"]) == 0
    assert f"BTC/USDT: CSV {csv}" in capsys.readouterr().out


def write_scaled(path: Path, factor: float, rows: int | None = None) -> Path:
    """The bundled ETH/BTC 5m candles with prices times `factor`."""
    o = load_csv(sample_path("binance", "ETH/BTC", "5m"))
    lines = ["timestamp,open,high,low,close,volume"]
    for t, op, hi, lo, cl, v in list(o.to_rows())[:rows]:
        lines.append(f"{int(t)},{op * factor:.2f},{hi * factor:.2f},{lo * factor:.2f},"
                     f"{cl * factor:.2f},{v}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def lx(tmp_path: Path) -> Iterator[LocalExchange]:
    """The local exchange with a market that planarpy does not bundle: SOL/USDT."""
    csv = write_scaled(tmp_path / "sol.csv", 2000.0)
    with LocalExchange(markets=[*bundled_markets(), SOL], data={"SOL/USDT": str(csv)}) as exchange:
        yield exchange


def test_markets_fetch_stores_precision_limits_fees_and_type(lx, tmp_path, capsys):
    """`markets fetch` stores, from ccxt, each market's rules in the store's markets file;
    `markets ls` lists them as stored."""
    data = tmp_path / "data"
    assert main(["markets", "fetch", "binance", "SOL/USDT", "ETH/BTC", "--exchange-url", lx.url,
                 "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"the rules of 2 market(s) stored in {data / 'binance' / 'markets.json'}" in out
    doc = json.loads((data / "binance" / "markets.json").read_text())
    sol = doc["markets"]["SOL/USDT"]
    assert sol["type"] == "spot" and sol["precision"] == {"amount": 0.01, "price": 0.01}
    assert sol["limits"]["amount"]["min"] == 0.01 and sol["limits"]["cost"]["min"] == 5.0
    assert sol["maker"] == 0.001 and sol["taker"] == 0.001 and doc["fetched"]["SOL/USDT"] > 0
    m = Market.from_ccxt(sol)
    assert (m.kind, m.amount_step, m.price_step, m.min_amount, m.min_cost) == \
        (SOL.kind, SOL.amount_step, SOL.price_step, SOL.min_amount, SOL.min_cost)
    assert main(["markets", "ls", "binance", "--data-dir", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("SOL/USDT") and line.endswith("(stored)") for line in lines)
    assert any(line.startswith("XRP/ETH") and line.endswith("(bundled)") for line in lines)


def test_fetch_then_sim_a_market_that_is_not_bundled(lx, tmp_path, monkeypatch, capsys):
    """The README's flow: `fetch` stores the candles and the market's rules, then `sim`
    backtests a strategy on that market with nothing else (it failed: no market rules)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLANARPY_HOME", str(tmp_path))
    monkeypatch.delenv("PLANARPY_DATA", raising=False)
    (tmp_path / "sol.py").write_text(SOL_STRATEGY)
    since = str(lx.clock.now() - 3 * 86_400_000)
    assert main(["fetch", "binance", "SOL/USDT", "5m", "--since", since, "--exchange-url",
                 lx.url, "--no-rate-limit"]) == 0
    out = capsys.readouterr().out
    added = int(re.search(r"binance SOL/USDT 5m: (\d+) candles added", out).group(1))
    assert added >= 864 and "its market rules are in" in out
    assert main(["sim", "sol.py", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    (source,) = summary["data"]["sources"]
    assert source["kind"] == "store" and source["rows"] == added
    assert summary["trades"] > 0 and summary["quote"] == "USDT"


def test_a_strategy_on_an_unknown_market_says_how_to_get_its_rules(tmp_path, capsys):
    """Before the rules are fetched, the error names the market, the close ones and the
    command that fetches them."""
    (tmp_path / "sol.py").write_text(SOL_STRATEGY)
    assert main(["sim", str(tmp_path / "sol.py")]) == 2
    err = capsys.readouterr().err
    assert "'SOL/USDT' is not in binance's markets" in err
    assert "planarpy markets fetch binance SOL/USDT" in err


def test_a_url_keeps_its_path(lx, tmp_path, capsys):
    """A URL override with a path keeps it in front of every endpoint's (it was dropped
    silently): the request goes to URL/prefix/api/v3/..., which this exchange does not
    serve, and the error names it."""
    assert rewrite_urls({"rest": "https://api.binance.com/api/v3",
                         "ws": "wss://stream.binance.com:9443/ws"},
                        "http://127.0.0.1:81/proxy/") == {
        "rest": "http://127.0.0.1:81/proxy/api/v3", "ws": "ws://127.0.0.1:81/proxy/stream/ws"}
    assert main(["markets", "fetch", "binance", "ETH/BTC", "--exchange-url", f"{lx.url}/proxy",
                 "--retries", "0", "--data-dir", str(tmp_path)]) == 2
    assert f"{lx.url}/proxy/api/v3/exchangeInfo" in capsys.readouterr().err


def test_a_hand_edited_or_damaged_markets_file_is_named(tmp_path):
    """The stored markets are sealed: a changed value (or broken JSON) is an error naming
    the file and the command that fetches them again, never a silently different rule."""
    from planarpy.core.errors import DataError
    from planarpy.data.markets import markets_file, store_markets
    path = store_markets("binance", [SOL], 1, tmp_path)
    assert path == markets_file("binance", tmp_path)
    assert markets_for("binance", {}, tmp_path)["SOL/USDT"].min_cost == 5.0
    path.write_text(path.read_text().replace('"min": 5.0', '"min": 0.5'))
    with pytest.raises(DataError, match="markets.json is damaged .* `planarpy markets fetch binance`"):
        markets_for("binance", {}, tmp_path)
    path.write_text("{")
    with pytest.raises(DataError, match="markets.json cannot be read"):
        markets_for("binance", {}, tmp_path)
