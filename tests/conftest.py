"""Shared test setup: the test kit on sys.path, and the local exchange fixture when built."""

import importlib.util
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent / "kit"))

# Determinism: every run of the suite tries the same examples (no random seed, and no
# example database that one checkout's past runs fill and replay); a search for new
# examples is `pytest --hypothesis-profile=explore`
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("ci")

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
