"""The README's "Risk" section runs as written, and `planarpy sim` reads [risk]."""

import re
import tomllib

import pytest

from planarpy import RiskRules
from planarpy.cli.main import main


def section(repo_root, title):
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    start = text.index(f"### {title}\n")
    end = text.index("\n### ", start + 1)
    return text[start:end]


def test_the_risk_section_code_runs(repo_root, monkeypatch, capsys):
    """Its Python block runs from the repository root and prints a reduced summary."""
    monkeypatch.chdir(repo_root)
    (block,) = re.findall(r"```python\n(.*?)```", section(repo_root, "Risk"), re.S)
    exec(compile(block, "README.md (Risk)", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("max_drawdown reducing equity")
    assert "trading         reducing at" in out and "risk denied" in out


def test_the_risk_section_config_is_valid(repo_root):
    """Its TOML block is accepted for every strategy, and SmaCross gets its own table."""
    (block,) = re.findall(r"```toml\n(.*?)```", section(repo_root, "Risk"), re.S)
    table = tomllib.loads(block)["risk"]
    assert RiskRules.from_config(table, "Other").max_drawdown == 0.2
    own = RiskRules.from_config(table, "SmaCross")
    assert (own.max_drawdown, own.max_open_orders, own.on_drawdown) == (0.1, None, "reduce")


def test_sim_reads_risk_from_planar_toml(repo_root, monkeypatch, capsys, tmp_path):
    """`planarpy sim` applies [risk] and its summary says when and why trading stopped."""
    monkeypatch.chdir(repo_root)
    cfg = tmp_path / "planar.toml"
    cfg.write_text('[risk]\nmax_daily_loss = 0.01\n')
    assert main(["sim", "sma_cross", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "trading         halted at 2018-01-10" in out and "by max_daily_loss: lost" in out


@pytest.mark.parametrize("toml, message", [
    ("[risk]\nmax_drawdown = 2\n", "[risk] max_drawdown (fraction of the peak equity) must be "
                                   "in (0, 1], got 2"),
    ("[risk]\nstop_loss = 0.1\n", "[risk] has no rule 'stop_loss'"),
    ("risk = 3\n", "[risk] must be a table, got int"),
])
def test_sim_refuses_a_bad_risk_table_with_a_message(repo_root, monkeypatch, capsys, tmp_path,
                                                      toml, message):
    """A wrong [risk] ends `planarpy sim` with one line naming the key, not a traceback."""
    monkeypatch.chdir(repo_root)
    cfg = tmp_path / "planar.toml"
    cfg.write_text(toml)
    assert main(["sim", "sma_cross", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("planarpy: error: ") and message in err and "Traceback" not in err
