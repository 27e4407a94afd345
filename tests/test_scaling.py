"""Knob trends of the scale-up (``scaling.trends``)."""

from __future__ import annotations

import numpy as np
import pytest
from unimixer_plan.scaling.trends import fit_log_trend


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
