import pytest

from planarpy import backtest, find_strategy


@pytest.mark.parametrize("name", ["sma_cross", "margin_trend", "rsi_bands", "template"])
def test_example_strategies_trade_cleanly(name, repo_root, monkeypatch):
    """Each shipped strategy trades on its bundled data without a refused order."""
    monkeypatch.chdir(repo_root)
    errors = []
    cls = find_strategy(name)
    sub = type(cls.__name__, (cls,), {"on_order_error": lambda s, ai, r, q: errors.append(r)})
    r = backtest(sub)
    assert len(r.trades) > 20 and errors == []
    assert r.strategy.committed >= 0 and r.strategy.cash > 0
    assert r.equity[0] == pytest.approx(r.initial_cash)
