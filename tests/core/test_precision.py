from planarpy.core.precision import (ceil_to_step, floor_fill, floor_to_step, is_on_step,
                                     round_to_step, step_decimals)


def test_step_decimals():
    """Steps report their decimals, including steps that are not powers of ten."""
    assert step_decimals(0.001) == 3
    assert step_decimals(0.5) == 1
    assert step_decimals(1.0) == 0
    assert step_decimals(1e-8) == 8


def test_float_noise_is_on_step():
    """0.1 + 0.2 counts as a multiple of 0.01 despite its float noise."""
    assert is_on_step(0.1 + 0.2, 0.01)
    assert not is_on_step(0.305, 0.01)


def test_floor_never_rounds_up():
    """floor_to_step keeps exact multiples and never exceeds the value."""
    assert floor_to_step(0.3, 0.1) == 0.3
    assert floor_to_step(10.27769, 0.0001) == 10.2776
    assert floor_to_step(0.0999999, 0.1) == 0.0


def test_ceil_and_round():
    """ceil_to_step and round_to_step land on the grid without fuzz."""
    assert ceil_to_step(105.000001, 0.01) == 105.01
    assert ceil_to_step(105.0, 0.01) == 105.0
    assert round_to_step(0.123456789, 1e-8) == 0.12345679


def test_the_grid_arithmetic_equals_rounding_to_decimals():
    """floor/ceil/round_to_step land on the same floats as round(k * step, decimals)
    (what they computed before they were written for speed), for steps of any shape."""
    import math

    from hypothesis import given, settings
    from hypothesis import strategies as st

    steps = st.sampled_from([1e-8, 1e-6, 0.0001, 0.00025, 0.001, 0.005, 0.01, 0.05, 0.1, 0.2,
                             0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0])
    values = st.floats(-1e7, 1e7, allow_nan=False) | st.integers(0, 10**7).map(lambda k: k * 0.01)

    def rounded(k, step):
        return round(k * step, step_decimals(step))

    @settings(max_examples=3000, deadline=None, derandomize=True)
    @given(values, steps)
    def check(value, step):
        n = value / step
        slack = 1e-9 * max(1.0, abs(n))
        assert floor_to_step(value, step) == rounded(math.floor(n + slack), step)
        assert ceil_to_step(value, step) == rounded(math.ceil(n - slack), step)
        assert round_to_step(value, step) == rounded(round(n), step)
    check()


def test_floor_fill_keeps_a_whole_amount_on_the_step_and_never_rounds_above():
    """All of an order's amount that is on the step within noise is that amount to the bit;
    otherwise the fill rounds down to the step, never above what was asked."""
    for whole in (0.1 + 0.2, 0.29999999999999993, 0.3):
        assert floor_fill(whole, whole, 0.01) == whole
    assert floor_fill(1.125, 1.125, 0.01) == 1.12  # not on the step: rounded down
    assert floor_fill(0.29999999999999993, 1.0, 0.01) <= 0.29999999999999993  # a part
    assert floor_fill(0.257, 1.0, 0.01) == 0.25
