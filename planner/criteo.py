"""The Criteo display-advertising schema: dense field count and categorical cardinalities.

A leaf module (it imports only the error root), shared by the synthetic data generator and
the model zoo's default config, so that neither depends on the other.
"""

from __future__ import annotations

from unimixer_plan.errors import ConfigError

# The Criteo Kaggle schema: 13 integer fields and the raw cardinalities of C1..C26
# (full data, no frequency threshold; see shared/data/README.md).
CRITEO_NUM_DENSE = 13
CRITEO_CARDINALITIES: tuple[int, ...] = (
    1460,
    583,
    10131227,
    2202608,
    305,
    24,
    12517,
    633,
    3,
    93145,
    5683,
    8351593,
    3194,
    27,
    14992,
    5461306,
    10,
    5652,
    2173,
    4,
    7046547,
    18,
    15,
    286181,
    105,
    142572,
)


# The Kaggle file's 45,840,617 rows split 8:1:1 by file order: the training part, the data a production
# model sized for --dataset criteo trains on (unless --train-samples says otherwise).
CRITEO_KAGGLE_ROWS = 45_840_617
CRITEO_KAGGLE_TRAIN_ROWS = 36_672_493


def capped_criteo_cardinalities(cap: int) -> tuple[int, ...]:
    """Criteo's cardinalities with each table capped at ``cap`` rows (hashing beyond)."""
    if cap < 1:
        raise ConfigError("vocab_cap", cap, "must be >= 1")
    return tuple(min(c, cap) for c in CRITEO_CARDINALITIES)
