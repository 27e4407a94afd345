"""The registry of model families (timm-style ``list``/``create`` over one contract).

Two kinds of family share one config type and one model interface (``model.CTRModel``):

- block families (the mixers) contribute a block, (T, batch, D) -> (T, batch, D), how
  blocks are stacked, and the exact analytic cost of one block; ``model.RankingModel``
  puts tokenizer, stack and head around them;
- whole-model families (the baselines ``lr`` and ``fm``) contribute the model and its
  exact analytic cost directly. They are ``baseline=True``: listed by ``list_mixers()``,
  built by ``build_model``, trained by the same trainer as the floor every mixer must
  clear, but not searched by the planner (``list_searchable()``).

Every family declares the knobs it uses (``knobs``), defaults for some of them
(``knob_defaults``) and its own validation rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from unimixer_plan.errors import ConfigError
from unimixer_plan.mixers.config import KNOBS

if TYPE_CHECKING:
    from torch import nn
    from unimixer_plan.mixers.config import ModelConfig
    from unimixer_plan.mixers.model import CTRModel

# The knobs every block family uses (the shape of the token stack), and their defaults.
STACK_KNOBS = frozenset({"n_tokens", "d_model", "depth", "ffn_ratio"})
STACK_DEFAULTS: Mapping[str, int] = {"ffn_ratio": 2}


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
class ModelCost:
    """Exact cost of a whole model (whole-model families), in fvcore units as ``BlockCost``;
    ``params_embedding`` counts every embedding table, ``params_dense`` everything else."""

    macs: int
    step_macs: int
    params_dense: int
    params_embedding: int


def no_rules(config: ModelConfig) -> None:
    """For families whose only rules are the shared ones and their knob declaration."""


@dataclass(frozen=True)
class MixerFamily:
    """A registered family. Either a block family (``stacking``, ``build_block``,
    ``block_cost``) or a whole-model family (``build_model``, ``model_cost``)."""

    name: str
    summary: str
    knobs: frozenset[str]
    stacking: Literal["siamese", "post_norm"] | None = None
    build_block: Callable[[ModelConfig], nn.Module] | None = None
    block_cost: Callable[[ModelConfig], BlockCost] | None = None
    rules: Callable[[ModelConfig], None] = no_rules
    knob_defaults: Mapping[str, int] = field(default_factory=dict)
    baseline: bool = False
    build_model: Callable[[ModelConfig], CTRModel] | None = None
    model_cost: Callable[[ModelConfig], ModelCost] | None = None
    # Width of the row one categorical id looks up, every table of the model side by side
    # (``CTRModel.lookup``); None: ``embed_dim``. fm's is 1 + embed_dim (its weight and factor).
    row_width: Callable[[ModelConfig], int] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.knobs) - set(KNOBS))
        if unknown:
            raise ValueError(f"family {self.name!r}: unknown knobs {unknown}; knobs are {KNOBS}")
        if not set(self.knob_defaults) <= set(self.knobs):
            raise ValueError(f"family {self.name!r}: defaults for knobs it does not use")
        block_parts = (self.stacking, self.build_block, self.block_cost)
        model_parts = (self.build_model, self.model_cost)
        is_block = all(p is not None for p in block_parts) and all(p is None for p in model_parts)
        is_whole = all(p is None for p in block_parts) and all(p is not None for p in model_parts)
        if not (is_block or is_whole):
            raise ValueError(
                f"family {self.name!r}: give stacking, build_block and block_cost, or build_model and model_cost"
            )

    @property
    def is_block_family(self) -> bool:
        return self.build_block is not None

    def row_width_of(self, config: ModelConfig) -> int:
        return self.row_width(config) if self.row_width is not None else config.embed_dim

    def validate(self, config: ModelConfig) -> None:
        for knob in KNOBS:
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
    """Every registered family, baselines included."""
    return sorted(_FAMILIES)


def list_searchable() -> list[str]:
    """The families the planner searches: every registered family but the baselines."""
    return sorted(name for name, family in _FAMILIES.items() if not family.baseline)


def require_divides(config: ModelConfig, knob: str = "heads") -> None:
    value = getattr(config, knob)
    if config.d_model % value:
        raise ConfigError(knob, value, f"must divide d_model={config.d_model} (family {config.family})")
