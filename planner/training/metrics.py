"""Binary-classification metrics, vectorised (no per-sample Python loops)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class SplitScore:
    """A model's logloss and AUC on one split, each with its standard error."""

    rows: int
    logloss: float
    logloss_se: float  # sd of the per-row loss / sqrt(rows)
    auc: float
    auc_se: float  # DeLong
    # each row's logit, for paired comparisons on the same rows (never written: to_dict leaves it out)
    logits: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        return {f"{prefix}{f.name}": getattr(self, f.name) for f in fields(self) if f.name != "logits"}


def score_logits(labels: torch.Tensor, logits: torch.Tensor) -> SplitScore:
    y, s = labels.numpy(), logits.numpy()
    return SplitScore(
        rows=len(labels),
        logloss=logloss(labels, logits),
        logloss_se=logloss_standard_error(y, s),
        auc=roc_auc(y, s),
        auc_se=auc_standard_error(y, s),
        logits=s,
    )


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic, tied scores counting half (NaN with one class)."""
    return RankedScores(labels, scores).auc()


class RankedScores:
    """One model's scores sorted once, so that the AUC of any reweighting of the rows (a bootstrap
    draw's counts) takes one pass instead of a sort: the weighted Mann-Whitney statistic, ties half."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        self.order = np.argsort(scores, kind="mergesort")
        sorted_scores = scores[self.order]
        self.positive = np.asarray(labels, dtype=np.float64)[self.order]
        starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
        run = np.cumsum(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]) - 1  # each row's run of equal scores
        ends = np.r_[starts[1:], len(scores)]
        self.run_start, self.run_end = starts[run], ends[run]

    def auc(self, counts: np.ndarray | None = None) -> float:
        weights = np.ones(len(self.order)) if counts is None else counts[self.order]
        positive = weights * self.positive
        negative = weights - positive
        below = np.r_[0.0, np.cumsum(negative)]
        lower = below[self.run_start]
        tied = below[self.run_end] - lower
        total = positive.sum() * negative.sum()
        return float(positive @ (lower + 0.5 * tied) / total) if total > 0 else float("nan")


def logloss(labels: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean binary cross-entropy of logits, computed in float64."""
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logits.double(), labels.double()))


def row_logloss(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Each row's binary cross-entropy of its logit (float64, stable for large logits)."""
    labels = np.asarray(labels, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    return np.logaddexp(0.0, logits) - labels * logits


def logloss_standard_error(labels: np.ndarray, logits: np.ndarray) -> float:
    """Standard error of the mean logloss: the sd of the per-row losses over sqrt(rows)."""
    losses = row_logloss(labels, logits)
    if len(losses) < 2:
        return float("nan")
    return float(losses.std(ddof=1) / np.sqrt(len(losses)))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with tied values given their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def auc_standard_error(labels: np.ndarray, scores: np.ndarray) -> float:
    """DeLong's standard error of the ROC AUC (DeLong, DeLong & Clarke-Pearson 1988), from the
    structural components: per positive, the share of negatives it outscores (ties count half);
    per negative, the share of positives that outscore it. O(n log n) through midranks."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    if m < 2 or n < 2:
        return float("nan")
    both = _midranks(np.concatenate([positives, negatives]))
    per_positive = (both[:m] - _midranks(positives)) / n
    per_negative = 1.0 - (both[m:] - _midranks(negatives)) / m
    return float(np.sqrt(per_positive.var(ddof=1) / m + per_negative.var(ddof=1) / n))
