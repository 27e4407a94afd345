"""The one typed, frozen plan configuration that flows from the CLI to search, training,
report and export. It is written to plan.json and read back by ``--resume``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from unimixer_plan.data import DataSpec
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers import list_mixers, list_searchable
from unimixer_plan.training.trainer import TrainSettings

# Distinct training samples per candidate of a direct search and of a ladder's first rung (each trains
# to early stopping on them; a ladder doubles them per rung, unimixer_plan.scaling.design).
FIDELITY_PRESETS = {"quick": 8_192, "standard": 32_768, "full": 131_072}
# Trials in all, measurements included: the default 2e9 ladder (4 rungs, 3 families) runs 24 search
# trials, 6 per rung, and 21 measurements of the rungs' best shapes.
DEFAULT_TRIALS = 45


def parse_fidelity(value: str) -> int:
    if value in FIDELITY_PRESETS:
        return FIDELITY_PRESETS[value]
    try:
        samples = int(float(value.replace("_", "")))
    except ValueError:
        samples = 0
    if samples < 1_000:
        allowed = " | ".join(FIDELITY_PRESETS)
        raise PlanError(f"--fidelity {value!r}: use {allowed}, or a number of training samples >= 1000")
    return samples


def _positive_finite(option: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise PlanError(f"{option} {value}: must be a finite number > 0")


@dataclass(frozen=True)
class Budget:
    """Serving budgets; a candidate must meet every one that is set."""

    flops: float | None = None  # forward FLOPs per sample
    params: float | None = None  # dense parameters
    latency_ms: float | None = None  # forward latency at batch_size on device
    batch_size: int = 256
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.flops is None and self.params is None and self.latency_ms is None:
            raise PlanError("no budget given: pass at least one of --flops, --params, --latency-ms")
        _positive_finite("--flops", self.flops)
        _positive_finite("--params", self.params)
        _positive_finite("--latency-ms", self.latency_ms)
        if self.batch_size < 1:
            raise PlanError(f"--batch-size {self.batch_size}: must be >= 1")

    def admits(self, flops: float, params: float, latency_ms: float) -> bool:
        """Whether these costs meet every budget that is set (a NaN latency meets no latency budget)."""
        return (
            (self.flops is None or flops <= self.flops)
            and (self.params is None or params <= self.params)
            and (self.latency_ms is None or latency_ms <= self.latency_ms)
        )

    def margins(self, flops: float, params: float, latency_ms: float | None) -> dict[str, float]:
        """Share of each budget left unused (0.1 = 10 % under; negative = over)."""
        out = {}
        for name, limit, value in (
            ("flops", self.flops, flops),
            ("params", self.params, params),
            ("latency_ms", self.latency_ms, latency_ms),
        ):
            if limit is not None and value is not None:
                out[name] = 1.0 - value / limit
        return out


@dataclass(frozen=True)
class PlanConfig:
    budget: Budget
    data: DataSpec = field(default_factory=DataSpec)
    families: tuple[str, ...] = ()  # empty = every family of the search space
    trials: int = DEFAULT_TRIALS
    fidelity: int = FIDELITY_PRESETS["quick"]
    seed: int = 0
    out: str = "runs"
    embed_dim: int | None = None  # None: searched (the space's embed_dim domain); else fixed
    space_path: str | None = None
    ray_address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    train: TrainSettings = field(default_factory=TrainSettings)
    time_budget_min: float | None = None  # wall-clock limit on the searches (trials already running finish)
    proxy_max_flops: float | None = (
        None  # largest proxy; default from fidelity and device (unimixer_plan.scaling.ladder)
    )
    # distinct samples the production model trains on: a ladder's prediction is for them (None: the
    # dataset's training rows; for the synthetic Criteo default the Kaggle file's)
    train_samples: int | None = None
    # after the choice: the chosen configuration and the runner-up re-trained with this many seeds and
    # scored on the test split (unimixer_plan.retrain_on_test); 0 skips it
    test_seeds: int = 3
    verbose: bool = False

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in list_searchable()]
        if unknown:
            kind = "a baseline, not searched" if unknown[0] in list_mixers() else "unknown"
            raise PlanError(f"--families {unknown[0]!r}: {kind}; allowed: {', '.join(list_searchable())}")
        if self.trials < 1:
            raise PlanError(f"--trials {self.trials}: must be >= 1")
        if self.cpus_per_trial <= 0:
            raise PlanError(f"--cpus-per-trial {self.cpus_per_trial}: must be > 0")
        if self.gpus_per_trial < 0:
            raise PlanError(f"--gpus-per-trial {self.gpus_per_trial}: must be >= 0")
        if self.time_budget_min is not None and not (math.isfinite(self.time_budget_min) and self.time_budget_min > 0):
            raise PlanError(f"--time-budget {self.time_budget_min}: must be a finite number of minutes > 0")
        _positive_finite("--proxy-max-flops", self.proxy_max_flops)
        if self.embed_dim is not None and self.embed_dim < 1:
            raise PlanError(f"--embed-dim {self.embed_dim}: must be >= 1")
        if self.test_seeds < 0:
            raise PlanError(f"--test-seeds {self.test_seeds}: must be >= 0 (0 skips the test-split check)")
        if self.train_samples is not None and self.train_samples < 1:
            raise PlanError(f"--train-samples {self.train_samples}: must be >= 1 distinct training sample")

    @property
    def objectives(self) -> tuple[tuple[str, str], ...]:
        """(column, direction) of the Pareto objectives: quality and FLOPs, plus each other budget."""
        objectives = [("val_logloss", "min"), ("flops", "min")]
        if self.budget.params is not None:
            objectives.append(("params_dense", "min"))
        if self.budget.latency_ms is not None:
            objectives.append(("latency_ms", "min"))
        return tuple(objectives)

    @property
    def halving_epochs(self) -> tuple[int, ...]:
        """Epochs after which successive halving compares trials: every trial at the same epoch,
        past the temperature anneal, scored on the same validation subsample."""
        first = math.ceil(self.train.anneal_epochs) + 1
        return (first, 2 * first)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanConfig:
        data = dict(data)
        return cls(
            budget=Budget(**data.pop("budget")),
            data=DataSpec.from_record(data.pop("data"), "plan.json"),
            families=tuple(data.pop("families")),
            train=TrainSettings(**data.pop("train")),
            **data,
        )
