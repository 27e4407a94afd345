"""Measured cost of a configuration: fvcore FLOPs, parameter counts, latency.

fvcore counts multiply-adds and calls them "flops"; the project's FLOPs are 2 x that
(DESIGN.md section 3). Per-sample FLOPs are the slope between two batch sizes, so the
once-per-step work of building mixing matrices is excluded and reported on its own.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils import benchmark
from unimixer_plan.mixers import ModelConfig, PlanError, RankingModel, analytic_cost, build_model

with warnings.catch_warnings():
    # fvcore's import runs torch.jit.script, deprecated under torch 2.13.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import norm_flop_counter

# Batch sizes whose difference gives the per-sample slope; small, because fvcore traces.
_SLOPE_BATCHES = (1, 2)


@dataclass(frozen=True)
class CostProfile:
    """Cost of one configuration. FLOPs are forward, 2 per multiply-add, dense part only."""

    flops: int  # per sample, measured by fvcore (slope between two batch sizes)
    flops_analytic: int  # the formula the planner uses to filter candidates
    step_flops: int  # once per forward whatever the batch: building mixing matrices
    params_dense: int
    params_embedding: int
    embedding_bytes: int
    batch_size: int
    train_flops_per_batch: int  # ~ 3 x (flops x batch + step_flops)
    device: str
    latency_ms: float | None = None  # median forward time at batch_size, eval mode

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(device: str) -> torch.device:
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise PlanError(f"--device {device!r}: not a device name; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise PlanError(f"--device {device!r}: CUDA is not available on this machine; use cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise PlanError(f"--device {device!r}: only cpu and cuda devices are supported")
    return resolved


def example_inputs(
    config: ModelConfig, batch_size: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic valid inputs: dense (batch, num_dense), sparse (batch, C) within each table."""
    generator = torch.Generator().manual_seed(0)
    dense = torch.randn(batch_size, config.num_dense, generator=generator)
    cards = torch.tensor(config.cardinalities, dtype=torch.long).clamp(min=1)
    sparse = (torch.rand(batch_size, len(config.cardinalities), generator=generator) * cards).long()
    return dense.to(device), sparse.to(device)


def fvcore_macs(model: RankingModel, batch_size: int) -> int:
    """fvcore's total (multiply-adds) for one forward at ``batch_size``, in train mode so that
    the mixing matrices are built inside the trace."""
    inputs = example_inputs(model.config, batch_size, next(model.parameters()).device)
    was_training = model.training
    model.train()
    try:
        # no_grad: counting needs no autograd graph, which for large Sinkhorn matrices would hold
        # every iteration's intermediates (gigabytes at target scale).
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace is deprecated
            analysis = (
                FlopCountAnalysis(model, inputs)
                .set_op_handle("aten::rms_norm", norm_flop_counter(2))
                .unsupported_ops_warnings(False)
                .uncalled_modules_warnings(False)
            )
            total = analysis.total()
    finally:
        model.train(was_training)
    if total != int(total):
        raise RuntimeError(f"fvcore returned a non-integral count {total}: an estimated op slipped in")
    return int(total)


def measure_flops(model: RankingModel) -> tuple[int, int]:
    """(per-sample FLOPs, per-step FLOPs) from fvcore at two batch sizes."""
    small, large = _SLOPE_BATCHES
    macs_small, macs_large = fvcore_macs(model, small), fvcore_macs(model, large)
    per_sample = (macs_large - macs_small) // (large - small)
    return 2 * per_sample, 2 * (macs_small - per_sample * small)


def measure_latency_ms(
    model: RankingModel, batch_size: int, device: torch.device, min_run_time: float = 0.5, warmup: int = 3
) -> float:
    """Median forward time (ms) in eval mode at ``batch_size``: matrices precomputed, warm-up first."""
    model = model.to(device).eval()
    dense, sparse = example_inputs(model.config, batch_size, device)
    with torch.inference_mode():
        for _ in range(warmup):
            model(dense, sparse)
        timer = benchmark.Timer(stmt="model(dense, sparse)", globals={"model": model, "dense": dense, "sparse": sparse})
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return statistics.median(measurement.times) * 1e3


def profile(
    config: ModelConfig,
    batch_size: int = 256,
    device: str = "cpu",
    latency: bool = False,
    seed: int = 0,
) -> CostProfile:
    """Profile ``config``: fvcore FLOPs, params, embedding size and optionally latency."""
    if batch_size < 1:
        raise PlanError(f"--batch-size {batch_size}: must be >= 1")
    target = resolve_device(device)
    torch.manual_seed(seed)
    model = build_model(config)
    analytic = analytic_cost(config)
    flops, step_flops = measure_flops(model)
    latency_ms = measure_latency_ms(model, batch_size, target) if latency else None
    params_embedding = sum(p.numel() for p in model.embedding_parameters())
    return CostProfile(
        flops=flops,
        flops_analytic=analytic.flops,
        step_flops=step_flops,
        params_dense=sum(p.numel() for p in model.dense_parameters()),
        params_embedding=params_embedding,
        embedding_bytes=params_embedding * next(model.parameters()).element_size(),
        batch_size=batch_size,
        train_flops_per_batch=3 * (flops * batch_size + step_flops),
        device=str(target),
        latency_ms=latency_ms,
    )
