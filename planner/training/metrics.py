"""Binary-classification metrics, vectorised (no per-sample Python loops)."""

from __future__ import annotations

import numpy as np
import torch


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic, with tied scores given their mean rank."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    positives = labels.sum()
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # mean rank (1-based) of each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    run_ranks = (starts + ends + 1) / 2.0
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def logloss(labels: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean binary cross-entropy of logits, computed in float64."""
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logits.double(), labels.double()))
