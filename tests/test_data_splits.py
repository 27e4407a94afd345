"""Train / validation / test: by file order 8:1:1, or separate files; the description says which."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from unimixer_plan.data import CRITEO_SCHEMA, DataSpec, load_data
from unimixer_plan.data.reader import read_table
from unimixer_plan.errors import PlanError

from tests.conftest import SHARED_CRITEO

RAW = SHARED_CRITEO / "raw_tsv"
needs_criteo = pytest.mark.skipif(not RAW.is_dir(), reason="real Criteo samples not found")


@needs_criteo
def test_separate_validation_and_test_files():
    spec = DataSpec(path=str(RAW / "train.tsv"), valid_path=str(RAW / "dev.tsv"), test_path=str(RAW / "test.tsv"))
    data = load_data(spec)
    assert (len(data.train), len(data.val), len(data.test)) == (7_200, 409, 391)
    assert f"validation from {RAW / 'dev.tsv'}, test from {RAW / 'test.tsv'}" in data.description
    dev = read_table(RAW / "dev.tsv", CRITEO_SCHEMA)
    np.testing.assert_array_equal(data.val.labels.numpy(), dev.labels)
    # The vocabulary is the training file's: a dev value unseen in training is out of vocabulary (id 1).
    train = read_table(RAW / "train.tsv", CRITEO_SCHEMA)
    seen = set(train.categorical[:, 2].tolist())
    unseen = np.array([h not in seen and h != 0 for h in dev.categorical[:, 2].tolist()])
    assert unseen.any() and (data.val.sparse[unseen, 2] == 1).all()


@needs_criteo
def test_a_validation_file_alone_leaves_the_test_split_to_the_end_of_the_training_file():
    data = load_data(DataSpec(path=str(RAW / "train.tsv"), valid_path=str(RAW / "dev.tsv")))
    assert (len(data.train), len(data.val), len(data.test)) == (6_480, 409, 720)
    train = read_table(RAW / "train.tsv", CRITEO_SCHEMA)
    np.testing.assert_array_equal(data.test.labels.numpy(), train.labels[6_480:])
    assert "test the last 10% of the training file by file order" in data.description


@needs_criteo
def test_fractions_set_the_shares():
    data = load_data(DataSpec(path=str(RAW / "train.tsv"), val_fraction=0.2, test_fraction=0.05))
    assert (len(data.train), len(data.val), len(data.test)) == (5_400, 1_440, 360)
    assert "split by file order 7.5:2:0.5" in data.description


def test_fractions_must_leave_training_rows():
    with pytest.raises(PlanError, match=r"--val-fraction 0.5 \+ --test-fraction 0.5: must leave training rows"):
        DataSpec(path="x.csv", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(PlanError, match=r"--test-fraction 0: must be between 0 and 1"):
        DataSpec(path="x.csv", test_fraction=0)
    with pytest.raises(PlanError, match=r"--valid v.csv: needs --data PATH"):
        DataSpec(valid_path="v.csv")


def test_synthetic_data_has_a_disjoint_test_split():
    data = load_data(DataSpec(vocab_cap=200, synthetic_val_rows=2_000), train_rows=2_000)
    assert len(data.test) == len(data.val) == 2_000
    assert not torch.equal(data.test.sparse, data.val.sparse) and not torch.equal(data.test.sparse, data.train.sparse)
    assert data.test_noise_floor_logloss is not None and 0.3 < data.test_noise_floor_logloss < 0.6
    assert data.test_noise_floor_logloss != data.noise_floor_logloss  # other rows, another floor
    assert "train 2,000 / validation 2,000 / test 2,000 rows from disjoint ranges" in data.description


def test_a_record_from_before_the_test_split_is_refused_on_real_data():
    old = {"dataset": "criteo", "path": "/data/train.tsv", "val_fraction": 0.2, "seed": 0}
    with pytest.raises(PlanError, match=r"plan.json: recorded before real data had a test split"):
        DataSpec.from_record(old, "plan.json")
    # The synthetic splits are what they were (train, validation at 2^40); the test range is new.
    assert DataSpec.from_record({"dataset": "criteo", "path": None, "val_fraction": 0.2}, "plan.json").synthetic
    assert DataSpec.from_record({**old, "test_fraction": 0.1}, "plan.json").test_fraction == 0.1


def test_a_split_pickles_its_rows_out_of_band_for_rays_shared_object_store():
    import pickle

    from unimixer_plan.data.dataset import EncodedSplit

    rows = 10_000
    split = EncodedSplit(
        dense=torch.rand(rows, 13), sparse=torch.randint(0, 100, (rows, 26)), labels=torch.rand(rows).round()
    )
    buffers: list[pickle.PickleBuffer] = []
    in_band = pickle.dumps(split, protocol=5, buffer_callback=buffers.append)
    # Ray passes protocol 5 and keeps the buffers in shared memory: the rows must travel there, not in band
    assert len(in_band) < 1_000 and sum(b.raw().nbytes for b in buffers) == rows * (13 * 4 + 26 * 8 + 4)
    read_only = [np.frombuffer(b.raw(), dtype=np.uint8) for b in buffers]
    for array in read_only:
        array.flags.writeable = False  # as Ray hands them to a trial
    back = pickle.loads(in_band, buffers=read_only)
    assert all(torch.equal(getattr(back, f), getattr(split, f)) for f in ("dense", "sparse", "labels"))
    assert back.sparse.dtype == torch.int64 and back.sparse.shape == (rows, 26)


def test_spawned_torchrec_ranks_get_the_splits_through_shared_memory_not_a_copy():
    from multiprocessing.reduction import ForkingPickler

    from unimixer_plan.data.dataset import EncodedSplit
    from unimixer_plan.training.torchrec_launch import share_splits_as_tensors

    rows = 10_000  # 2.6 MB of rows
    split = EncodedSplit(dense=torch.rand(rows, 13), sparse=torch.randint(0, 9, (rows, 26)), labels=torch.ones(rows))
    share_splits_as_tensors()
    assert len(ForkingPickler.dumps(split)) < 10_000  # handles to shared memory, not the rows
