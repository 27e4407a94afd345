"""Where TorchRec puts the tables (its EmbeddingShardingPlanner), and which fused optimiser updates them.

Decisions, where TorchRec leaves a choice:

- **Sharding types: table-wise** (each table on one rank), TorchRec's planner placing the tables;
  a table too large for one device is split, by rows on cuda, by columns on cpu (FBGEMM's CPU
  kernels have no row-wise sharding). A split is only offered when whole tables cannot fit: the
  tables here are narrow (8-32 wide), and TorchRec otherwise picks one-shard column-wise for them.
  Data-parallel is excluded so that every table is updated by the fused optimiser on its owner (a
  replicated table would be trained by DDP with dense gradients instead).
- **Kernel: fused** (FBGEMM's table-batched embedding with the optimiser applied in the backward).
- **Memory:** ``device_memory_gb`` is each device's capacity (HBM on cuda, host memory on cpu);
  15 % of it is set aside for the dense part, activations and buffers (TorchRec's
  ``FixedPercentageStorageReservation``); the planner counts weights, optimiser state and I/O.

Fused optimiser (:func:`fused_optimizer`), mapped from the project trainer's
``TrainSettings.embedding_optimizer``:

- ``sparse_adam`` (torch SparseAdam: moments and update of the looked-up rows only): on cuda,
  FBGEMM ``ADAM``, the same lazy Adam on the rows a batch looks up (betas 0.9/0.999, eps 1e-8,
  no weight decay). On cpu, FBGEMM ``EXACT_ADAGRAD``: FBGEMM's CPU kernels have no Adam (only SGD
  and Adagrad variants), and exact Adagrad is the per-element adaptive rule left; it runs at the
  project's Adagrad rate (10x the dense rate) with torch Adagrad's eps 1e-10, i.e. exactly the
  project trainer's ``adagrad`` choice, which it measured level with SparseAdam (README).
- ``adagrad`` (torch Adagrad on sparse gradients): FBGEMM ``EXACT_ADAGRAD`` everywhere.
- ``adam`` (dense Adam moving every row): refused; a fused optimiser updates looked-up rows only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.embedding_tables import GB, check_fits, embedding_tables, format_bytes
from unimixer_plan.mixers.torchrec_model import SPARSE_ARCH, TorchRecModel, require_torchrec

# Tried in order per compute device: whole tables first; a split only when they cannot fit (FBGEMM's
# CPU kernels offer no row-wise sharding, so there a table is split by columns).
SHARDING_TYPES = {
    "cuda": (("table_wise", "row_wise"), ("table_wise", "row_wise", "column_wise")),
    "cpu": (("table_wise",), ("table_wise", "column_wise")),
}
ALLOWED = "sparse_adam, adagrad"
RESERVED_SHARE = 0.15
ADAGRAD_EPS = 1e-10  # torch.optim.Adagrad's, which the project trainer uses (FBGEMM's default is 1e-8)


@dataclass(frozen=True)
class FusedOptimizer:
    """The optimiser TorchRec fuses into the tables' backward: a torch optimiser class that
    TorchRec maps to an FBGEMM kernel, its arguments, and what it is called there."""

    optimizer: type[torch.optim.Optimizer]
    kwargs: dict[str, float]
    fbgemm_name: str
    project_rule: str  # the project trainer's embedding_optimizer whose learning-rate rule it follows

    def describe(self) -> str:
        return f"{self.fbgemm_name} (fused, lr {self.kwargs['lr']:.3g})"


def fused_optimizer(
    embedding_optimizer: str, compute_device: str, learning_rate: Callable[[str], float]
) -> FusedOptimizer:
    """The fused optimiser for the project's ``embedding_optimizer`` on ``compute_device`` ("cpu" or
    "cuda"); ``learning_rate(rule)`` gives the rate of the project's rule ``rule`` (sparse_adam or
    adagrad) that the chosen kernel follows."""
    if embedding_optimizer == "adam":
        raise PlanError(
            "embedding_optimizer 'adam' (dense Adam over every row): TorchRec's fused optimisers update only "
            f"the rows a batch looks up; allowed with --engine torchrec: {ALLOWED}"
        )
    if embedding_optimizer == "sparse_adam" and compute_device == "cuda":
        kwargs = {"lr": learning_rate("sparse_adam"), "eps": 1e-8}
        return FusedOptimizer(torch.optim.Adam, kwargs, "ADAM", "sparse_adam")
    if embedding_optimizer in ("sparse_adam", "adagrad"):
        kwargs = {"lr": learning_rate("adagrad"), "eps": ADAGRAD_EPS}
        return FusedOptimizer(torch.optim.Adagrad, kwargs, "EXACT_ADAGRAD", "adagrad")
    raise PlanError(f"embedding_optimizer {embedding_optimizer!r}: allowed with --engine torchrec: {ALLOWED}")


def attach_optimizer(model: TorchRecModel, optimizer: FusedOptimizer) -> None:
    """Mark the tables' weights for ``optimizer`` in the backward (read by TorchRec's sharder,
    and by its planner for the optimiser state's size)."""
    from torch.distributed.optim import _apply_optimizer_in_backward

    # A copy: TorchRec rewrites the arguments in place into FBGEMM's names.
    _apply_optimizer_in_backward(optimizer.optimizer, model.sparse_arch.parameters(), dict(optimizer.kwargs))


def plan_sharding(
    model: TorchRecModel,
    world_size: int,
    compute_device: str,
    device_memory_gb: float | None,
    batch_size: int,
    process_group: Any = None,
    world_size_option: str = "--world-size",
    local_world_size: int | None = None,
) -> Any:
    """TorchRec's ShardingPlan of ``model.sparse_arch`` over ``world_size`` devices
    (``local_world_size`` per host; default all on one); with a ``process_group``, rank 0's plan is
    broadcast, so every rank shards alike. Raises PlanError when the tables cannot fit."""
    require_torchrec("the TorchRec sharding plan")
    from torchrec.distributed.embedding_types import EmbeddingComputeKernel
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.planner import EmbeddingShardingPlanner
    from torchrec.distributed.planner.storage_reservations import FixedPercentageStorageReservation
    from torchrec.distributed.planner.types import (
        KernelConfig,
        ParameterConstraints,
        PlannerError,
        TopologyFactory,
        TrainerConfig,
    )

    check_fits(embedding_tables(model.config), world_size, device_memory_gb, world_size_option)
    capacity = {}
    if device_memory_gb is not None:
        key = "hbm_cap_bytes" if compute_device == "cuda" else "ddr_cap_bytes"
        capacity[key] = int(device_memory_gb * GB)
    topology = TopologyFactory.create_topology(
        TrainerConfig(world_size=world_size, local_world_size=local_world_size or world_size, **capacity),
        kernel_config=KernelConfig(compute_device=compute_device),
    )
    sharders = [EmbeddingBagCollectionSharder()]
    error = None
    for sharding_types in SHARDING_TYPES[compute_device]:
        constraints = {
            # min_partition: TorchRec's default (64 columns) could never split these narrow tables;
            # 4 is the narrowest shard FBGEMM takes.
            spec.name: ParameterConstraints(
                sharding_types=list(sharding_types),
                compute_kernels=[EmbeddingComputeKernel.FUSED.value],
                min_partition=4,
            )
            for spec in model.specs
        }
        planner = EmbeddingShardingPlanner(
            topology=topology,
            batch_size=batch_size,
            constraints=constraints,
            storage_reservation=FixedPercentageStorageReservation(RESERVED_SHARE),
            debug=False,
        )
        try:
            # Every rank plans (deterministic, and a refusal then stops every rank alike), rank 0's plan is kept.
            plan = planner.plan(model, sharders)
            break
        except PlannerError as err:
            error = err
    else:
        memory = f"{device_memory_gb:g} GB" if device_memory_gb is not None else "TorchRec's default capacity"
        weights = format_bytes(embedding_tables(model.config).total_bytes)
        raise PlanError(
            f"--device-memory-gb {device_memory_gb}: TorchRec's planner cannot place the tables "
            f"({weights} of fp32 weights, plus optimiser state and buffers) on "
            f"{world_size} device(s) of {memory} ({str(error).splitlines()[0][:160]}); allowed: more memory per "
            f"device or a larger {world_size_option}"
        ) from None
    if process_group is not None:
        import torch.distributed as dist

        held = [plan]
        dist.broadcast_object_list(held, src=0, group=process_group)
        plan = held[0]
    return plan


def describe_plan(plan: Any) -> dict[str, dict[str, Any]]:
    """{table: {"sharding_type": ..., "ranks": [...]}} for every table, in the plan's order."""
    return {
        table: {"sharding_type": sharding.sharding_type, "ranks": sorted(set(sharding.ranks or []))}
        for table, sharding in plan.plan[SPARSE_ARCH].items()
    }


def sharding_plan(
    model_config: ModelConfig,
    world_size: int,
    device_memory_gb: float | None,
    compute_device: str = "cpu",
    batch_size: int = 256,
    embedding_optimizer: str = "sparse_adam",
    world_size_option: str = "--world-size",
) -> dict[str, dict[str, Any]]:
    """The sharding plan of a config for a named topology, planned without any process group and
    without allocating a table (the tables are built on the meta device)."""
    model = TorchRecModel(model_config, device="meta")
    # The rate sizes nothing; the optimiser's kind sizes its state, which the planner counts.
    attach_optimizer(model, fused_optimizer(embedding_optimizer, compute_device, lambda rule: 1e-3))
    plan = plan_sharding(
        model, world_size, compute_device, device_memory_gb, batch_size, world_size_option=world_size_option
    )
    return describe_plan(plan)
