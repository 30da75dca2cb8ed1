"""The README's "Conditional orders" section runs as written."""

import re


def section(repo_root, title):
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    start = text.index(f"### {title}\n")
    return text[start:text.index("\n### ", start + 1)]


def test_the_conditional_orders_section_runs(repo_root, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    (block,) = re.findall(r"```python\n(.*?)```", section(repo_root, "Conditional orders"), re.S)
    scope = {}
    exec(compile(block, "README.md (Conditional orders)", "exec"), scope)
    out = capsys.readouterr().out
    result = scope["result"]
    assert out.startswith(f"{len(result.trades)} fills;") and len(result.trades) > 10
    # the strategy never sells by itself: every exit is a stop or a target, and both happen
    trips = result.round_trips()
    assert {t.exit_price < t.entry_price for t in trips} == {True, False}
    buys = {t.order_id for t in result.trades if t.side.value == "buy"}
    assert not buys & {t.order_id for t in result.trades if t.side.value == "sell"}
