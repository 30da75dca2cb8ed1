"""The search space at its edges: wide int ranges, steps that do not divide the range, grids
too large to run, log-scale ints."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from planarpy import Param, ParamError, Strategy
from planarpy.optimize import Dim, build_space


def make(**params):
    body = {"exchange": "binance", "quote": "BTC", "timeframe": "5m", "universe": ("ETH/BTC",),
            **params}
    return type("Wide", (Strategy,), body)


def test_a_wide_int_range_samples_without_listing_it():
    """Random draws pick an index; they never build the list of every value."""
    d = Dim("n", "int", 0, 2**52, 2)
    draws = [d.sample(np.random.default_rng(k)) for k in range(200)]
    assert all(0 <= v <= 2**52 and v % 2 == 0 for v in draws) and len(set(draws)) == 200
    assert d.size() == 2**51 + 1
    f = Dim("f", "float", 0.0, 1e6, 0.5)
    assert all((f.sample(np.random.default_rng(k)) * 2).is_integer() for k in range(50))


def test_a_log_scale_int_is_drawn_log_uniformly():
    d = Dim("n", "int", 1, 10_000, log=True)
    draws = np.array([d.sample(np.random.default_rng(k)) for k in range(2000)])
    assert draws.min() >= 1 and draws.max() <= 10_000
    # 1..99 is 2 of the 4 decades: about half the draws on a log scale (1% on a linear one)
    assert 0.45 < np.mean(draws < 100) < 0.6


def test_a_grid_too_large_to_run_is_refused_before_it_is_built():
    cls = make(a=Param(1, low=1, high=2**40), b=Param(0.5, low=0.0, high=1.0, step=0.001))
    space = build_space(cls)
    with pytest.raises(ParamError) as e:
        space.grid_points()
    text = str(e.value)
    assert text.startswith(f"the grid has {2**40 * 1001:,} points (a: {2**40:,} values, b: 1,001 "
                           "values), more than 1,000,000"), text
    assert "--method random or tpe" in text


def test_a_step_that_does_not_divide_the_range_ends_at_the_last_step():
    """The grid and Optuna's distribution agree on the last value, and Optuna has nothing
    to warn about."""
    cls = make(n=Param(5, low=5, high=52, step=5), f=Param(0.1, low=0.1, high=1.0, step=0.4))
    n, f = build_space(cls).dims
    assert n.grid() == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert f.grid() == [0.1, 0.5, 0.9]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dn, df = n.distribution(), f.distribution()
    assert (dn.low, dn.high, dn.step) == (5, 50, 5)
    assert math.isclose(df.high, 0.9) and df.step == 0.4


def test_evenly_rising_ints_are_a_stepped_range_not_labels():
    """range(5, 55, 5) or '5,10,15': TPE sees an ordered int range with its step (as a
    categorical choice it would not know 10 lies between 5 and 15); other lists stay
    choices, in their order."""
    from optuna.distributions import CategoricalDistribution, IntDistribution
    cls = make(n=Param(10, low=1, high=100), m=Param(3, low=1, high=100))
    space = build_space(cls, {"n": range(5, 55, 5), "m": [8, 2, 5]})
    n, m = space.dims
    assert (n.kind, n.low, n.high, n.step) == ("int", 5, 50, 5)
    assert n.grid() == list(range(5, 55, 5))
    assert isinstance(n.distribution(), IntDistribution) and n.distribution().step == 5
    assert m.kind == "choice" and m.grid() == [8, 2, 5]
    assert isinstance(m.distribution(), CategoricalDistribution)
    assert build_space(cls, {"n": "5,10,15"}).dims[0].step == 5
