"""The scaling posterior (``scaling.posterior``) and its normal-distribution helpers (``scaling.normal``).

What the bootstrap got wrong and these pin: a 3-point fit is not certain (its interval is wide, the
prior speaks), the interval contains its own point estimate, a posterior piled at a bound says so,
and the draws of different families are independent.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from unimixer_plan.scaling.ladder import held_out_check
from unimixer_plan.scaling.normal import log_erfc, log_ndtr, ndtri_log
from unimixer_plan.scaling.posterior import Prior, family_seed, fit_posterior, probability_lowest

LADDER = 1e4 * 4.0 ** np.arange(8)  # the ladder's spacing


def planted(points: int, noise: float = 0.002, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    compute = LADDER[:points]
    return compute, 0.42 + 0.5 * compute**-0.3 + np.random.default_rng(seed).normal(0, noise, points)


def truth(compute: float) -> float:
    return 0.42 + 0.5 * compute**-0.3


def test_normal_helpers_match_the_standard_library():
    normal = NormalDist()
    for x in np.linspace(-5, 20, 26):
        assert log_erfc(np.array([x]))[0] == pytest.approx(math.log(math.erfc(x)), abs=2e-7)
    for z in (-30.0, -5.0, 0.0, 3.0):
        expected = math.log(normal.cdf(z)) if z > -8 else -(z**2) / 2 - math.log(-z) - 0.5 * math.log(2 * math.pi)
        assert log_ndtr(np.array([z]))[0] == pytest.approx(expected, rel=1e-3)
    for p in (1e-12, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-9):
        assert ndtri_log(np.log([p]))[0] == pytest.approx(normal.inv_cdf(p), rel=1e-8)
    assert np.isfinite(ndtri_log(np.array([-800.0]))[0])  # exp(-800) underflows; its log does not


def test_three_points_give_a_wide_interval_not_a_collapsed_one():
    compute, loss = planted(3)
    target = compute.max() * 300
    posterior = fit_posterior(compute, loss, Prior(floor_low=0.39))
    median, (low, high) = posterior.predict(target)
    assert low <= median <= high
    assert low <= truth(target) <= high
    assert high - low > 0.01  # the bootstrap gave ~2e-4 here: many times the noise, the prior speaks
    eight = fit_posterior(*planted(8), Prior(floor_low=0.39))
    _, (low8, high8) = eight.predict(LADDER[7] * 300)
    assert low8 <= truth(LADDER[7] * 300) <= high8
    assert high8 - low8 < high - low  # more rungs, less room


def test_measured_noise_sets_the_width_and_bounds_hold():
    compute, loss = planted(6, noise=0.001, seed=3)
    target = compute.max() * 100
    quiet = fit_posterior(compute, loss, Prior(floor_low=0.39, sigma=0.001))
    loud = fit_posterior(compute, loss, Prior(floor_low=0.39, sigma=0.01))
    width = [p.predict(target)[1][1] - p.predict(target)[1][0] for p in (quiet, loud)]
    assert width[0] < width[1]
    for posterior in (quiet, loud):
        assert posterior.floor.min() >= 0.39 and posterior.floor.max() <= posterior.floor_high
        assert posterior.alpha.min() >= 0.02 and posterior.alpha.max() <= 1.0
        assert posterior.scale.min() >= 0 and posterior.points == 6
    assert np.all(quiet.sigma == 0.001)
    marginal = fit_posterior(compute, loss, Prior(floor_low=0.39))
    assert marginal.sigma.min() >= 5e-4 and marginal.sigma.max() <= 3e-2 and len(np.unique(marginal.sigma)) > 1


def test_a_posterior_piled_at_a_bound_says_so():
    compute = LADDER
    line = 0.46 - 0.004 * np.log(compute / compute[0])  # no curvature: the floor runs to its bound
    assert "floor_low" in fit_posterior(compute, line, Prior(floor_low=0.40, sigma=0.001)).at_bound
    flat = np.full(8, 0.45) + np.random.default_rng(1).normal(0, 0.001, 8)  # no improvement: any alpha will do
    assert {"alpha_low", "alpha_high"} & set(fit_posterior(compute, flat, Prior(floor_low=0.40, sigma=0.001)).at_bound)
    assert fit_posterior(*planted(8), Prior(floor_low=0.39, sigma=0.002)).at_bound == ()
    # a wide prior range alone is no pile-up: 8 clean points and a floor bound of 0 cut nothing
    assert fit_posterior(*planted(8), Prior()).at_bound == ()


def test_band_median_and_determinism():
    compute, loss = planted(4)
    posterior = fit_posterior(compute, loss, Prior(floor_low=0.39), seed=5)
    grid = np.geomspace(compute.min(), compute.max() * 100, 7)
    median, low, high = posterior.band(grid)
    assert np.all(low <= median) and np.all(median <= high)
    assert posterior.predict(grid[-1]) == (pytest.approx(median[-1]), (pytest.approx(low[-1]), pytest.approx(high[-1])))
    again = fit_posterior(compute, loss, Prior(floor_low=0.39), seed=5)
    np.testing.assert_array_equal(again.draws(1e9), posterior.draws(1e9))
    other = fit_posterior(compute, loss, Prior(floor_low=0.39), seed=6)
    assert not np.array_equal(other.draws(1e9), posterior.draws(1e9))
    assert family_seed(0, "wukong") != family_seed(0, "rankmixer") and family_seed(0, "a") == family_seed(0, "a")


def test_too_few_points_and_junk_give_no_posterior():
    assert fit_posterior(np.array([1e4, 4e4]), np.array([0.5, 0.48])) is None
    assert fit_posterior(np.array([1e4, 1e4, 4e4]), np.array([0.5, 0.49, 0.48])) is None
    compute, loss = planted(4)
    junk = fit_posterior(np.r_[compute, np.nan, 0.0], np.r_[loss, 0.4, 0.4])
    assert junk.points == 4


def test_probability_lowest_sums_to_one_and_orders_families():
    rng = np.random.default_rng(0)
    clear = probability_lowest({"a": rng.normal(0.40, 0.001, 4000), "b": rng.normal(0.45, 0.001, 4000)})
    assert clear == {"a": 1.0, "b": 0.0}
    even = probability_lowest({"a": rng.normal(0.40, 0.01, 4000), "b": rng.normal(0.40, 0.01, 4000)})
    assert sum(even.values()) == pytest.approx(1.0) and abs(even["a"] - 0.5) < 0.05
    three = probability_lowest({n: rng.normal(m, 0.01, 4000) for n, m in (("x", 0.41), ("y", 0.40), ("z", 0.42))})
    assert sum(three.values()) == pytest.approx(1.0) and max(three, key=three.get) == "y"
    assert probability_lowest({}) == {}


def test_the_held_out_check_predicts_the_largest_rung_from_the_others_as_the_target_is_predicted():
    compute, loss = planted(5, noise=0.001, seed=2)
    prior = Prior(floor_low=0.39)
    check = held_out_check(compute, loss, prior, seed=[0, 1])
    assert set(check) == {"compute", "actual", "predicted", "relative_error", "extrapolation_factor", "interval"}
    assert check["compute"] == compute[-1] and check["actual"] == loss[-1] and check["extrapolation_factor"] == 4
    refit = fit_posterior(compute[:-1], loss[:-1], prior, seed=[0, 1])
    assert check["predicted"] == pytest.approx(np.median(refit.draws(compute[-1])))
    assert check["relative_error"] == pytest.approx(abs(check["predicted"] - loss[-1]) / loss[-1])
    low, high = check["interval"]
    assert low <= check["predicted"] <= high
    clean = held_out_check(compute, truth(compute), prior, seed=[0, 1])  # on the curve: inside
    assert clean["interval"][0] <= clean["actual"] <= clean["interval"][1]
    # a measurement, noise included: wider than the curve's own interval there
    curve_low, curve_high = refit.predict(compute[-1])[1]
    assert high - low > curve_high - curve_low
    bad = loss.copy()
    bad[-1] += 0.05  # the largest rung far above the curve of the others: outside the interval
    off = held_out_check(compute, bad, prior, seed=[0, 1])
    assert off["interval"][1] < bad[-1]
    assert held_out_check(compute[:3], loss[:3], prior, seed=0) is None  # two points left: no posterior
