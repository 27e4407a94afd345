"""The UniMixer model zoo: a registry of ranking-model families built from one config.

>>> from unimixer_plan.mixers import list_mixers, list_searchable
>>> list_mixers()
['attention', 'fm', 'lr', 'rankmixer', 'unimixer', 'unimixing_lite', 'wukong']
>>> list_searchable()  # the planner's families: every family but the baselines
['attention', 'rankmixer', 'unimixer', 'unimixing_lite', 'wukong']
"""

from __future__ import annotations

from unimixer_plan.criteo import CRITEO_CARDINALITIES, CRITEO_NUM_DENSE, capped_criteo_cardinalities
from unimixer_plan.errors import ConfigError, PlanError

# Importing the family modules registers them.
from unimixer_plan.mixers import attention, baselines, rankmixer, unimixer, wukong  # noqa: F401
from unimixer_plan.mixers.baselines import baseline_config
from unimixer_plan.mixers.config import ModelConfig, load_config, load_document, save_config
from unimixer_plan.mixers.cost import AnalyticCost, analytic_cost
from unimixer_plan.mixers.model import CTRModel, RankingModel, build_model
from unimixer_plan.mixers.registry import MixerFamily, get_family, list_mixers, list_searchable, register

__all__ = [
    "CRITEO_CARDINALITIES",
    "CRITEO_NUM_DENSE",
    "AnalyticCost",
    "CTRModel",
    "ConfigError",
    "MixerFamily",
    "ModelConfig",
    "PlanError",
    "RankingModel",
    "analytic_cost",
    "baseline_config",
    "build_model",
    "capped_criteo_cardinalities",
    "get_family",
    "list_mixers",
    "list_searchable",
    "load_config",
    "load_document",
    "register",
    "save_config",
]
