import pytest


@pytest.fixture
def here(repo_root, monkeypatch):
    """Run from the repository root, where strategies/sma_cross.py is found by name."""
    monkeypatch.chdir(repo_root)
    return repo_root
