"""Run records read back for trainers: a trials.csv row as a model config, and the metadata
that travels beside an exported config (chosen.yaml, ``unimixer-plan export``).

Here rather than in ``unimixer_plan.plan`` so that export depends on run records and the
model zoo only, never on the search (import contracts in pyproject.toml).
"""

from __future__ import annotations

from typing import Any

from unimixer_plan.data import CTRData
from unimixer_plan.mixers import ModelConfig
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.folder import KNOB_COLUMNS
from unimixer_plan.run.versions import package_versions


def row_config(row: dict[str, Any], schema: dict[str, Any]) -> ModelConfig:
    knobs = {k: row[k] for k in KNOB_COLUMNS}
    return ModelConfig(family=row["family"], **knobs, **schema)


def export_metadata(plan: PlanConfig, data: CTRData, chosen: dict[str, Any]) -> dict[str, Any]:
    """What travels beside the model config in chosen.yaml and exports."""
    cost_keys = ("flops_fvcore", "params_dense", "latency_ms")
    if chosen.get("predicted"):
        predicted = {
            "val_logloss": chosen["val_logloss"],
            "val_logloss_interval_90": chosen["val_logloss_interval"],
            "held_out": chosen["held_out"],
            "from": "scaling fit over proxy rungs (scaling.json)",
        }
        metrics = {"predicted": predicted, "measured": {k: chosen[k] for k in cost_keys}}
    else:
        quality = ("val_logloss", "val_auc", "fidelity", "epochs", "best_epoch")
        metrics = {"measured": {k: chosen[k] for k in (*quality, *cost_keys) if k in chosen}}
    return {
        "schema": {
            "dataset": data.description,
            "num_dense": data.num_dense,
            "cardinalities": list(data.cardinalities),
            "embed_dim": chosen["model"]["embed_dim"],
            "dense_encoding": "log1p(max(x, 0)); missing = -1",
            "categorical_encoding": "0 = missing, 1 = out of vocabulary, 2.. = vocabulary ids",
        },
        "budget": plan.to_dict()["budget"],
        "metrics": metrics,
        "versions": package_versions(),
    }
