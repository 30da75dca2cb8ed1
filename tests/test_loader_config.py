import textwrap

import pytest

from planarpy import ConfigError, StrategyNotFound, UnknownSymbol, UnsupportedMarginMode
from planarpy.config import load_config
from planarpy.data.sources import markets_for
from planarpy.loader import find_strategy


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_load_by_name_via_planar_toml(tmp_path, monkeypatch):
    """A name in [strategies] loads the file it points to."""
    write(tmp_path / "mine" / "s.py", """
        from planarpy import Strategy
        class Mine(Strategy):
            universe = ("ETH/BTC",)
    """)
    write(tmp_path / "user" / "planar.toml", '[strategies]\nfoo = "mine/s.py"\n')
    monkeypatch.chdir(tmp_path)
    assert find_strategy("foo").__name__ == "Mine"


def test_load_by_path_and_from_strategies_dir(repo_root, monkeypatch):
    """A .py path, and a bare name found in strategies/, both load."""
    monkeypatch.chdir(repo_root)
    assert find_strategy("strategies/sma_cross.py").__name__ == "SmaCross"
    assert find_strategy("margin_trend", config={}).__name__ == "MarginTrend"


def test_unknown_strategy_name(tmp_path, monkeypatch):
    """An unknown name says where it looked."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StrategyNotFound, match="no strategy named 'nope': not in planar.toml"):
        find_strategy("nope")
    with pytest.raises(StrategyNotFound, match="strategy file missing.py does not exist"):
        find_strategy("missing.py")


def test_file_with_two_strategies_is_ambiguous(tmp_path):
    """A module with two Strategy subclasses must say which one."""
    p = write(tmp_path / "two.py", """
        from planarpy import Strategy
        class A(Strategy): pass
        class B(Strategy): pass
    """)
    with pytest.raises(StrategyNotFound, match=r"2 Strategy subclasses \(A, B\)"):
        find_strategy(str(p))


def test_malformed_toml_is_a_clear_config_error(tmp_path):
    """Broken TOML names the file and the line."""
    p = write(tmp_path / "planar.toml", "[strategies\nfoo = 1\n")
    with pytest.raises(ConfigError, match=r"planar.toml is not valid TOML: .*line 1"):
        load_config(p)


def test_wrong_table_type_and_missing_file(tmp_path):
    """A table given as a value, and a named file that does not exist, are config errors."""
    p = write(tmp_path / "planar.toml", 'strategies = "x"\n')
    with pytest.raises(ConfigError, match=r"\[strategies\] must be a table"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_markets_from_config(tmp_path):
    """[markets.EXCHANGE."SYM"] adds a market in ccxt's shape."""
    cfg = {"markets": {"binance": {"BTC/USDT": {"precision": {"amount": 1e-5, "price": 0.01},
                                                 "limits": {"cost": {"min": 5}}}}}}
    m = markets_for("binance", cfg)["BTC/USDT"]
    assert (m.base, m.quote, m.amount_step, m.min_cost) == ("BTC", "USDT", 1e-5, 5.0)
    assert "ETH/BTC" in markets_for("binance", cfg)


def test_strategy_with_symbol_outside_the_markets():
    """A universe symbol the exchange does not list raises UnknownSymbol naming the known ones."""
    from planarpy import Strategy

    class Bad(Strategy):
        exchange = "binance"
        quote = "BTC"
        universe = ("DOGE/BTC",)
    with pytest.raises(UnknownSymbol, match="'DOGE/BTC' is not in binance's markets; known: ETH/BTC"):
        Bad(markets_for("binance", {}))


def test_cross_margin_is_refused_clearly():
    """Cross margin is not built yet: a clear error, not a silent spot run."""
    from planarpy import Strategy

    class Cross(Strategy):
        margin = "cross"
        universe = ("ETH/BTC",)
    with pytest.raises(UnsupportedMarginMode, match="margin mode 'cross' is not supported"):
        Cross(markets_for("binance", {}))


def test_margin_strategy_on_spot_market_is_refused():
    """An isolated-margin strategy on a spot market fails naming the market kind."""
    from planarpy import Strategy

    class Wrong(Strategy):
        margin = "isolated"
        quote = "BTC"
        universe = ("ETH/BTC",)
    with pytest.raises(ConfigError, match="ETH/BTC is a spot market but Wrong has margin='isolated'"):
        Wrong(markets_for("binance", {}))
