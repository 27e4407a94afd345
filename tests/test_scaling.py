from __future__ import annotations

import numpy as np
import pytest
from unimixer_plan.scaling.fits import (
    ALPHA_GRID,
    _weighted_fits,
    bootstrap_band,
    bootstrap_fits,
    bootstrap_interval,
    fit_log_trend,
    fit_power_law,
    held_out_error,
)


@pytest.mark.parametrize(("floor", "scale", "alpha"), [(0.44, 3.0, 0.3), (0.30, 40.0, 0.5), (0.50, 0.8, 0.12)])
def test_recovers_a_known_exponent_and_floor(floor, scale, alpha):
    compute = np.geomspace(1e4, 1e7, 8)
    rng = np.random.default_rng(0)
    loss = floor + scale * compute**-alpha + rng.normal(0, 1e-4, len(compute))
    fit = fit_power_law(compute, loss)
    assert fit is not None
    assert fit.alpha == pytest.approx(alpha, rel=0.1)
    assert fit.floor == pytest.approx(floor, abs=0.01)
    target = 1e9
    truth = floor + scale * target**-alpha
    assert fit.predict(target) == pytest.approx(truth, rel=0.01)


def test_one_outlier_does_not_bend_the_fit():
    compute = np.geomspace(1e4, 1e7, 7)
    loss = 0.4 + 2.0 * compute**-0.3
    loss[3] += 0.05  # one bad proxy
    fit = fit_power_law(compute, loss)
    assert fit.alpha == pytest.approx(0.3, rel=0.2)


def test_too_few_points_give_no_fit_and_flat_data_gives_a_flat_fit():
    assert fit_power_law(np.array([1e4, 1e5]), np.array([0.5, 0.45])) is None
    assert fit_power_law(np.array([1e4, 1e4, 1e4]), np.array([0.5, 0.45, 0.4])) is None
    flat = fit_power_law(np.geomspace(1e4, 1e6, 4), np.array([0.5, 0.51, 0.5, 0.52]))
    assert flat.scale == 0.0 and flat.predict(1e9) == pytest.approx(0.5, abs=0.02)


def test_bootstrap_interval_covers_the_truth_and_widens_with_noise():
    compute = np.geomspace(1e4, 1e7, 6)
    rng = np.random.default_rng(1)
    truth = 0.45 + 2.0 * compute**-0.25
    quiet = truth + rng.normal(0, 1e-4, 6)
    noisy = truth + rng.normal(0, 5e-3, 6)
    target = 1e8
    fit_quiet, fit_noisy = fit_power_law(compute, quiet), fit_power_law(compute, noisy)
    low_q, high_q = bootstrap_interval(compute, quiet, fit_quiet, target)
    low_n, high_n = bootstrap_interval(compute, noisy, fit_noisy, target)
    assert low_q <= fit_quiet.predict(target) <= high_q
    assert (high_n - low_n) > (high_q - low_q)
    assert low_n <= 0.45 + 2.0 * target**-0.25 <= high_n


def test_held_out_error_and_trends():
    compute = np.geomspace(1e4, 1e7, 5)
    loss = 0.4 + 2.0 * compute**-0.3
    check = held_out_error(compute, loss)
    assert check["relative_error"] < 0.01 and check["extrapolation_factor"] == pytest.approx(10**0.75)
    trend = fit_log_trend(compute, 2.0 * compute**0.1)
    assert trend.slope == pytest.approx(0.1) and trend.predict(1e9) == pytest.approx(2.0 * 1e9**0.1)
    assert fit_log_trend(compute, compute).slope == 0.25  # clipped


def test_held_out_error_reports_the_largest_point_and_its_relative_error():
    compute = np.geomspace(1e4, 1e7, 5)
    loss = 0.4 + 2.0 * compute**-0.3
    loss[-1] += 0.02  # the held-out point sits above the curve of the others
    check = held_out_error(compute, loss)
    assert set(check) == {"compute", "actual", "predicted", "relative_error", "extrapolation_factor"}
    assert check["compute"] == pytest.approx(1e7) and check["actual"] == pytest.approx(loss[-1])
    refit = fit_power_law(compute[:-1], loss[:-1])
    assert check["predicted"] == pytest.approx(refit.predict(1e7))
    assert check["relative_error"] == pytest.approx(abs(check["predicted"] - loss[-1]) / loss[-1])


def test_log_trend_guards_and_clipping():
    compute = np.geomspace(1e4, 1e6, 3)  # exactly the minimum of three distinct points
    assert fit_log_trend(compute, np.array([0.5, 0.6, 0.7])) is not None  # values below 1 are fine
    assert fit_log_trend(compute[:2], np.array([1.0, 2.0])) is None  # too few points
    assert fit_log_trend(np.array([1e4, 1e4, 1e5]), np.array([1.0, 2.0, 3.0])) is None  # two distinct
    assert fit_log_trend(compute, np.array([0.0, 1.0, 2.0])) is None  # a zero has no log
    assert fit_log_trend(compute, compute**-1.0).slope == -0.25  # clipped from below too


def test_bootstrap_defaults_are_300_refits_seeded_0():
    compute = np.geomspace(1e4, 1e7, 5)
    loss = 0.45 + 2.0 * compute**-0.25 + np.random.default_rng(2).normal(0, 2e-3, 5)
    fit = fit_power_law(compute, loss)
    fits = bootstrap_fits(compute, loss, fit)
    assert len(fits) == 300
    assert bootstrap_interval(compute, loss, fit, 1e8) == bootstrap_interval(compute, loss, fit, 1e8, seed=0)
    assert bootstrap_interval(compute, loss, fit, 1e8) != bootstrap_interval(compute, loss, fit, 1e8, seed=1)


@pytest.mark.parametrize("index", [10, 80, 200])
def test_noise_free_data_on_the_alpha_grid_is_fit_exactly(index):
    alpha = ALPHA_GRID[index]
    compute = np.geomspace(1e4, 1e7, 5)
    x = np.log(compute) - np.log(compute).mean()
    fit = fit_power_law(compute, 0.4 + 0.3 * np.exp(-alpha * x))
    assert fit.alpha == alpha and fit.points == 5
    assert fit.floor == pytest.approx(0.4, abs=1e-9) and fit.scale == pytest.approx(0.3, abs=1e-9)
    assert fit.residual_std < 1e-9
    assert isinstance(fit.predict(1e8), float) and fit.predict(np.array([1e8])).shape == (1,)


def test_weighted_fit_keeps_the_floor_in_its_bounds_and_refits_the_scale():
    basis = np.geomspace(0.5, 2.0, 5)[None, :]
    ones = np.ones_like(basis)
    # unconstrained floor -0.05: clipped to 0, scale refit by least squares through the origin
    loss = -0.05 + 0.5 * basis[0]
    floor, scale = _weighted_fits(basis, loss, ones)
    assert floor[0] == 0.0
    assert scale[0] == pytest.approx((loss * basis[0]).sum() / (basis[0] ** 2).sum())
    # weights matter: a zero-weight point is ignored
    noisy = 0.3 + 0.2 * basis[0]
    noisy[2] += 1.0
    weights = ones.copy()
    weights[0, 2] = 0.0
    floor, scale = _weighted_fits(basis, noisy, weights)
    assert floor[0] == pytest.approx(0.3) and scale[0] == pytest.approx(0.2)
    # rising loss: flat (no improvement with compute), at most the smallest loss
    floor, scale = _weighted_fits(basis, 0.5 - 0.1 * basis[0], ones)
    assert scale[0] == 0.0 and 0.0 <= floor[0] <= (0.5 - 0.1 * basis[0]).min()


def test_fit_ignores_unusable_points_and_keeps_compute_below_one():
    compute = np.geomspace(0.01, 10.0, 6)
    loss = 0.4 + 0.2 * compute**-0.3
    clean = fit_power_law(compute, loss)
    assert clean.points == 6 and clean.alpha == pytest.approx(0.3, rel=0.05)
    junk_c = np.r_[compute, np.nan, np.inf, 0.0, -1.0, 5.0]
    junk_l = np.r_[loss, 0.5, 0.5, 0.5, 0.5, np.nan]
    assert fit_power_law(junk_c, junk_l) == clean


def test_six_points_are_enough_for_the_robust_fit():
    compute = np.geomspace(1e4, 1e7, 6)
    loss = 0.4 + 2.0 * compute**-0.3
    loss[2] += 0.05
    assert fit_power_law(compute, loss).alpha == pytest.approx(0.3, rel=0.05)


def reference_bootstrap(compute, loss, fit, samples, seed):
    """The residual bootstrap as specified: refit fitted + resampled residuals inflated by sqrt(n/(n-3))
    (for n > 3), or Gaussian noise of the residual scale (at least 1e-6) when the fit is exact."""
    fitted = fit.predict(compute)
    residuals = loss - fitted
    if len(loss) > 3:
        residuals = residuals * np.sqrt(len(loss) / (len(loss) - 3))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        if np.any(residuals):
            noise = rng.choice(residuals, size=len(loss))
        else:
            noise = rng.normal(0, max(fit.residual_std, 1e-6), len(loss))
        out.append(fit_power_law(compute, fitted + noise))
    return out


@pytest.mark.parametrize("n", [3, 4, 6])
def test_bootstrap_is_the_specified_residual_bootstrap(n):
    compute = np.geomspace(1e4, 1e7, n)
    loss = 0.45 + 2.0 * compute**-0.25 + np.random.default_rng(n).normal(0, 3e-3, n)
    fit = fit_power_law(compute, loss)
    assert bootstrap_fits(compute, loss, fit, samples=5, seed=7) == reference_bootstrap(compute, loss, fit, 5, 7)
    flat = np.full(n, 0.5)  # a flat fit reproduces it exactly: no residuals, Gaussian noise instead
    flat_fit = fit_power_law(compute, flat)
    assert np.all(flat - flat_fit.predict(compute) == 0)
    got = bootstrap_fits(compute, flat, flat_fit, samples=3, seed=1)
    assert got == reference_bootstrap(compute, flat, flat_fit, 3, 1)
    assert bootstrap_fits(compute, loss, fit, samples=2) == bootstrap_fits(compute, loss, fit, samples=2, seed=0)


def test_band_and_interval_are_the_central_quantiles_of_the_bootstrap():
    compute = np.geomspace(1e4, 1e7, 5)  # five points: least squares, quick to refit 300 times
    loss = 0.45 + 2.0 * compute**-0.25 + np.random.default_rng(3).normal(0, 3e-3, 5)
    fit = fit_power_law(compute, loss)
    grid = np.array([1e7, 1e8])
    curves = np.stack([f.predict(grid) for f in bootstrap_fits(compute, loss, fit, seed=4)])
    low, high = bootstrap_band(compute, loss, fit, grid, level=0.8, seed=4)
    np.testing.assert_allclose(low, np.quantile(curves, 0.1, axis=0))
    np.testing.assert_allclose(high, np.quantile(curves, 0.9, axis=0))
    default = bootstrap_band(compute, loss, fit, grid)
    np.testing.assert_array_equal(default, bootstrap_band(compute, loss, fit, grid, level=0.9, seed=0))
    assert not np.array_equal(default, bootstrap_band(compute, loss, fit, grid, level=0.9, seed=4))
    narrow = bootstrap_interval(compute, loss, fit, 1e8, level=0.5)
    wide = bootstrap_interval(compute, loss, fit, 1e8)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    assert bootstrap_interval(compute, loss, fit, 1e8, level=0.8, seed=4) == (float(low[1]), float(high[1]))
