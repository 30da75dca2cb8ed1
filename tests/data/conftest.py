"""Fixtures of the data tests: a store in a temporary directory and the klines server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Iterator

import pytest

from planarpy.data.ohlcv import OHLCV, load_csv
from planarpy.data.sample import sample_path
from planarpy.data.store import OHLCVStore


def _load_kit() -> object:
    # tests run in importlib mode without __init__.py: load the kit by path, once
    if "klines_server" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "klines_server", Path(__file__).with_name("klines_server.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["klines_server"] = module
        spec.loader.exec_module(module)
    return sys.modules["klines_server"]


@pytest.fixture
def store(tmp_path: Path) -> OHLCVStore:
    return OHLCVStore(tmp_path / "data")


@pytest.fixture(scope="session")
def xrp() -> OHLCV:
    """Real Binance XRP/ETH 1m candles (2,469, with gaps where nothing traded)."""
    path = sample_path("binance", "XRP/ETH", "1m")
    assert path is not None
    return load_csv(path)


@pytest.fixture(scope="session")
def ethbtc() -> OHLCV:
    """Real Binance ETH/BTC 5m candles (5,760, no gaps)."""
    path = sample_path("binance", "ETH/BTC", "5m")
    assert path is not None
    return load_csv(path)


@pytest.fixture
def server() -> Iterator[object]:
    with _load_kit().KlinesServer() as srv:  # type: ignore[attr-defined]
        yield srv
