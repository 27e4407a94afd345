from __future__ import annotations

import numpy as np
import pytest
from unimixer_plan.scaling.fits import (
    ALPHA_GRID,
    _weighted_fits,
    fit_log_trend,
    fit_power_law,
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


def test_log_trends():
    compute = np.geomspace(1e4, 1e7, 5)
    trend = fit_log_trend(compute, 2.0 * compute**0.1)
    assert trend.slope == pytest.approx(0.1) and trend.predict(1e9) == pytest.approx(2.0 * 1e9**0.1)
    assert fit_log_trend(compute, compute).slope == 0.25  # clipped


def test_log_trend_guards_and_clipping():
    compute = np.geomspace(1e4, 1e6, 3)  # exactly the minimum of three distinct points
    assert fit_log_trend(compute, np.array([0.5, 0.6, 0.7])) is not None  # values below 1 are fine
    assert fit_log_trend(compute[:2], np.array([1.0, 2.0])) is None  # too few points
    assert fit_log_trend(np.array([1e4, 1e4, 1e5]), np.array([1.0, 2.0, 3.0])) is None  # two distinct
    assert fit_log_trend(compute, np.array([0.0, 1.0, 2.0])) is None  # a zero has no log
    assert fit_log_trend(compute, compute**-1.0).slope == -0.25  # clipped from below too


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


def test_the_point_fit_keeps_its_floor_above_a_known_bayes_floor():
    compute = np.geomspace(1e4, 1e7, 6)
    loss = 0.46 - 0.004 * np.log(compute / 1e4)  # a straight line in log C: least squares wants E ~ 0
    assert fit_power_law(compute, loss).floor < 0.2
    bounded = fit_power_law(compute, loss, floor_low=0.40)
    assert 0.40 <= bounded.floor <= loss.min()
