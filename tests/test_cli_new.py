"""`planarpy new NAME [--margin]` writes a commented strategy that trades as it is."""

from __future__ import annotations

import pytest

from planarpy.cli.main import main


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLANARPY_HOME", raising=False)
    return tmp_path


@pytest.mark.parametrize("flags, cls, sides", [
    ([], "MyDip", {"buy", "sell"}),
    (["--margin"], "MyDip", {"long", "short"}),
])
def test_new_writes_a_strategy_that_trades(project, capsys, flags, cls, sides):
    assert main(["new", "my_dip", *flags]) == 0
    path = project / "strategies" / "my_dip.py"
    text = path.read_text()
    assert f"class {cls}(Strategy):" in text and "strategies/template.py" in text
    assert str(path) in capsys.readouterr().out
    assert main(["sim", "my_dip", "--json"]) == 0
    import json
    summary = json.loads(capsys.readouterr().out)
    assert summary["trades"] >= 10 and summary["strategy"] == cls
    from planarpy import backtest, find_strategy
    r = backtest(find_strategy("my_dip"))
    seen = {t.side.value for t in r.trades} if not flags else \
        {t.pos.value for t in r.trades}
    assert sides <= seen


def test_new_never_overwrites(project, capsys):
    (project / "strategies").mkdir()
    mine = project / "strategies" / "mine.py"
    mine.write_text("# my work\n")
    assert main(["new", "mine"]) == 2
    assert "exists already" in capsys.readouterr().err and mine.read_text() == "# my work\n"


@pytest.mark.parametrize("name", ["My-Dip", "1dip", "", "../x", "dip.py"])
def test_new_refuses_a_name_that_is_not_a_module_name(project, capsys, name):
    assert main(["new", name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("planarpy: error: NAME must be") and repr(name) in err
    assert not (project / "strategies").exists()


def test_template_documents_every_callback(repo_root):
    """strategies/template.py shows every callback of the Strategy base, on_error and
    on_order_update included."""
    import ast
    import inspect
    from planarpy import Strategy
    text = (repo_root / "strategies" / "template.py").read_text()
    defined = {n.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)}
    callbacks = {n for n, f in vars(Strategy).items() if inspect.isfunction(f)
                 and (n.startswith("on_") or n in ("load", "reset", "indicators", "start",
                                                   "tick", "stop"))}
    assert callbacks - defined == set()
