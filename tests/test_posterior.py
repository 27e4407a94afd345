"""The joint scaling posterior (``scaling.posterior``), the prediction with its held-out check
(``scaling.prediction``) and the normal-distribution helpers (``scaling.normal``).

What a bootstrap got wrong and these pin: a fit from few points is not certain (its interval is wide,
the prior speaks), the interval contains its own point estimate, the data axis moves the prediction,
measured noise sets the width, a posterior piled at a bound says so, the draws of different families
are independent, and a held-out check that misses widens the interval and is reported as failed.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from unimixer_plan.scaling.design import DATA_GROWTH, DATA_POINT_DIVISOR, LADDER_FACTOR
from unimixer_plan.scaling.normal import log_erfc, log_ndtr, ndtri_log
from unimixer_plan.scaling.posterior import Prior, family_seed, fit_posterior, log_orthant, probability_lowest
from unimixer_plan.scaling.prediction import held_out_check, predict


def truth(compute, samples):
    return 0.40 + 0.4 * np.asarray(compute) ** -0.25 + 3.0 * np.asarray(samples) ** -0.35


def design(rungs: int) -> tuple[np.ndarray, np.ndarray]:
    """The plan's ladder: rungs 4x apart in compute, data doubling, each rung also at a quarter of its data."""
    compute = 3e4 * LADDER_FACTOR ** np.arange(rungs, dtype=float)
    samples = 8192 * DATA_GROWTH ** np.arange(rungs, dtype=float)
    return np.r_[compute, compute], np.r_[samples, samples / DATA_POINT_DIVISOR]


def planted(rungs: int, noise: float = 0.002, seed: int = 0):
    compute, samples = design(rungs)
    return compute, samples, truth(compute, samples) + np.random.default_rng(seed).normal(0, noise, len(compute))


def replicates(noise: float, dof: int = 8, seed: int = 0) -> dict[str, float]:
    return {"replicate_ss": float(noise**2 * np.random.default_rng(seed).chisquare(dof)), "replicate_dof": dof}


TARGET = (2e9, 3e7)


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


def test_the_bivariate_orthant_matches_a_monte_carlo_and_the_known_cases():
    rng = np.random.default_rng(0)
    for a, b, rho in ((0.3, -0.5, 0.6), (1.5, 2.0, -0.7), (-1.0, 0.2, 0.0)):
        u = rng.standard_normal(400_000)
        v = rho * u + math.sqrt(1 - rho**2) * rng.standard_normal(400_000)
        assert math.exp(log_orthant(a, b, rho)) == pytest.approx(np.mean((u <= a) & (v <= b)), abs=3e-3)
    # independence: the product; zero thresholds: 1/4 + asin(rho) / (2 pi)
    assert math.exp(log_orthant(0.7, -0.2, 0.0)) == pytest.approx(normal_cdf(0.7) * normal_cdf(-0.2), rel=1e-4)
    assert math.exp(log_orthant(0.0, 0.0, 0.5)) == pytest.approx(0.25 + math.asin(0.5) / (2 * math.pi), rel=1e-3)
    assert np.isfinite(log_orthant(-40.0, -30.0, 0.3))  # far in the tail: finite, not log(0)


def normal_cdf(z: float) -> float:
    return NormalDist().cdf(z)


def test_few_points_give_a_wide_interval_that_covers_and_more_rungs_narrow_it():
    compute, samples, loss = planted(3)
    posterior = fit_posterior(compute, samples, loss, Prior(floor_low=0.39, **replicates(0.002)))
    median, (low, high) = posterior.predict(*TARGET)
    assert low <= median <= high and low <= truth(*TARGET) <= high
    assert high - low > 0.005  # a bootstrap of so few points gave ~2e-4: the prior speaks
    five = fit_posterior(*planted(5), Prior(floor_low=0.39, **replicates(0.002)))
    _, (low5, high5) = five.predict(*TARGET)
    assert low5 <= truth(*TARGET) <= high5 and high5 - low5 < high - low


def test_the_data_axis_moves_the_prediction_and_a_single_data_size_drops_it():
    compute, samples, loss = planted(4, noise=0.001)
    posterior = fit_posterior(compute, samples, loss, Prior(floor_low=0.39, **replicates(0.001)))
    assert posterior.data_axis and posterior.scale_data.min() >= 0
    at_proxies, _ = posterior.predict(2e9, samples.max())
    at_production, (low, high) = posterior.predict(*TARGET)
    assert at_production < at_proxies - 0.005  # 400x more data: the law says it pays
    assert low <= truth(*TARGET) <= high
    one_size = fit_posterior(compute, np.full_like(samples, 8192.0), loss)
    assert not one_size.data_axis and np.all(one_size.scale_data == 0)


def test_measured_noise_sets_the_width_and_bounds_hold():
    compute, samples, loss = planted(4, noise=0.001, seed=3)
    quiet = fit_posterior(compute, samples, loss, Prior(floor_low=0.39, **replicates(0.001, dof=30)))
    loud = fit_posterior(compute, samples, loss, Prior(floor_low=0.39, **replicates(0.01, dof=30)))
    width = [p.predict(*TARGET)[1][1] - p.predict(*TARGET)[1][0] for p in (quiet, loud)]
    assert width[0] < width[1]
    assert np.median(quiet.sigma) < 0.002 < np.median(loud.sigma)
    for posterior in (quiet, loud):
        assert posterior.floor.min() >= 0.39 and posterior.floor.max() <= posterior.floor_high
        assert posterior.alpha.min() >= 0.05 and posterior.alpha.max() <= 0.6
        assert posterior.beta.min() >= 0.05 and posterior.beta.max() <= 0.6
        assert posterior.scale_compute.min() >= 0 and posterior.points == 8
    assert Prior(**replicates(0.002, dof=4)).measured_sigma == pytest.approx(
        math.sqrt(replicates(0.002, dof=4)["replicate_ss"] / 4)
    )


def test_a_posterior_piled_at_a_bound_says_so():
    compute, samples = design(5)
    flat = np.full(len(compute), 0.45) + np.random.default_rng(1).normal(0, 0.001, len(compute))
    at_bound = fit_posterior(compute, samples, flat, Prior(floor_low=0.40, **replicates(0.001))).at_bound
    assert {"alpha_low", "alpha_high", "beta_low", "beta_high"} & set(at_bound)  # no improvement: any exponent
    clean = fit_posterior(*planted(5, noise=0.001), Prior(floor_low=0.30, **replicates(0.001, dof=20)))
    assert "floor_low" not in clean.at_bound and "floor_high" not in clean.at_bound


def test_band_median_and_determinism():
    compute, samples, loss = planted(4)
    prior = Prior(floor_low=0.39)
    posterior = fit_posterior(compute, samples, loss, prior, seed=5)
    grid = np.geomspace(compute.min(), 2e9, 7)
    median, low, high = posterior.band(grid, 3e7)
    assert np.all(low <= median) and np.all(median <= high)
    assert posterior.predict(grid[-1], 3e7) == (
        pytest.approx(median[-1]),
        (pytest.approx(low[-1]), pytest.approx(high[-1])),
    )
    again = fit_posterior(compute, samples, loss, prior, seed=5)
    np.testing.assert_array_equal(again.draws(*TARGET), posterior.draws(*TARGET))
    other = fit_posterior(compute, samples, loss, prior, seed=6)
    assert not np.array_equal(other.draws(*TARGET), posterior.draws(*TARGET))
    assert family_seed(0, "wukong") != family_seed(0, "rankmixer") and family_seed(0, "a") == family_seed(0, "a")


def test_too_few_points_and_junk_give_no_posterior():
    assert fit_posterior(np.array([1e4, 4e4]), np.array([1e4, 2e4]), np.array([0.5, 0.48])) is None
    assert fit_posterior(np.array([1e4, 1e4, 4e4]), np.ones(3) * 1e4, np.array([0.5, 0.49, 0.48])) is None
    compute, samples, loss = planted(3)
    junk = fit_posterior(np.r_[compute, np.nan, 0.0], np.r_[samples, 1e4, 1e4], np.r_[loss, 0.4, 0.4])
    assert junk.points == 6


def test_probability_lowest_sums_to_one_and_orders_families():
    rng = np.random.default_rng(0)
    clear = probability_lowest({"a": rng.normal(0.40, 0.001, 4000), "b": rng.normal(0.45, 0.001, 4000)})
    assert clear == {"a": 1.0, "b": 0.0}
    even = probability_lowest({"a": rng.normal(0.40, 0.01, 4000), "b": rng.normal(0.40, 0.01, 4000)})
    assert sum(even.values()) == pytest.approx(1.0) and abs(even["a"] - 0.5) < 0.05
    three = probability_lowest({n: rng.normal(m, 0.01, 4000) for n, m in (("x", 0.41), ("y", 0.40), ("z", 0.42))})
    assert sum(three.values()) == pytest.approx(1.0) and max(three, key=three.get) == "y"
    assert probability_lowest({}) == {}


def test_the_held_out_check_predicts_the_top_rung_from_the_others():
    compute, samples, loss = planted(4, noise=0.001, seed=2)
    prior = Prior(floor_low=0.39, **replicates(0.001))
    check = held_out_check(compute, samples, loss, prior, seed=[0, 1])
    top = int(np.argmax(compute * (samples == samples.max())))  # the top rung's diagonal point
    assert (check.compute, check.samples, check.actual) == (compute[top], samples[top], loss[top])
    assert check.step == {"flops": 4.0, "data": 2.0}  # one rung up in compute; data doubles
    rest = compute < compute.max()
    refit = fit_posterior(compute[rest], samples[rest], loss[rest], prior, seed=[0, 1])
    assert check.predicted == pytest.approx(np.median(refit.draws(compute[top], samples[top])))
    assert check.relative_error == pytest.approx(abs(check.predicted - loss[top]) / loss[top])
    assert check.interval[0] <= check.predicted <= check.interval[1] and check.passed
    bad = loss.copy()
    bad[top] += 0.05  # the top rung far above the law of the others
    off = held_out_check(compute, samples, bad, prior, seed=[0, 1])
    assert not off.passed and off.interval[1] < bad[top] and off.misspecification_sd > 0.03
    assert held_out_check(compute[:2], samples[:2], loss[:2], prior, seed=0) is None  # one rung left


def test_a_failed_check_widens_the_prediction_by_its_unexplained_error_at_the_target_distance():
    compute, samples, loss = planted(4, noise=0.001, seed=2)
    prior = Prior(floor_low=0.39, **replicates(0.001))
    clean = predict(compute, samples, loss, prior, *TARGET, seed=[0, 1])
    assert clean.held_out.passed and clean.misspecification_sd == 0.0
    assert clean.interval[0] <= clean.median <= clean.interval[1]
    bad = loss.copy()
    bad[np.argmax(compute * (samples == samples.max()))] += 0.02
    off = predict(compute, samples, bad, prior, *TARGET, seed=[0, 1])
    assert not off.held_out.passed
    d_check = math.hypot(math.log(4), math.log(2))
    d_target = math.hypot(math.log(TARGET[0] / compute.max()), math.log(TARGET[1] / samples.max()))
    assert off.misspecification_sd == pytest.approx(off.held_out.misspecification_sd * d_target / d_check)
    unwidened = off.posterior.predict(*TARGET)[1]
    assert off.interval[1] - off.interval[0] > 2 * (unwidened[1] - unwidened[0])
