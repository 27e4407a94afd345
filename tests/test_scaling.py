from __future__ import annotations

import numpy as np
import pytest
from unimixer_plan.scaling.fits import bootstrap_interval, fit_log_trend, fit_power_law, held_out_error


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
