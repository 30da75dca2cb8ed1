import json

import pytest

from planarpy.cli.main import main


def test_sim_prints_the_summary(repo_root, monkeypatch, capsys):
    """`planarpy sim sma_cross` prints equity, return, trades, win rate, drawdown, fees."""
    monkeypatch.chdir(repo_root)
    assert main(["sim", "sma_cross"]) == 0
    out = capsys.readouterr().out
    for label in ("final equity", "return", "trades", "win rate", "max drawdown", "fees paid"):
        assert label in out


def test_sim_options_and_json(repo_root, monkeypatch, capsys):
    """--from, --to, --cash, --seed and --json shape the run and its output."""
    monkeypatch.chdir(repo_root)
    assert main(["sim", "margin_trend", "--from", "2021-11-17", "--to", "2021-11-20",
                 "--cash", "500", "--seed", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["initial_cash"] == 500 and d["seed"] == 4 and d["trades"] > 0
    assert d["start"] >= 1637107200000 and d["end"] < 1637366400000


def test_sim_with_a_csv(repo_root, monkeypatch, capsys, tmp_path):
    """--data SYMBOL=CSV backtests on the user's own candles."""
    monkeypatch.chdir(repo_root)
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{1600000000000 + 300000 * k},0.05,0.052,0.049,{0.05 + 0.001 * ((k // 40) % 2)},1000"
             for k in range(400)]
    p = tmp_path / "eth.csv"
    p.write_text("\n".join(rows))
    assert main(["sim", "sma_cross", "--data", f"ETH/BTC={p}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["candles"] == 370


@pytest.mark.parametrize("args, message", [
    (["sim", "nope"], "no strategy named 'nope'"),
    (["sim", "sma_cross", "--data", "ETH/BTC"], "--data takes SYMBOL=FILE.csv"),
    (["sim", "sma_cross", "--data", "ETH/BTC=/no/such.csv"], "cannot read /no/such.csv"),
    (["sim", "sma_cross", "--data", "BTC/USDT=x.csv"], "not in the strategy's universe"),
    (["sim", "sma_cross", "--from", "yesterday"], "time 'yesterday' is neither"),
    (["sim", "sma_cross", "--from", "2030-01-01"], "nothing to backtest"),
    (["sim", "sma_cross", "--config", "missing.toml"], "missing.toml does not exist"),
])
def test_sim_bad_input_gives_one_line(repo_root, monkeypatch, capsys, args, message):
    """Bad input ends with exit 2 and a one-line message, never a traceback."""
    monkeypatch.chdir(repo_root)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_malformed_sim_table(tmp_path, repo_root, monkeypatch, capsys):
    """A wrong type in [sim] names the option."""
    monkeypatch.chdir(repo_root)
    cfg = tmp_path / "p.toml"
    cfg.write_text('[sim]\nseed = "x"\n')
    assert main(["sim", "sma_cross", "--config", str(cfg)]) == 2
    assert "[sim] seed must be a whole number from 0 to 4294967295, not 'x'" in \
        capsys.readouterr().err


def test_fee_side_from_the_command_line_and_the_config():
    """--fee-side quote charges fees in cash (as backtesting.py); [sim] fee_side does the
    same from planar.toml; a side that is not one of ccxt's is refused, naming it."""
    import argparse

    from planarpy.cli import sim as cli_sim
    from planarpy.core.errors import ConfigError
    parser = argparse.ArgumentParser()
    cli_sim.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sim", "sma_cross", "--fee-side", "quote"])
    assert cli_sim.sim_config(args, {}).fee_side == "quote"
    args = parser.parse_args(["sim", "sma_cross"])
    assert cli_sim.sim_config(args, {"sim": {"fee_side": "get"}}).fee_side == "get"
    assert cli_sim.sim_config(args, {}).fee_side is None
    with pytest.raises(ConfigError,
                       match=r"\[sim\] fee_side must be one of get, give, quote, base, not 'bnb'"):
        cli_sim.sim_config(args, {"sim": {"fee_side": "bnb"}})
