"""Start a TorchRec training job: N local processes, or this process as one rank of a launcher's job.

- Under a launcher (torchrun, Ray Train, a scheduler) the standard torch.distributed variables
  (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) are set: this process
  trains as that rank and only rank 0 returns the outcome (the others return None).
- Otherwise ``nproc`` processes are spawned on this host with those variables set (a free loopback
  port, LOCAL_WORLD_SIZE = nproc), the loaded data shared with them through shared memory (each
  rank reads only its share of every batch; `share_splits_as_tensors`); rank 0 hands its outcome
  back through a file.

Before anything starts, the sharding plan is made once here without a process group, so that a
topology that cannot hold the tables is one clear error instead of N failing processes.
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from unimixer_plan.data import CTRData, EncodedSplit
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers.embedding_tables import check_fits, embedding_tables
from unimixer_plan.mixers.torchrec_model import require_torchrec
from unimixer_plan.mixers.torchrec_sharding import sharding_plan
from unimixer_plan.training.loop import Checkpoint
from unimixer_plan.training.torchrec_trainer import RankEnv, TorchRecJob, TorchRecOutcome, train_rank

OnEpoch = Callable[[Checkpoint], None]


def run_summary(outcome: TorchRecOutcome) -> str:
    """One line: processes, backend, how many tables each rank holds, the fused optimiser."""
    per_rank: dict[int, int] = {}
    for placement in outcome.sharding_plan.values():
        for rank in placement["ranks"]:
            per_rank[rank] = per_rank.get(rank, 0) + 1
    kinds = sorted({p["sharding_type"] for p in outcome.sharding_plan.values()})
    held = ", ".join(f"rank {rank}: {count}" for rank, count in sorted(per_rank.items()))
    return (
        f"torchrec: {outcome.world_size} process(es) ({outcome.backend}), {len(outcome.sharding_plan)} tables "
        f"{'/'.join(kinds)} ({held}); embedding optimiser {outcome.embedding_optimizer}"
    )


def launch(
    job: TorchRecJob, data: CTRData, nproc: int | None, on_epoch: OnEpoch | None = None
) -> TorchRecOutcome | None:
    """Train ``job`` on ``data`` with ``nproc`` processes (None: 1, or the launcher's WORLD_SIZE).
    ``on_epoch(checkpoint)`` runs on rank 0 after every epoch; it must be a module-level function
    (a spawned rank receives it pickled), and it runs in that rank's process."""
    require_torchrec("--engine torchrec")
    env = RankEnv.from_environ()
    if env is not None and nproc not in (None, env.world_size):
        raise PlanError(
            f"--nproc {nproc}: this process is one of WORLD_SIZE={env.world_size} ranks started by a launcher; "
            f"allowed: {env.world_size} or no --nproc"
        )
    world_size = env.world_size if env is not None else (1 if nproc is None else nproc)
    if world_size < 1:
        raise PlanError(f"--nproc {world_size}: must be >= 1 (processes to start)")
    check_fits(embedding_tables(job.config), world_size, job.device_memory_gb, "--nproc")
    sharding_plan(
        job.config,
        world_size,
        job.device_memory_gb,
        _device_type(),
        job.batch_size(data),
        job.settings.embedding_optimizer,
        world_size_option="--nproc",
    )
    if env is not None:
        outcome = train_rank(job, data, env, on_epoch if env.rank == 0 else None)
        return outcome if env.rank == 0 else None
    return _spawn(job, data, world_size, on_epoch)


def _device_type() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def share_splits_as_tensors() -> None:
    """Spawned ranks receive the data's splits as torch tensors, which torch.multiprocessing moves to
    shared memory, not as the numpy arrays a split pickles to for Ray (those would be copied into
    every rank's message). The pickler's dispatch table takes precedence over ``__reduce__``."""
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401  (registers torch's shared-memory tensor reducers)

    ForkingPickler.register(EncodedSplit, lambda split: (EncodedSplit, (split.dense, split.sparse, split.labels)))


def _spawn(job: TorchRecJob, data: CTRData, nproc: int, on_epoch: OnEpoch | None) -> TorchRecOutcome:
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    share_splits_as_tensors()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="unimixer-torchrec-") as folder:
        out = Path(folder)
        try:
            mp.start_processes(_spawned_rank, args=(nproc, port, job, data, str(out), on_epoch), nprocs=nproc)
        except ProcessException as err:
            errors = sorted(out.glob("error-*.txt"))
            if errors:  # a PlanError on a rank: the same one line as in one process
                raise PlanError(errors[0].read_text().strip()) from None
            raise RuntimeError(f"a TorchRec rank failed: {err}") from None
        return pickle.loads((out / "outcome.pkl").read_bytes())


def _spawned_rank(
    rank: int, nproc: int, port: int, job: TorchRecJob, data: CTRData, out: str, on_epoch: OnEpoch | None
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(nproc),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(nproc),
    )
    folder = Path(out)
    try:
        outcome = train_rank(job, data, RankEnv.from_environ(), on_epoch if rank == 0 else None)
    except PlanError as err:
        (folder / f"error-{rank}.txt").write_text(f"{err}\n")
        raise
    if rank == 0:
        (folder / "outcome.pkl").write_bytes(pickle.dumps(outcome))
