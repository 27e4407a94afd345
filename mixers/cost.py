"""Exact analytic cost of a configuration, in microseconds and without building it.

Convention (DESIGN.md section 3): FLOPs are forward floating-point operations per sample,
dense part only, 2 per multiply-add; norms count as fvcore prices them (5 per element
with a learned scale), element-wise work and embedding lookups count 0. Hence
``flops == 2 * fvcore total`` exactly, which the tests check over random configs.
"""

from __future__ import annotations

from dataclasses import dataclass

from unimixer_plan.mixers.config import ModelConfig
from unimixer_plan.mixers.registry import get_family
from unimixer_plan.mixers.stacking import stack_cost

BYTES_PER_PARAM = 4  # fp32 tables


@dataclass(frozen=True)
class AnalyticCost:
    flops: int  # forward, per sample
    step_flops: int  # forward, once per batch whatever its size (mixing-matrix build)
    params_dense: int
    params_embedding: int

    @property
    def embedding_bytes(self) -> int:
        return self.params_embedding * BYTES_PER_PARAM

    def train_flops_per_batch(self, batch_size: int) -> int:
        """Training FLOPs for one batch: forward + backward ~ 3 x forward."""
        return 3 * (self.flops * batch_size + self.step_flops)


def analytic_cost(config: ModelConfig) -> AnalyticCost:
    family = get_family(config.family)
    if family.model_cost is not None:  # whole-model family (baselines)
        whole = family.model_cost(config)
        return AnalyticCost(
            flops=2 * whole.macs,
            step_flops=2 * whole.step_macs,
            params_dense=whole.params_dense,
            params_embedding=whole.params_embedding,
        )
    block = family.block_cost(config)
    t, d, e = config.n_tokens, config.d_model, config.embed_dim
    stack_macs, stack_params = stack_cost(family.stacking, t, d, config.depth)
    tokenizer_macs = t * config.chunk_width * d
    tokenizer_params = t * config.chunk_width * d + t * d + 2 * config.num_dense * e
    head_macs, head_params = d, d + 1
    macs = tokenizer_macs + config.depth * block.macs + stack_macs + head_macs
    return AnalyticCost(
        flops=2 * macs,
        step_flops=2 * config.depth * block.step_macs,
        params_dense=tokenizer_params + config.depth * block.params + stack_params + head_params,
        params_embedding=max(sum(config.cardinalities), 1) * e,
    )
