"""The metadata that travels beside an exported model config (chosen.yaml, ``unimixer-plan export``).

Here rather than in ``unimixer_plan.plan`` so that export depends on run records and the
model zoo only, never on the search (import contracts in pyproject.toml).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from unimixer_plan.data import CTRData
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.final_check import FinalCheck
from unimixer_plan.run.summary import Chosen
from unimixer_plan.run.versions import package_versions


def export_metadata(
    plan: PlanConfig, data: CTRData, chosen: Chosen, final_check: FinalCheck | None = None
) -> dict[str, Any]:
    """What travels beside the model config in chosen.yaml and exports. A direct search's quality is the
    search trial's ``validation`` (it chose the trial, so it is biased low); ``test`` (after the plan's
    test-split check) is of the chosen configuration re-trained with fresh seeds, on rows nothing chose on."""
    certificate = chosen.certificate
    costs = {
        "flops_fvcore": certificate.flops_fvcore,
        "params_dense": certificate.params_dense,
        "latency_ms": certificate.latency_ms,
    }
    if chosen.predicted:
        interval = chosen.val_logloss_interval
        predicted = {
            "val_logloss": chosen.val_logloss,
            "val_logloss_interval_90": list(interval) if interval else None,
            "held_out": chosen.held_out.to_dict() if chosen.held_out else None,
            "from": "scaling fit over proxy rungs (scaling.json)",
        }
        metrics = {"predicted": predicted, "measured": costs}
    else:
        quality = {
            "val_logloss": chosen.val_logloss,
            "val_auc": chosen.val_auc,
            "fidelity": chosen.fidelity,
            "epochs": chosen.epochs,
            "best_epoch": chosen.best_epoch,
        }
        metrics = {"validation": quality, "measured": costs}
    if final_check is not None:
        metrics["test"] = {"subject": final_check.subject, "rows": final_check.rows} | final_check.chosen.to_dict()
    return {
        "schema": {
            "dataset": data.description,
            "num_dense": data.num_dense,
            "cardinalities": list(data.cardinalities),
            "embed_dim": chosen.model.embed_dim,
            "dense_encoding": "log1p(max(x, 0)); missing = -1",
            "categorical_encoding": "0 = missing, 1 = out of vocabulary, 2.. = vocabulary ids",
        },
        "budget": plan.to_dict()["budget"],
        "metrics": metrics,
        "setting": plan_setting(plan, chosen.fidelity),
        "versions": package_versions(),
    }


def plan_setting(plan: PlanConfig, samples: int | None = None) -> dict[str, Any]:
    """The setting the metrics are for: the data (paths made absolute, so the file reproduces it from
    any directory), the distinct training samples (``samples``: a ladder's prediction is for the
    production data, a direct search's measurement for its fidelity), the seed and the trainer.
    ``unimixer-plan train`` reads it back (``unimixer_plan.train_command.PlanSetting``)."""
    samples = samples if samples is not None else plan.fidelity
    data = asdict(plan.data)
    for key in ("path", "schema_path", "valid_path", "test_path", "cache_dir"):
        if data[key]:
            data[key] = str(Path(data[key]).resolve())
    return {"data": data, "train_samples": samples, "seed": plan.seed, "trainer": asdict(plan.train)}
