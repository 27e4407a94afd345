"""Sinkhorn-constrained mixing matrices and the temperature schedule.

UniMixer constrains every learned mixing matrix W: symmetrise ((W + W^T)/2), divide by
a temperature tau, then Sinkhorn-normalise to a near doubly-stochastic matrix. Small
tau makes it sharp (close to a permutation). The work is done in the log domain and in
fp32, because exp(w / 0.05) overflows half precision.
"""

from __future__ import annotations

import torch
from torch import nn


def sinkhorn(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """Log-domain Sinkhorn-Knopp: (..., n, n) logits -> (..., n, n) near doubly-stochastic.

    Alternates row then column normalisation ``iters`` times; columns sum to exactly 1,
    rows to 1 within the remaining error.
    """
    log_p = logits.float()
    for _ in range(iters):
        log_p = log_p - torch.logsumexp(log_p, dim=-1, keepdim=True)
        log_p = log_p - torch.logsumexp(log_p, dim=-2, keepdim=True)
    return log_p.exp()


def constrain(raw: torch.Tensor, tau: float, iters: int) -> torch.Tensor:
    """UniMixer's constraint on (..., n, n): Sinkhorn(((W + W^T) / 2) / tau)."""
    return sinkhorn((raw + raw.transpose(-1, -2)) / (2.0 * tau), iters)


def linear_temperature(step: int, total_steps: int, tau_start: float, tau_end: float) -> float:
    """tau_j = max(tau_start - (tau_start - tau_end) * j / J, tau_end) (UniMixer's linear schedule)."""
    if total_steps <= 0 or step >= total_steps:
        return tau_end  # exactly, not tau_start - (tau_start - tau_end) with rounding
    return max(tau_start - (tau_start - tau_end) * step / total_steps, tau_end)


class SinkhornMixing(nn.Module):
    """Base for mixing layers whose matrices depend on parameters only, never on the input.

    Subclasses implement ``build_matrices()``. In train mode the matrices are built once
    per forward (once per step, shared by the whole batch); in eval mode they are built
    once and cached until the module goes back to train mode, its temperature changes or
    a state dict is loaded.
    """

    def __init__(self, tau: float, iters: int) -> None:
        super().__init__()
        self.tau = tau
        self.iters = iters
        self._cache: tuple[torch.Tensor, ...] | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module.clear_cache())

    def build_matrices(self) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def matrices(self) -> tuple[torch.Tensor, ...]:
        if self.training:
            self._cache = None
            return self.build_matrices()
        if self._cache is None:
            with torch.no_grad():
                self._cache = self.build_matrices()
        return self._cache

    def set_temperature(self, tau: float) -> None:
        self.tau = float(tau)
        self.clear_cache()

    def clear_cache(self) -> None:
        self._cache = None

    def train(self, mode: bool = True) -> SinkhornMixing:
        self.clear_cache()
        return super().train(mode)
