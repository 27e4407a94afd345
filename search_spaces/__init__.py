"""Search spaces per model family and their cost-aware Optuna parametrisation."""

from __future__ import annotations

from unimixer_plan.search_spaces.cost_aware import CostAwareSpace, Limits, smallest_config, solve_width
from unimixer_plan.search_spaces.spaces import (
    DEFAULT_PLAN_FAMILIES,
    DEFAULT_SPACE_FILE,
    FamilySpace,
    IntRange,
    load_spaces,
    parse_spaces,
    requested_families,
)

__all__ = [
    "DEFAULT_PLAN_FAMILIES",
    "DEFAULT_SPACE_FILE",
    "CostAwareSpace",
    "FamilySpace",
    "IntRange",
    "Limits",
    "load_spaces",
    "parse_spaces",
    "requested_families",
    "smallest_config",
    "solve_width",
]
