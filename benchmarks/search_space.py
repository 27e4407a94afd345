"""The search-efficiency benchmark's space: small enough to train every point once, shared by the
recorder (``search_grid.py``) and the comparison (``search_bench.py``).

The planner searches it as it searches any space file (the cost-aware space solves ``d_model`` in
[16, 128] from a sampled cost level); the plain samplers and the grid see ``d_model`` as one more
categorical knob over ``WIDTHS``. Every configuration is trained on the same rows by the same
trainer, so a recorded curve is what a trial of that configuration would have reported.
"""

from __future__ import annotations

import itertools
from typing import Any

import yaml
from unimixer_plan.mixers import ConfigError, ModelConfig, analytic_cost
from unimixer_plan.search_spaces import FamilySpace, IntRange
from unimixer_plan.search_spaces.cost_aware import build_config, family_knobs
from unimixer_plan.search_spaces.spaces import parse_spaces

WIDTHS = (16, 32, 64, 128)
FIDELITY = 8_192  # distinct training rows of every recorded trial (the synthetic default)
VAL_ROWS = 8_192
SPACE_YAML = """
rankmixer:
  n_tokens: [4, 8, 16]
  depth: {low: 1, high: 2}
  ffn_ratio: [2]
  embed_dim: [16]
  d_model: {low: 16, high: 128}
unimixer:
  n_tokens: [4, 8]
  heads: [2, 4]
  depth: {low: 1, high: 2}
  ffn_ratio: [2]
  embed_dim: [16]
  d_model: {low: 16, high: 128}
unimixing_lite:
  n_tokens: [4, 8]
  heads: [2, 4]
  rank: [4, 16]
  bases: [2]
  depth: {low: 1, high: 2}
  ffn_ratio: [2]
  embed_dim: [16]
  d_model: {low: 16, high: 128}
"""


def bench_spaces() -> dict[str, FamilySpace]:
    return parse_spaces(yaml.safe_load(SPACE_YAML), "search_space.SPACE_YAML")


def knob_choices(space: FamilySpace) -> dict[str, list[int]]:
    """Every knob's values, d_model excluded (the grid takes it from WIDTHS)."""
    choices = {}
    for knob, domain in space.knobs.items():
        if knob == "d_model":
            continue
        choices[knob] = list(range(domain.low, domain.high + 1)) if isinstance(domain, IntRange) else list(domain)
    return choices


def config_key(config: ModelConfig) -> str:
    """One architecture, whatever knobs named it (a rank clipped to N is the same model)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=True)


def grid_configs(spaces: dict[str, FamilySpace], schema: dict[str, Any]) -> list[ModelConfig]:
    """The plain space enumerated: every family x knob combination x width that builds, once each."""
    seen: dict[str, ModelConfig] = {}
    for family, space in sorted(spaces.items()):
        choices = knob_choices(space)
        for values in itertools.product(*choices.values()):
            knobs = family_knobs(space, dict(zip(choices, values, strict=True)))
            for width in WIDTHS:
                try:
                    config = build_config(family, knobs, width, schema)
                    analytic_cost(config)
                except ConfigError:
                    continue
                seen.setdefault(config_key(config), config)
    return sorted(seen.values(), key=lambda c: (c.family, analytic_cost(c).flops))
