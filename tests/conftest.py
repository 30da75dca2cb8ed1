"""Shared test setup: the test kit on sys.path, and the local exchange fixture when built."""

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "kit"))

def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


pytest_plugins = [p for p in ("planarpy.localexchange.pytest_plugin",) if _exists(p)]


import pytest  # noqa: E402


@pytest.fixture
def repo_root() -> Path:
    """The repository root, where strategies/ and user/planar.toml live."""
    return Path(__file__).parent.parent


@pytest.fixture
def scripted(local_exchange_factory):
    """A local exchange whose XRP/ETH replays the prices given, stepped by the test
    (tapekit.scripted_exchange)."""
    from tapekit import scripted_exchange
    return lambda path, **market: scripted_exchange(local_exchange_factory, path, **market)
