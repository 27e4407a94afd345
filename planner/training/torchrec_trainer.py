"""One rank of a TorchRec training run: the TorchRec build under DistributedModelParallel, trained by
the project's own protocol (``training.loop.run_epochs``: schedule, anneal, weight average, early
stopping, best epoch restored). Only the engine differs from ``trainer.evaluate``:

- **Start:** every rank builds the project model with the run's seed (the same initial weights as
  ``trainer.evaluate``), maps its tables into the TorchRec build and copies into the local shards
  the rows its ranks own. Each host therefore holds the full tables once, in CPU memory, at start.
- **Data:** the global batch is the project's (``TrainSettings.batch_size`` or its rule in the
  training rows, of the same seeded shuffle); rank r trains on its r-th share of it. Shares are padded to equal size (a
  repeated row with weight 0), so every rank runs the same collectives. The loss on rank r is
  (sum of its rows' losses) / (global batch rows): TorchRec sums the tables' gradients over ranks,
  which gives the project's batch mean; DDP averages the dense gradients, so these are multiplied
  back by the world size. Gradients thus equal one process's on the whole batch.
- **Optimisers:** dense weights AdamW as in the project (weight decay, gradient clipping on dense
  weights); tables: TorchRec's fused optimiser (``mixers.torchrec_sharding.fused_optimizer``), its
  rate scaled by the same warm-up and decay through ``fused_optimizer.param_groups``.
- **Validation and test:** the rows are cut into equal shares (the last padded), each rank scores
  its share, the logits are gathered and every rank computes the same metrics on all rows, so the
  early-stopping decisions agree without any further message.
- **Weights** for the average and the best-epoch snapshot are the dense parameters and the local
  shards of the tables (views into FBGEMM's storage, updated in place).

A failure is not turned into a "failed" result as ``trainer.evaluate`` does: one rank leaving the
collectives would leave the others waiting, so an exception ends the whole job.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from unimixer_plan.data import CTRData, EncodedSplit
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers import ModelConfig, build_model
from unimixer_plan.mixers.torchrec_model import SPARSE_ARCH, TorchRecModel, features_of, require_torchrec
from unimixer_plan.mixers.torchrec_sharding import attach_optimizer, describe_plan, fused_optimizer, plan_sharding
from unimixer_plan.training.batch_size import batch_size_for
from unimixer_plan.training.learning_rate import learning_rate_for
from unimixer_plan.training.loop import Progress, TrainResult, run_epochs
from unimixer_plan.training.metrics import SplitScore, logloss, roc_auc, score_logits
from unimixer_plan.training.trainer import TrainSettings, check_schema, embedding_learning_rate

ENV_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class RankEnv:
    """This process's place in the job, from the standard torch.distributed variables (torchrun,
    Ray Train and ``training.torchrec_launch`` set them)."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int

    @classmethod
    def from_environ(cls) -> RankEnv | None:
        """None when this process was not launched as a rank (WORLD_SIZE unset)."""
        if "WORLD_SIZE" not in os.environ:
            return None
        missing = [name for name in ENV_VARS if name not in os.environ]
        if missing:
            raise PlanError(f"WORLD_SIZE is set but {', '.join(missing)} not: set all of {', '.join(ENV_VARS)}")
        try:
            world_size, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
            local_rank = int(os.environ.get("LOCAL_RANK", rank))
            local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        except ValueError as err:
            raise PlanError(f"torch.distributed environment: {err}") from None
        return cls(rank, world_size, local_rank, local_world_size)


@dataclass(frozen=True)
class TorchRecJob:
    """What every rank trains: picklable, so a launcher can hand it to spawned processes."""

    config: ModelConfig
    fidelity: int
    seed: int
    settings: TrainSettings
    device_memory_gb: float | None = None
    score_test: bool = True  # also score the reported weights on the test split, as `train` does

    def batch_size(self, data: CTRData) -> int:
        """The global batch: the settings' or, as ``trainer.evaluate``, the rule in the training rows."""
        rows = min(self.fidelity, len(data.train))
        return self.settings.batch_size if self.settings.batch_size is not None else batch_size_for(rows)


@dataclass(frozen=True)
class TorchRecOutcome:
    result: TrainResult
    world_size: int
    backend: str
    sharding_plan: dict[str, dict[str, Any]]  # {table: {"sharding_type": ..., "ranks": [...]}}
    embedding_optimizer: str

    def document(self) -> dict[str, Any]:
        """What ``train --engine torchrec --json`` adds to the project trainer's keys."""
        return {
            "engine": "torchrec",
            "world_size": self.world_size,
            "backend": self.backend,
            "sharding_plan": self.sharding_plan,
            "embedding_optimizer": self.embedding_optimizer,
        }


def compute_device(env: RankEnv) -> torch.device:
    """cuda:LOCAL_RANK with nccl when this host has a GPU per local rank, else cpu with gloo."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= env.local_world_size:
        return torch.device("cuda", env.local_rank)
    return torch.device("cpu")


def train_rank(job: TorchRecJob, data: CTRData, env: RankEnv, on_epoch: Any = None) -> TorchRecOutcome:
    """Join the process group, train, leave. ``on_epoch(checkpoint)`` follows progress."""
    require_torchrec("--engine torchrec")
    # TorchRec asks torch.fx whether it is tracing on every forward, and torch logs a warning about it.
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    check_schema(job.config, data)
    device = compute_device(env)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:  # ranks on one host share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // env.local_world_size))
    dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
    try:
        rows, batch = min(job.fidelity, len(data.train)), job.batch_size(data)
        lr = job.settings.learning_rate if job.settings.learning_rate is not None else learning_rate_for(job.config)
        engine = _TorchRecEngine(job, data, env, device, lr)
        reporter = (lambda checkpoint: on_epoch(checkpoint)) if on_epoch is not None else None  # never stops
        progress = Progress(rows=rows, lr=lr, batch_size=batch)
        result = run_epochs(engine, job.config, progress, job.seed, job.settings, reporter, score_test=job.score_test)
        return TorchRecOutcome(result, env.world_size, backend, engine.sharding_plan, engine.optimizer.describe())
    finally:
        dist.destroy_process_group()


class _TorchRecEngine:
    def __init__(self, job: TorchRecJob, data: CTRData, env: RankEnv, device: torch.device, lr: float) -> None:
        from torchrec.distributed import DistributedModelParallel
        from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
        from torchrec.distributed.types import ShardingEnv

        self.data, self.env, self.device, self.settings = data, env, device, job.settings
        config = job.config
        torch.manual_seed(job.seed)
        project = build_model(config)  # the weights trainer.evaluate starts from with this seed
        module = TorchRecModel(config, device="meta")
        start = module.state_from_project(project.state_dict())
        prefix = "dense_arch."
        module.dense_arch.load_state_dict({k[len(prefix) :]: v for k, v in start.items() if k.startswith(prefix)})
        self.optimizer = fused_optimizer(
            job.settings.embedding_optimizer,
            device.type,
            lambda rule: embedding_learning_rate(job.settings, lr, rule),
        )
        attach_optimizer(module, self.optimizer)
        group = dist.GroupMember.WORLD
        plan = plan_sharding(
            module,
            env.world_size,
            device.type,
            job.device_memory_gb,
            job.batch_size(data),
            process_group=group,
            world_size_option="--nproc",
            local_world_size=env.local_world_size,
        )
        self.sharding_plan = describe_plan(plan)
        with warnings.catch_warnings():
            # TorchRec 1.8 passes DDP an argument that torch 2.13 deprecates (broadcast_buffers).
            warnings.simplefilter("ignore", FutureWarning)
            self.dmp = DistributedModelParallel(
                module,
                env=ShardingEnv.from_process_group(group),
                device=device,
                plan=plan,
                sharders=[EmbeddingBagCollectionSharder()],
            )
        self.model = self.dmp.module.dense_arch  # set_temperature / uses_temperature
        self.tables = self._local_shards()
        with torch.no_grad():
            for key, shard, (row, column) in self.tables:
                rows, columns = shard.shape
                shard.copy_(start[key][row : row + rows, column : column + columns])
        self.dense_parameters = [p for name, p in self.dmp.named_parameters() if not name.startswith(SPARSE_ARCH)]
        self.dense_optimizer = torch.optim.AdamW(self.dense_parameters, lr=lr, weight_decay=job.settings.weight_decay)
        optimisers = (self.dense_optimizer, self.dmp.fused_optimizer)
        self.base_rates = [(group, group["lr"]) for o in optimisers for group in o.param_groups]
        self.feature_keys = module.keys

    def _local_shards(self) -> list[tuple[str, torch.Tensor, tuple[int, int]]]:
        """(state key, this rank's shard of the table, its (row, column) offset) for every local shard."""
        shards = []
        for key, value in self.dmp.state_dict().items():
            if key.startswith(f"{SPARSE_ARCH}.") and hasattr(value, "local_shards"):
                for shard in value.local_shards():
                    row, column = shard.metadata.shard_offsets
                    shards.append((key, shard.tensor, (row, column)))
        return shards

    def train_mode(self) -> None:
        self.dmp.train()

    def scale_learning_rates(self, factor: float) -> None:
        for group, base in self.base_rates:
            group["lr"] = base * factor
        self.dmp.fused_optimizer.zero_grad()  # hands the rate to FBGEMM before the backward uses it

    def _share(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions 0..count-1 cut into world_size equal shares: this rank's positions (the last
        share padded by repeating the final position) and their weights (0 on padding)."""
        per_rank = -(-count // self.env.world_size)
        positions = torch.arange(self.env.rank * per_rank, (self.env.rank + 1) * per_rank)
        weights = (positions < count).float()
        return positions.clamp(max=count - 1), weights

    def train_step(self, index: torch.Tensor) -> bool:
        positions, weights = self._share(len(index))
        rows = index[positions]
        train, device = self.data.train, self.device
        dense, labels = train.dense[rows].to(device), train.labels[rows].to(device)
        features = features_of(train.sparse[rows].to(device), self.feature_keys)
        logits, squares = self.dmp(dense, features, penalty=True)
        losses = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        finite = torch.isfinite(losses).all().float().reshape(1)
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)  # every rank skips the step together
        if finite.item() < 1:
            return False
        weights = weights.to(device)
        loss = (losses * weights).sum() / len(index)
        if self.settings.embedding_l2 > 0:
            loss = loss + self.settings.embedding_l2 * (squares * weights).sum() / len(index)
        self.dense_optimizer.zero_grad(set_to_none=True)
        loss.backward()  # the fused optimiser updates the looked-up rows here
        grads = [p.grad for p in self.dense_parameters if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, float(self.env.world_size))  # DDP averaged; the batch mean wants the sum
            torch.nn.utils.clip_grad_norm_(self.dense_parameters, self.settings.grad_clip)
        self.dense_optimizer.step()
        return True

    @torch.no_grad()
    def _logits(self, split: EncodedSplit, count: int) -> torch.Tensor:
        """(count,) logits of the split's first ``count`` rows: each rank scores its share, all gather."""
        self.dmp.eval()
        positions, _ = self._share(count)
        out = []
        for start in range(0, len(positions), self.settings.eval_batch_size):
            batch = positions[start : start + self.settings.eval_batch_size]
            dense = split.dense[batch].to(self.device)
            out.append(self.dmp(dense, features_of(split.sparse[batch].to(self.device), self.feature_keys)).float())
        local = torch.cat(out)
        gathered = [torch.empty_like(local) for _ in range(self.env.world_size)]
        dist.all_gather(gathered, local)
        return torch.cat(gathered)[:count].cpu()

    def validate(self, rows: int | None) -> tuple[float, float]:
        split = self.data.val
        count = len(split) if rows is None else min(rows, len(split))
        logits, labels = self._logits(split, count), split.labels[:count]
        return logloss(labels, logits), roc_auc(labels.numpy(), logits.numpy())

    def score_test(self) -> SplitScore | None:
        test = self.data.test
        return score_logits(test.labels, self._logits(test, len(test))) if len(test) else None

    def weights(self) -> list[torch.Tensor]:
        return [*self.dense_parameters, *(shard for _, shard, _ in self.tables)]

    def snapshot(self) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        return copy.deepcopy(self.model.state_dict()), [shard.detach().clone() for _, shard, _ in self.tables]

    def restore(self, state: tuple[dict[str, torch.Tensor], list[torch.Tensor]]) -> None:
        dense, shards = state
        self.model.load_state_dict(dense)
        with torch.no_grad():
            for (_, shard, _), saved in zip(self.tables, shards, strict=True):
                shard.copy_(saved)
