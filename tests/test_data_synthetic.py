from __future__ import annotations

import numpy as np
import torch
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.data.synthetic import SyntheticCriteo
from unimixer_plan.mixers import ModelConfig, capped_criteo_cardinalities


def test_deterministic_by_seed_and_prefix_stable():
    a = SyntheticCriteo(seed=3, vocab_cap=500)
    dense, ids, labels = a.generate(20_000)
    dense2, ids2, labels2 = SyntheticCriteo(seed=3, vocab_cap=500).generate(20_000)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(np.isnan(dense), np.isnan(dense2))
    # a longer request starts with the same rows; an offset request is the same slice
    _, longer_ids, _ = a.generate(40_000)
    np.testing.assert_array_equal(longer_ids[:20_000], ids)
    _, middle_ids, _ = a.generate(1_000, start=19_500)
    np.testing.assert_array_equal(middle_ids[:500], ids[19_500:])
    _, other_ids, _ = SyntheticCriteo(seed=4, vocab_cap=500).generate(1_000)
    assert not np.array_equal(other_ids, ids[:1_000])


def test_follows_the_criteo_schema_and_rates():
    data = load_data(DataSpec(seed=0, vocab_cap=1_000, synthetic_val_rows=8_192), train_rows=50_000)
    assert data.synthetic and "SYNTHETIC" in data.description
    assert data.num_dense == 13
    assert data.cardinalities == capped_criteo_cardinalities(1_000)
    sparse = data.train.sparse
    assert sparse.shape == (50_000, 26)
    assert bool((sparse >= 0).all()) and bool((sparse < torch.tensor(data.cardinalities)).all())
    assert abs(data.train.positive_rate - 0.256) < 0.02
    assert abs(data.val.positive_rate - 0.256) < 0.02
    # missing blocks as in real Criteo: I1 with I10 (44.8 %), C22 alone (81.8 %)
    i1_missing = (data.train.dense[:, 0] == -1).numpy()
    assert abs(i1_missing.mean() - 0.448) < 0.01
    np.testing.assert_array_equal(i1_missing, (data.train.dense[:, 9] == -1).numpy())
    assert abs((sparse[:, 21] == 0).float().mean().item() - 0.818) < 0.01
    # Zipf-like: the most frequent id of a large table is far above uniform
    counts = torch.bincount(sparse[:, 2], minlength=data.cardinalities[2])[1:]
    assert counts.max().item() > 50 * counts.float().mean().item()
    assert data.noise_floor_logloss is not None and data.noise_floor_logloss < 0.5
    # a model config with the default schema fits the synthetic default as it is
    assert ModelConfig(family="wukong", n_tokens=2, d_model=4, depth=1, rank=1).cardinalities == (
        SyntheticCriteo().cardinalities
    )
