"""The UniMixer model zoo: a registry of ranking-model families built from one config.

>>> from unimixer_plan.mixers import ModelConfig, build_model, list_mixers
>>> list_mixers()
['attention', 'rankmixer', 'unimixer', 'unimixing_lite', 'wukong']
"""

from __future__ import annotations

from unimixer_plan.criteo import CRITEO_CARDINALITIES, CRITEO_NUM_DENSE, capped_criteo_cardinalities
from unimixer_plan.errors import ConfigError, PlanError

# Importing the family modules registers them.
from unimixer_plan.mixers import attention, rankmixer, unimixer, wukong  # noqa: F401
from unimixer_plan.mixers.config import ModelConfig, load_config, save_config
from unimixer_plan.mixers.cost import AnalyticCost, analytic_cost
from unimixer_plan.mixers.model import RankingModel, build_model
from unimixer_plan.mixers.registry import MixerFamily, get_family, list_mixers, register

__all__ = [
    "CRITEO_CARDINALITIES",
    "CRITEO_NUM_DENSE",
    "AnalyticCost",
    "ConfigError",
    "MixerFamily",
    "ModelConfig",
    "PlanError",
    "RankingModel",
    "analytic_cost",
    "build_model",
    "capped_criteo_cardinalities",
    "get_family",
    "list_mixers",
    "load_config",
    "register",
    "save_config",
]
