"""Load a dataset into encoded train/validation tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from unimixer_plan.data.preprocess import apply_vocabulary, encode_dense, fit_vocabulary, hash_ids
from unimixer_plan.data.reader import read_table
from unimixer_plan.data.schema import CRITEO_SCHEMA, TableSchema, load_schema
from unimixer_plan.data.synthetic import SyntheticCriteo
from unimixer_plan.errors import PlanError

DATASETS = ("criteo",)


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from and how it is encoded; part of every plan's inputs."""

    dataset: str = "criteo"
    path: str | None = None  # None: the synthetic generator of the dataset's schema
    schema_path: str | None = None  # a user's own table schema (YAML)
    val_fraction: float = 0.2  # real data: the last rows (by file order) validate
    min_count: int = 10  # vocabulary threshold, fit on the training split (BARS Criteo_x4 uses 10)
    max_vocab: int = 100_000  # per categorical column, ids beyond map to OOV
    hash_buckets: int | None = None  # hash instead of a vocabulary
    max_rows: int | None = None  # read at most this many rows of a real file
    synthetic_val_rows: int = 32_768
    vocab_cap: int = 10_000  # synthetic tables: Criteo cardinalities capped at this
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS and self.schema_path is None:
            raise PlanError(
                f"--dataset {self.dataset!r}: unknown; allowed: {', '.join(DATASETS)} "
                "(or describe your own table with --schema FILE and --data PATH)"
            )
        if self.schema_path is not None and self.path is None:
            raise PlanError(f"--schema {self.schema_path}: needs --data PATH, the file it describes")
        if not 0 < self.val_fraction < 1:
            raise PlanError(f"--val-fraction {self.val_fraction}: must be between 0 and 1")
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


@dataclass(frozen=True)
class EncodedSplit:
    dense: torch.Tensor  # (rows, num_dense) float32
    sparse: torch.Tensor  # (rows, num_categorical) int64, column j in [0, cardinalities[j])
    labels: torch.Tensor  # (rows,) float32

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def positive_rate(self) -> float:
        return float(self.labels.mean()) if len(self) else float("nan")


@dataclass(frozen=True)
class CTRData:
    description: str
    synthetic: bool
    num_dense: int
    cardinalities: tuple[int, ...]
    train: EncodedSplit
    val: EncodedSplit
    noise_floor_logloss: float | None = None  # synthetic only: Bayes logloss of the validation rows

    @property
    def schema(self) -> dict[str, object]:
        """The ModelConfig fields this data fixes."""
        return {"num_dense": self.num_dense, "cardinalities": self.cardinalities}


def _split(dense: np.ndarray, ids: np.ndarray, labels: np.ndarray) -> EncodedSplit:
    return EncodedSplit(
        dense=torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)),
        sparse=torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
        labels=torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32)),
    )


def load_data(spec: DataSpec, train_rows: int = 65_536) -> CTRData:
    """Load ``spec``. ``train_rows`` sizes the synthetic training split (real files use all rows)."""
    if spec.synthetic:
        return _synthetic(spec, train_rows)
    schema = load_schema(spec.schema_path) if spec.schema_path else CRITEO_SCHEMA
    return _real(spec, schema)


def _synthetic(spec: DataSpec, train_rows: int) -> CTRData:
    generator = SyntheticCriteo(seed=spec.seed, vocab_cap=spec.vocab_cap)
    # Validation rows come after every training row a fidelity could ask for, from the same stream.
    val_start = 1 << 40
    dense, ids, labels = generator.generate(train_rows)
    val_dense, val_ids, val_labels = generator.generate(spec.synthetic_val_rows, start=val_start)
    return CTRData(
        description=f"criteo (SYNTHETIC: generated, seed {spec.seed}, tables capped at {spec.vocab_cap})",
        synthetic=True,
        num_dense=13,
        cardinalities=generator.cardinalities,
        train=_split(encode_dense(dense), ids, labels),
        val=_split(encode_dense(val_dense), val_ids, val_labels),
        noise_floor_logloss=generator.bayes_logloss(spec.synthetic_val_rows, start=val_start),
    )


def _real(spec: DataSpec, schema: TableSchema) -> CTRData:
    raw = read_table(Path(spec.path), schema, max_rows=spec.max_rows)
    n_val = max(1, round(len(raw) * spec.val_fraction))
    n_train = len(raw) - n_val
    if n_train < 1:
        raise PlanError(f"--data {spec.path}: {len(raw)} rows are too few to split off a validation part")
    dense = encode_dense(raw.dense)
    if spec.hash_buckets:
        ids = np.stack([hash_ids(raw.categorical[:, j], spec.hash_buckets) for j in range(raw.categorical.shape[1])], 1)
        cardinalities = (spec.hash_buckets,) * raw.categorical.shape[1]
    else:
        vocabularies = [
            fit_vocabulary(raw.categorical[:n_train, j], spec.min_count, spec.max_vocab)
            for j in range(raw.categorical.shape[1])
        ]
        columns = [apply_vocabulary(raw.categorical[:, j], v) for j, v in enumerate(vocabularies)]
        ids = np.stack(columns, 1) if columns else np.zeros((len(raw), 0), dtype=np.int64)
        cardinalities = tuple(len(v) + 2 for v in vocabularies)
    return CTRData(
        description=f"{schema.name} (real: {spec.path}, {len(raw):,} rows, last {n_val:,} validate)",
        synthetic=False,
        num_dense=len(schema.dense),
        cardinalities=cardinalities,
        train=_split(dense[:n_train], ids[:n_train], raw.labels[:n_train]),
        val=_split(dense[n_train:], ids[n_train:], raw.labels[n_train:]),
    )
