"""Load a dataset into encoded train / validation / test tensors.

Real files go through the streamed, cached pipeline (build.py); the tensors of a cached load are
``torch.from_numpy`` over memory-mapped arrays (zero-copy), so the trainer indexes them as it
indexes tensors in memory. The synthetic default draws its three splits from disjoint ranges of
one generator stream.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
from unimixer_plan.data.build import encode_files
from unimixer_plan.data.formats import FORMATS
from unimixer_plan.data.preprocess import encode_dense
from unimixer_plan.data.synthetic import SyntheticCriteo
from unimixer_plan.errors import PlanError

DATASETS = ("criteo",)
# The synthetic stream's splits: validation and test start far past any training fidelity.
SYNTHETIC_VAL_START = 1 << 40
SYNTHETIC_TEST_START = 1 << 41


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from and how it is encoded; part of every plan's inputs."""

    dataset: str = "criteo"
    path: str | None = None  # None: the synthetic generator of the dataset's schema
    schema_path: str | None = None  # a user's own table schema (YAML)
    val_fraction: float = 0.1  # real data without --valid: these rows after the training rows validate
    min_count: int = 10  # vocabulary threshold, fit on the training split (BARS Criteo_x4 uses 10)
    max_vocab: int = 100_000  # per categorical column, ids beyond map to OOV
    hash_buckets: int | None = None  # hash instead of a vocabulary
    max_rows: int | None = None  # read at most this many rows of a real file
    synthetic_val_rows: int = 32_768  # and as many test rows
    vocab_cap: int = 10_000  # synthetic tables: Criteo cardinalities capped at this
    seed: int = 0
    format: str | None = None  # None: by the file's extension (formats.py)
    positive_label: str | None = None  # None: labels 0/1 or -1/1
    valid_path: str | None = None  # a separate validation file (same format and columns)
    test_path: str | None = None  # a separate test file
    test_fraction: float = 0.1  # real data without --test: the last rows test (8:1:1, BARS Criteo_x4)
    cache: bool = True  # real data: keep the encoded arrays on disk (cache.py) and map them
    cache_dir: str | None = None  # None: $UNIMIXER_PLAN_CACHE_DIR or ~/.cache/unimixer-plan

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS and self.schema_path is None:
            raise PlanError(
                f"--dataset {self.dataset!r}: unknown; allowed: {', '.join(DATASETS)} "
                "(or describe your own table with --schema FILE and --data PATH)"
            )
        for option, value in (
            ("--schema", self.schema_path),
            ("--valid", self.valid_path),
            ("--test", self.test_path),
            ("--format", self.format),
            ("--positive-label", self.positive_label),
        ):
            if value is not None and self.path is None:
                raise PlanError(f"{option} {value}: needs --data PATH, the training file")
        if self.format is not None and self.format not in FORMATS:
            raise PlanError(f"--format {self.format!r}: unknown; allowed: {', '.join(FORMATS)}")
        if self.positive_label is not None and not self.positive_label.strip():
            raise PlanError("--positive-label: must name a label value, e.g. --positive-label click")
        for option, fraction in (("--val-fraction", self.val_fraction), ("--test-fraction", self.test_fraction)):
            if not 0 < fraction < 1:
                raise PlanError(f"{option} {fraction}: must be between 0 and 1")
        if self.valid_path is None and self.test_path is None and self.val_fraction + self.test_fraction >= 1:
            raise PlanError(
                f"--val-fraction {self.val_fraction} + --test-fraction {self.test_fraction}: must leave training rows "
                "(a sum below 1)"
            )
        if self.min_count < 1:
            raise PlanError(f"--min-count {self.min_count}: must be >= 1")
        if self.hash_buckets is not None and self.hash_buckets < 2:
            raise PlanError(f"--hash-buckets {self.hash_buckets}: must be >= 2")
        if self.vocab_cap < 3:
            raise PlanError(f"--vocab-cap {self.vocab_cap}: must be >= 3 (missing id and two values)")
        if self.max_vocab < 3:
            raise PlanError(f"--max-vocab {self.max_vocab}: must be >= 3 (missing, OOV and one value)")

    @property
    def synthetic(self) -> bool:
        return self.path is None

    @classmethod
    def from_record(cls, record: dict[str, object], where: str) -> DataSpec:
        """A spec as plan.json or chosen.yaml stored it. One stored before the test split (no
        ``test_fraction``) on a real file split it 80/20 into train and validation, which no spec
        reproduces now: resuming it would train and score other rows, so it is refused."""
        if record.get("path") is not None and "test_fraction" not in record:
            raise PlanError(
                f"{where}: recorded before real data had a test split (train/validation 80/20); "
                "start a new plan, or train with data options to say which split to use"
            )
        return cls(**record)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EncodedSplit:
    dense: torch.Tensor  # (rows, num_dense) float32
    sparse: torch.Tensor  # (rows, num_categorical) int64, column j in [0, cardinalities[j])
    labels: torch.Tensor  # (rows,) float32

    def __len__(self) -> int:
        return len(self.labels)

    def __reduce__(self) -> tuple:
        # Pickled as numpy arrays, not tensors: Ray keeps numpy buffers out of band in its shared-memory
        # object store, so each trial maps the node's one copy (read-only) where a tensor would be
        # unpickled into a private copy per trial process.
        return (_split_from_arrays, (self.dense.numpy(), self.sparse.numpy(), self.labels.numpy()))

    @property
    def positive_rate(self) -> float:
        return float(self.labels.mean()) if len(self) else float("nan")

    def head(self, rows: int) -> EncodedSplit:
        """The first ``rows`` rows, as views (a view pickles only its own rows)."""
        return EncodedSplit(self.dense[:rows], self.sparse[:rows], self.labels[:rows])

    def fingerprint(self) -> str:
        """A digest of the rows' contents: the same rows give the same digest on any machine."""
        digest = hashlib.sha256()
        for tensor in (self.dense, self.sparse, self.labels):
            digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class CTRData:
    description: str  # what the data is and how it was split, in words
    synthetic: bool
    num_dense: int
    cardinalities: tuple[int, ...]
    train: EncodedSplit
    val: EncodedSplit
    test: EncodedSplit  # held out: neither trains nor chooses (unimixer-plan train scores it)
    noise_floor_logloss: float | None = None  # synthetic only: Bayes logloss of the validation rows
    test_noise_floor_logloss: float | None = None  # synthetic only: Bayes logloss of the test rows
    cache_path: str | None = None  # real data: the cache entry the tensors map; None: in memory

    @property
    def schema(self) -> dict[str, object]:
        """The ModelConfig fields this data fixes."""
        return {"num_dense": self.num_dense, "cardinalities": self.cardinalities}

    def for_trials(self, train_rows: int) -> CTRData:
        """What a search's trials receive: the first ``train_rows`` training rows (a trial trains on a
        prefix of at most that many) and the validation split; never the test split."""
        return replace(self, train=self.train.head(train_rows), test=self.test.head(0))

    def trial_rows_record(self, train_rows: int) -> dict[str, object]:
        """The rows ``for_trials`` sends, as the run folder records them."""
        train, val = self.train.head(train_rows), self.val
        return {
            "train_rows": [0, len(train)],
            "train_fingerprint": train.fingerprint(),
            "val_rows": len(val),
            "val_fingerprint": val.fingerprint(),
        }


def _split_from_arrays(dense: np.ndarray, sparse: np.ndarray, labels: np.ndarray) -> EncodedSplit:
    """An unpickled split: tensors over the arrays as they arrive (Ray's are read-only shared memory,
    which training only reads)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return EncodedSplit(torch.from_numpy(dense), torch.from_numpy(sparse), torch.from_numpy(labels))


def _split(dense: np.ndarray, ids: np.ndarray, labels: np.ndarray) -> EncodedSplit:
    # Zero-copy for arrays already of the right type (a cache's memory maps), a copy otherwise.
    return EncodedSplit(
        dense=torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)),
        sparse=torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
        labels=torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32)),
    )


def load_data(spec: DataSpec, train_rows: int = 65_536) -> CTRData:
    """Load ``spec``. ``train_rows`` sizes the synthetic training split (real files use all rows)."""
    if spec.synthetic:
        return _synthetic(spec, train_rows)
    encoded = encode_files(spec)
    train, val, test = (encoded.splits[s] for s in ("train", "val", "test"))
    return CTRData(
        description=encoded.description,
        synthetic=False,
        num_dense=encoded.num_dense,
        cardinalities=encoded.cardinalities,
        train=_split(train[1], train[2], train[0]),
        val=_split(val[1], val[2], val[0]),
        test=_split(test[1], test[2], test[0]),
        cache_path=encoded.cache_path,
    )


def _synthetic(spec: DataSpec, train_rows: int) -> CTRData:
    generator = SyntheticCriteo(seed=spec.seed, vocab_cap=spec.vocab_cap)
    rows = spec.synthetic_val_rows
    dense, ids, labels = generator.generate(train_rows)
    val_dense, val_ids, val_labels = generator.generate(rows, start=SYNTHETIC_VAL_START)
    test_dense, test_ids, test_labels = generator.generate(rows, start=SYNTHETIC_TEST_START)
    return CTRData(
        description=(
            f"criteo (SYNTHETIC: generated, seed {spec.seed}, tables capped at {spec.vocab_cap}; "
            f"train {train_rows:,} / validation {rows:,} / test {rows:,} rows from disjoint ranges "
            "of one stream: rows 0.., 2^40.., 2^41..)"
        ),
        synthetic=True,
        num_dense=13,
        cardinalities=generator.cardinalities,
        train=_split(encode_dense(dense), ids, labels),
        val=_split(encode_dense(val_dense), val_ids, val_labels),
        test=_split(encode_dense(test_dense), test_ids, test_labels),
        noise_floor_logloss=generator.bayes_logloss(rows, start=SYNTHETIC_VAL_START),
        test_noise_floor_logloss=generator.bayes_logloss(rows, start=SYNTHETIC_TEST_START),
    )
