"""A synthetic Criteo: same schema, realistic marginals, labels from a planted model.

- 13 integer fields with count-like log-normal values near the real medians, and 26
  categorical fields with Criteo's cardinalities capped at ``vocab_cap``, ids drawn
  Zipf-like (p(rank) ~ rank^-1.2);
- missing values in the blocks real Criteo shows (shared/data/README.md), e.g. I1 and I10
  missing together in 44.8 % of rows, C19/C20/C25/C26 together in 45 %;
- label ~ Bernoulli(sigmoid(z)), z = bias + first-order terms + pairwise
  factorization-machine interactions + third-order interactions among a few fields,
  with the bias calibrated to a positive rate of 0.256. A model needs capacity to
  represent the interactions, so bigger models reach lower logloss, down to the
  Bayes floor the label noise sets.

Rows are generated in fixed blocks, each seeded by (seed, block), so the first N rows
are the same whatever the total asked: a larger fidelity sees a superset of the data.
"""

from __future__ import annotations

import numpy as np
from unimixer_plan.criteo import capped_criteo_cardinalities

POSITIVE_RATE = 0.256
ZIPF_EXPONENT = 1.2
_BLOCK_ROWS = 16_384
_PLANTED_DIM = 8

# log-space mean and spread per integer field (medians near the real sample's).
_DENSE_MEDIANS = (1, 3, 7, 4, 2469, 40, 3, 7, 41, 0.5, 1, 0.5, 5)
_DENSE_SPREAD = (1.0, 1.5, 1.2, 0.9, 1.6, 1.2, 1.2, 0.8, 1.1, 0.6, 0.8, 0.8, 1.0)

# (fields, rate): fields missing together, as in the real sample. I1..I13 are 0..12, C1..C26 are 13..38.
_MISSING_BLOCKS: tuple[tuple[tuple[int, ...], float], ...] = (
    ((0, 9), 0.448),
    ((2,), 0.204),
    ((3, 12), 0.198),
    ((4,), 0.049),
    ((5,), 0.251),
    ((6, 8, 10), 0.049),
    ((7,), 0.001),
    ((11,), 0.773),
    ((13 + 2, 13 + 3, 13 + 11, 13 + 15, 13 + 20, 13 + 23), 0.036),
    ((13 + 5,), 0.133),
    ((13 + 18, 13 + 19, 13 + 24, 13 + 25), 0.450),
    ((13 + 21,), 0.818),
)


class SyntheticCriteo:
    """Generator of encoded Criteo-schema rows: ids already in [0, card), 0 = missing."""

    def __init__(self, seed: int = 0, vocab_cap: int = 10_000) -> None:
        self.seed = seed
        self.vocab_cap = vocab_cap
        # Id 0 of each table is 'missing', ids 1.. are values: the same tables as ModelConfig's default.
        self.cardinalities = capped_criteo_cardinalities(vocab_cap)
        rng = np.random.default_rng([seed, 0xC1])
        n_cat = len(self.cardinalities)
        self._cdfs = [np.cumsum(np.arange(1, c, dtype=np.float64) ** -ZIPF_EXPONENT) for c in self.cardinalities]
        for cdf in self._cdfs:
            cdf /= cdf[-1]
        # Planted model: per-id first-order weight and latent vector; per dense field a weight and a latent.
        self._first = [rng.normal(0, 0.35, c) for c in self.cardinalities]
        self._latent = [rng.normal(0, 1.0, (c, _PLANTED_DIM)) / np.sqrt(_PLANTED_DIM) for c in self.cardinalities]
        self._dense_weight = rng.normal(0, 0.15, 13)
        self._dense_latent = rng.normal(0, 0.3, (13, _PLANTED_DIM))
        for latent in self._latent:
            latent[0] = 0.0  # a missing id carries no interaction
        self._pair_scale = 0.55
        self._triples = rng.choice(n_cat, size=(6, 3), replace=False) if n_cat >= 18 else np.zeros((0, 3), int)
        self._triple_scale = 1.2
        self._missing_i1_effect = -0.55  # real data: positive rate 0.156 with I1 missing vs 0.269 present
        self._bias = 0.0
        self._bias = self._calibrate_bias()

    def _calibrate_bias(self) -> float:
        logits = self._logits(*self._features(np.random.default_rng([self.seed, 0xB1A5]), 65_536))
        low, high = -10.0, 10.0
        for _ in range(60):
            mid = (low + high) / 2
            if (1 / (1 + np.exp(-(logits + mid)))).mean() > POSITIVE_RATE:
                high = mid
            else:
                low = mid
        return (low + high) / 2

    def _features(self, rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
        medians = np.log(np.asarray(_DENSE_MEDIANS))
        dense = np.floor(np.exp(rng.normal(medians, _DENSE_SPREAD, (rows, 13))))
        dense[:, 1] -= (rng.random(rows) < 0.098) * 3  # I2 is sometimes negative
        ids = np.empty((rows, len(self.cardinalities)), dtype=np.int64)
        for j, cdf in enumerate(self._cdfs):
            ids[:, j] = np.searchsorted(cdf, rng.random(rows), side="right").clip(max=len(cdf) - 1) + 1
        for fields, rate in _MISSING_BLOCKS:
            missing = rng.random(rows) < rate
            for field in fields:
                if field < 13:
                    dense[missing, field] = np.nan
                else:
                    ids[missing, field - 13] = 0
        return dense, ids

    def _logits(self, dense: np.ndarray, ids: np.ndarray) -> np.ndarray:
        present = ~np.isnan(dense)
        x = np.where(present, np.log1p(np.maximum(np.nan_to_num(dense), 0.0)), 0.0)
        # Fixed centring and scale (not batch statistics): a row's label depends on that row only.
        x = (x - np.log1p(_DENSE_MEDIANS)) / np.asarray(_DENSE_SPREAD) * present
        z = self._bias + x @ self._dense_weight + self._missing_i1_effect * ~present[:, 0]
        vectors = np.stack([self._latent[j][ids[:, j]] for j in range(ids.shape[1])], axis=1)  # (rows, C, k)
        vectors = np.concatenate([vectors, x[:, :, None] * self._dense_latent[None]], axis=1)
        for j in range(ids.shape[1]):
            z += self._first[j][ids[:, j]] * (ids[:, j] > 0)
        total = vectors.sum(1)
        z += self._pair_scale * 0.5 * ((total**2).sum(1) - (vectors**2).sum((1, 2))) / np.sqrt(vectors.shape[1])
        for a, b, c in self._triples:
            z += self._triple_scale * (vectors[:, a] * vectors[:, b] * vectors[:, c]).sum(1)
        return z

    def generate(self, rows: int, start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows [start, start + rows): (raw dense float64 with NaN, ids int64, labels float32)."""
        first_block, last_block = start // _BLOCK_ROWS, (start + rows - 1) // _BLOCK_ROWS
        parts = []
        for block in range(first_block, last_block + 1):
            rng = np.random.default_rng([self.seed, 0xDA7A, block])
            dense, ids = self._features(rng, _BLOCK_ROWS)
            probability = 1 / (1 + np.exp(-self._logits(dense, ids)))
            labels = (rng.random(_BLOCK_ROWS) < probability).astype(np.float32)
            parts.append((dense, ids, labels, probability))
        dense, ids, labels, _ = (np.concatenate(p) for p in zip(*parts, strict=True))
        lo = start - first_block * _BLOCK_ROWS
        return dense[lo : lo + rows], ids[lo : lo + rows], labels[lo : lo + rows]

    def bayes_logloss(self, rows: int, start: int = 0) -> float:
        """Expected logloss of the true probabilities on these rows: the noise floor."""
        dense, ids, _ = self.generate(rows, start)
        p = np.clip(1 / (1 + np.exp(-self._logits(dense, ids))), 1e-7, 1 - 1e-7)
        return float(-(p * np.log(p) + (1 - p) * np.log(1 - p)).mean())
