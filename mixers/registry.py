"""The registry of model families (timm-style ``list``/``create`` over one contract).

A family contributes a block, (T, batch, D) -> (T, batch, D), the knobs it uses, its
own validation rules, how blocks are stacked, and the exact analytic cost of one block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from unimixer_plan.mixers.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn
    from unimixer_plan.mixers.config import ModelConfig

OPTIONAL_KNOBS = ("heads", "rank", "bases")


@dataclass(frozen=True)
class BlockCost:
    """Exact cost of one block, in fvcore units (one multiply-add = 1; norms 5 per element).

    ``macs`` scale with the batch (per sample); ``step_macs`` are paid once per forward
    whatever the batch (building mixing matrices); ``params`` counts every weight.
    """

    macs: int
    step_macs: int
    params: int


@dataclass(frozen=True)
class MixerFamily:
    name: str
    summary: str
    knobs: frozenset[str]
    stacking: Literal["siamese", "post_norm"]
    build_block: Callable[[ModelConfig], nn.Module]
    block_cost: Callable[[ModelConfig], BlockCost]
    rules: Callable[[ModelConfig], None]

    def validate(self, config: ModelConfig) -> None:
        for knob in OPTIONAL_KNOBS:
            value = getattr(config, knob)
            if knob in self.knobs and value is None:
                raise ConfigError(knob, value, f"is required by family {self.name}")
            if knob not in self.knobs and value is not None:
                raise ConfigError(knob, value, f"is not used by family {self.name}; leave it unset")
        self.rules(config)


_FAMILIES: dict[str, MixerFamily] = {}


def register(family: MixerFamily) -> MixerFamily:
    if family.name in _FAMILIES:
        raise ValueError(f"family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> MixerFamily:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError("family", name, f"unknown; registered: {', '.join(list_mixers())}") from None


def list_mixers() -> list[str]:
    return sorted(_FAMILIES)


def require_divides(config: ModelConfig, knob: str = "heads") -> None:
    value = getattr(config, knob)
    if config.d_model % value:
        raise ConfigError(knob, value, f"must divide d_model={config.d_model} (family {config.family})")
