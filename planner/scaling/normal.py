"""The standard normal's log CDF and inverse CDF, vectorised in plain numpy.

Why here: the scaling posterior marginalises the power law's scale over a truncated Gaussian and
draws from it, which needs log Phi far into the tails (a curve that wants to rise has its scale
pinned at zero, where Phi underflows) and Phi^-1 of probabilities as small as exp(-800). The
project keeps scipy out of its dependencies, so both are written out from published
approximations: Numerical Recipes' erfc (fractional error below 1.2e-7 everywhere) and Acklam's
inverse normal (relative error below 1.2e-9), the latter taking log p so its tail never underflows.
"""

from __future__ import annotations

import numpy as np

_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02, -3.066479806614716e01)
_A_LAST = 2.506628277459239e00
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01, -1.328068155288572e01)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
)
_C_LAST = 2.938163982698783e00
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


def _horner(coefficients: tuple[float, ...], x: np.ndarray, last: float) -> np.ndarray:
    value = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        value = value * x + c
    return value * x + last


def log_erfc(x: np.ndarray) -> np.ndarray:
    """log(erfc(x)) without underflow for large x."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC[-1])
    for c in reversed(_ERFC[:-1]):
        poly = poly * t + c
    upper = np.log(t) - z * z + poly  # log erfc(|x|)
    return np.where(x >= 0, upper, np.log(2.0 - np.exp(upper)))


def log_ndtr(z: np.ndarray) -> np.ndarray:
    """log Phi(z) for the standard normal, accurate in the far lower tail."""
    return np.log(0.5) + log_erfc(-np.asarray(z, dtype=np.float64) / np.sqrt(2.0))


def ndtri_log(log_p: np.ndarray) -> np.ndarray:
    """Phi^-1(p) from log p (p in (0, 1)); the lower tail works in log p, so p = exp(-800) is fine."""
    log_p = np.asarray(log_p, dtype=np.float64)
    p = np.exp(log_p)
    out = np.empty_like(p)
    low = p < _P_LOW
    high = p > 1 - _P_LOW
    mid = ~(low | high)
    q = np.sqrt(-2.0 * log_p[low])
    out[low] = _horner(_C, q, _C_LAST) / (_horner(_D, q, 1.0))
    q = p[mid] - 0.5
    r = q * q
    out[mid] = _horner(_A, r, _A_LAST) * q / (_horner(_B, r, 1.0))
    q = np.sqrt(-2.0 * np.log1p(-p[high]))
    out[high] = -_horner(_C, q, _C_LAST) / (_horner(_D, q, 1.0))
    return out
