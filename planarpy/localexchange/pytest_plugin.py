"""Pytest fixtures: a local exchange per test, and ccxt clients pointed at it.

`local_exchange` yields a running `LocalExchange` (bundled markets, stepped clock, one test
account) served from a background thread on a free port, stopped after the test.
`local_exchange_factory(**kwargs)` starts more, with any `LocalExchange` arguments.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from .server import LocalExchange


@pytest.fixture
def local_exchange_factory() -> Iterator[Callable[..., LocalExchange]]:
    started: list[LocalExchange] = []

    def make(**kwargs: Any) -> LocalExchange:
        lx = LocalExchange(**kwargs).__enter__()
        started.append(lx)
        return lx

    yield make
    for lx in reversed(started):
        lx.__exit__(None, None, None)


@pytest.fixture
def local_exchange(local_exchange_factory: Callable[..., LocalExchange]) -> LocalExchange:
    return local_exchange_factory()
