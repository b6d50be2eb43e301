"""The quadratic family's measures tell points on y = x² from points off it, and even x from bunched x."""
import numpy as np

from training.evaluate import points


def on_curve(x):
    return np.stack([x, x * x], axis=1)


def test_points_on_the_curve_spread_over_the_range_pass_the_bars():
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 1000)
    m = points(on_curve(x))
    assert m["mean_abs_residual"] < 1e-9 and m["p95_abs_residual"] < 1e-9
    assert m["x_bins_covered"] == 20 and m["x_outside_range"] == 0


def test_points_off_the_curve_fail_the_residual_bars():
    rng = np.random.default_rng(1)
    noisy = on_curve(rng.uniform(-0.5, 0.5, 1000)) + [0, 0.05] * rng.standard_normal((1000, 2))
    m = points(noisy)
    assert m["mean_abs_residual"] > 0.02 and m["p95_abs_residual"] > 0.05


def test_points_bunched_in_x_fail_the_coverage_bar():
    x = np.random.default_rng(2).uniform(0.1, 0.2, 1000)  # on the curve, but only two of 20 bins
    m = points(on_curve(x))
    assert m["mean_abs_residual"] < 1e-9 and m["x_bins_covered"] <= 3
