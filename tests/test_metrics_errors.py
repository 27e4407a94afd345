"""Standard errors of the test metrics: the per-row logloss's, and DeLong's for the AUC."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from unimixer_plan.training.metrics import (
    auc_standard_error,
    logloss,
    logloss_standard_error,
    roc_auc,
    row_logloss,
)


def test_row_logloss_is_the_mean_s_terms_and_stable():
    rng = np.random.default_rng(1)
    labels, logits = (rng.random(500) < 0.3).astype(float), rng.normal(0, 3, 500)
    rows = row_logloss(labels, logits)
    assert rows.mean() == pytest.approx(logloss(torch.tensor(labels), torch.tensor(logits)), abs=1e-12)
    assert logloss_standard_error(labels, logits) == pytest.approx(rows.std(ddof=1) / np.sqrt(500))
    assert np.isfinite(row_logloss(np.array([0.0, 1.0]), np.array([800.0, -800.0]))).all()  # no overflow


def brute_force_delong(labels: np.ndarray, scores: np.ndarray) -> float:
    positives, negatives = scores[labels == 1], scores[labels == 0]
    kernel = (positives[:, None] > negatives[None]) + 0.5 * (positives[:, None] == negatives[None])
    v10, v01 = kernel.mean(1), kernel.mean(0)
    return float(np.sqrt(v10.var(ddof=1) / len(positives) + v01.var(ddof=1) / len(negatives)))


@pytest.mark.parametrize("ties", [False, True])
def test_delong_standard_error_matches_its_definition(ties):
    rng = np.random.default_rng(2)
    labels = (rng.random(300) < 0.25).astype(float)
    scores = rng.normal(size=300) + labels
    if ties:
        scores = np.round(scores, 1)  # many tied scores across and within the classes
    assert auc_standard_error(labels, scores) == pytest.approx(brute_force_delong(labels, scores), rel=1e-12)


def test_standard_errors_match_the_spread_over_repeated_samples():
    rng = np.random.default_rng(3)
    aucs, auc_errors, losses, loss_errors = [], [], [], []
    for _ in range(300):
        labels = (rng.random(400) < 0.25).astype(float)
        logits = rng.normal(size=400) + 1.2 * labels - 1.0
        aucs.append(roc_auc(labels, logits))
        auc_errors.append(auc_standard_error(labels, logits))
        losses.append(row_logloss(labels, logits).mean())
        loss_errors.append(logloss_standard_error(labels, logits))
    assert np.mean(auc_errors) == pytest.approx(np.std(aucs), rel=0.12)
    assert np.mean(loss_errors) == pytest.approx(np.std(losses), rel=0.12)


def test_undefined_with_too_few_rows_of_a_class():
    assert np.isnan(auc_standard_error(np.array([1.0, 0.0, 0.0]), np.array([0.3, 0.1, 0.2])))
    assert np.isnan(logloss_standard_error(np.array([1.0]), np.array([0.3])))
