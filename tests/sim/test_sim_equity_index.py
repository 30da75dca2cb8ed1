"""The equity curve's fill index: for each candle, how many fills count by then."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from planarpy.modes.sim.results import _fills_before


@given(st.integers(2, 400).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(0, n - 1), st.lists(st.integers(0, n + 2), max_size=60))))
def test_fills_before_is_searchsorted(case):
    """Counting fills per candle gives what a binary search per candle gives, fills
    before the start, at it and past the end included."""
    n, start, effective = case
    eff = np.array(sorted(effective), dtype=np.int64)
    want = np.searchsorted(eff, np.arange(start, n), side="right")
    got = _fills_before(eff, start, n)
    assert got.tolist() == want.tolist()
