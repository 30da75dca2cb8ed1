"""What the live tests share: the local exchange an hour on."""

import pytest


@pytest.fixture
def lx(local_exchange):
    """A local exchange (a new one for each test) an hour of replayed trades on: a book,
    candles and a day's volume."""
    local_exchange.step(3_600_000)
    return local_exchange
