"""What a config's embedding tables cost: one table per categorical field, its rows, width and bytes.

Pure arithmetic on the config (no torch, no TorchRec), so the plan's summary, ``export --format
torchrec`` and the TorchRec build (``mixers.torchrec_model``) all name and size the tables the same
way:

- categorical field i (0-based, whatever its column is called) is feature ``C{i+1}`` and its table
  is ``t_C{i+1}``, as Criteo names its columns C1..C26;
- a table has ``cardinalities[i]`` rows of the family's row width (``MixerFamily.row_width_of``):
  ``embed_dim`` for the mixers, 1 for ``lr``, 1 + ``embed_dim`` for ``fm`` (each id's weight and
  factor side by side, so that every field is one lookup);
- bytes are fp32 weights only (4 per value). Optimiser state comes on top: Adam keeps 2 more
  values per weight, Adagrad 1; TorchRec's planner counts it when it places the tables;
- TorchRec stores each row padded to a multiple of 4 values (``torchrec_dim``, FBGEMM's kernels
  need it); the padding stays 0 and is dropped before the dense stack.

The project build keeps the same rows in one concatenated ``nn.Embedding`` per kind with per-field
offsets (``mixers.tokenizer.field_offsets``); its parameter count equals the total here
(``analytic_cost(config).params_embedding``), except that a schema without categorical fields has
one unused row there and no table here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from unimixer_plan.errors import PlanError
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.registry import get_family

BYTES_PER_VALUE = 4  # fp32
GB = 1e9  # --device-memory-gb is in decimal gigabytes, as device memory is sold


@dataclass(frozen=True)
class TableSpec:
    """One categorical field's table: ``rows`` x ``dim`` fp32 values, looked up by ``feature``."""

    name: str
    feature: str
    rows: int
    dim: int

    @property
    def bytes(self) -> int:
        return self.rows * self.dim * BYTES_PER_VALUE

    @property
    def torchrec_dim(self) -> int:
        """The width TorchRec stores: FBGEMM's table-batched kernels need a multiple of 4, so the
        TorchRec build pads narrower rows with columns that stay 0 (lr's width 1 becomes 4)."""
        return -(-self.dim // 4) * 4

    @property
    def torchrec_bytes(self) -> int:
        return self.rows * self.torchrec_dim * BYTES_PER_VALUE

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "bytes": self.bytes, "torchrec_dim": self.torchrec_dim}


@dataclass(frozen=True)
class EmbeddingTables:
    """Every table of a config, in field order, and their total."""

    tables: tuple[TableSpec, ...]

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    @property
    def total_torchrec_bytes(self) -> int:
        return sum(t.torchrec_bytes for t in self.tables)

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def largest(self) -> TableSpec | None:
        return max(self.tables, key=lambda t: t.bytes, default=None)

    def headline(self) -> str:
        """One line: "26 tables, 1,086,810 rows, 69.6 MB fp32 (largest t_C3: 10,000 x 16, 640 kB)"."""
        largest = self.largest
        if largest is None:
            return "no categorical field, no table"
        return (
            f"{len(self.tables)} tables, {self.total_rows:,} rows, {format_bytes(self.total_bytes)} fp32 "
            f"(largest {largest.name}: {largest.rows:,} x {largest.dim}, {format_bytes(largest.bytes)})"
        )

    def listing(self) -> str:
        """Every table as "t_C1 1,460x16", comma-separated."""
        return ", ".join(f"{t.name} {t.rows:,}x{t.dim}" for t in self.tables)

    def to_dict(self) -> dict[str, object]:
        return {
            "tables": [t.to_dict() for t in self.tables],
            "total_rows": self.total_rows,
            "total_bytes": self.total_bytes,
            "total_torchrec_bytes": self.total_torchrec_bytes,
            "dtype": "float32",
        }


def format_bytes(count: float) -> str:
    """Decimal units, as device memory is sold: 640 kB, 7.67 MB, 2.16 GB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count:.0f} B"


def feature_names(config: ModelConfig) -> list[str]:
    return [f"C{i + 1}" for i in range(len(config.cardinalities))]


def embedding_tables(config: ModelConfig) -> EmbeddingTables:
    dim = get_family(config.family).row_width_of(config)
    return EmbeddingTables(
        tuple(
            TableSpec(name=f"t_{feature}", feature=feature, rows=rows, dim=dim)
            for feature, rows in zip(feature_names(config), config.cardinalities, strict=True)
        )
    )


def check_fits(
    tables: EmbeddingTables, world_size: int, device_memory_gb: float | None, world_size_option: str = "--world-size"
) -> None:
    """Raise PlanError when the weights alone cannot fit on ``world_size`` devices of
    ``device_memory_gb`` each (None: no limit named). A single table larger than one device can
    still fit split by rows over several, so the bound is the total against all devices; TorchRec's
    planner then checks the placement with optimiser state and buffers."""
    if world_size < 1:
        raise PlanError(f"{world_size_option} {world_size}: must be >= 1")
    if device_memory_gb is None:
        return
    if not device_memory_gb > 0 or device_memory_gb == float("inf"):
        raise PlanError(f"--device-memory-gb {device_memory_gb}: must be a finite number > 0")
    capacity = world_size * device_memory_gb * GB
    if tables.total_torchrec_bytes > capacity:
        largest = tables.largest
        need = tables.total_torchrec_bytes / world_size / GB
        raise PlanError(
            f"--device-memory-gb {device_memory_gb:g}: the {len(tables.tables)} embedding tables need "
            f"{format_bytes(tables.total_torchrec_bytes)} of fp32 weights as TorchRec stores them (largest "
            f"{largest.name}: {largest.rows:,} x {largest.torchrec_dim} = {format_bytes(largest.torchrec_bytes)}), "
            f"more than {world_size} device(s) of {device_memory_gb:g} GB hold; allowed: at least {need:.3g} GB "
            f"per device at {world_size_option} "
            f"{world_size} (weights alone, before optimiser state), or more devices"
        )
