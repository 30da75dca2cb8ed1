from planarpy.core.precision import (ceil_to_step, floor_to_step, is_on_step, round_to_step,
                                     step_decimals)


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
