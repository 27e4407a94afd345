"""Run a plan end to end: check budgets, search, Pareto set, choose, certify, write the run folder."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixers import ModelConfig, PlanError, analytic_cost, build_model, save_config
from planner.data import CTRData, load_data
from planner.pareto import non_dominated
from planner.plan_config import PlanConfig
from planner.profiling import measure_flops, measure_latency_ms, resolve_device
from planner.run_folder import RunFolder
from planner.versions import package_versions
from search_spaces import FamilySpace, load_spaces, smallest_config

# Without a FLOPs budget, direct search stops at this size (it must train on this machine).
DIRECT_SEARCH_MAX_FLOPS = 1e8


@dataclass(frozen=True)
class PlanOutcome:
    folder: RunFolder
    trials: list[dict[str, Any]]
    pareto: list[dict[str, Any]]
    chosen: dict[str, Any] | None  # the chosen trial row
    chosen_config: ModelConfig | None
    summary: dict[str, Any]


def default_run_dir(base: str = "runs") -> str:
    return str(Path(base) / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def plan_spaces(plan: PlanConfig) -> dict[str, FamilySpace]:
    spaces = load_spaces(plan.space_path)
    if plan.families:
        missing = [f for f in plan.families if f not in spaces]
        if missing:
            raise PlanError(f"--families {missing[0]!r}: not in the search space file ({', '.join(sorted(spaces))})")
        spaces = {f: spaces[f] for f in plan.families}
    return spaces


def check_budgets_reachable(plan: PlanConfig, spaces: dict[str, FamilySpace], schema: dict[str, Any]) -> None:
    """Exit early, before anything trains, when even the cheapest configuration breaks a budget."""
    cheapest = smallest_config(spaces, schema)
    cost = analytic_cost(cheapest)
    shape = f"{cheapest.family}, n_tokens={cheapest.n_tokens}, d_model={cheapest.d_model}, depth={cheapest.depth}"
    if plan.budget.flops is not None and cost.flops > plan.budget.flops:
        raise PlanError(
            f"--flops {plan.budget.flops:g}: no configuration fits; the smallest possible costs "
            f"{cost.flops:,} FLOPs/sample ({shape})"
        )
    if plan.budget.params is not None and cost.params_dense > plan.budget.params:
        raise PlanError(
            f"--params {plan.budget.params:g}: no configuration fits; the smallest possible has "
            f"{cost.params_dense:,} dense parameters ({shape})"
        )
    if plan.budget.latency_ms is not None:
        device = resolve_device(plan.budget.device)
        latency = measure_latency_ms(build_model(cheapest), plan.budget.batch_size, device, 0.2)
        if latency > plan.budget.latency_ms:
            raise PlanError(
                f"--latency-ms {plan.budget.latency_ms:g}: no configuration fits; the smallest possible takes "
                f"{latency:.3f} ms at batch {plan.budget.batch_size} on {device} ({shape})"
            )


def full_fidelity_rows(rows: list[dict[str, Any]], fidelity: int) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok" and r["fidelity"] >= fidelity and math.isfinite(r["val_logloss"])]


def pareto_rows(rows: list[dict[str, Any]], plan: PlanConfig) -> list[dict[str, Any]]:
    """Non-dominated full-fidelity completed trials, one per architecture."""
    candidates = full_fidelity_rows(rows, plan.fidelity)
    if not candidates:
        return []
    columns = [c for c, _ in plan.objectives]
    points = np.array([[float(r[c]) if r[c] is not None else math.nan for c in columns] for r in candidates])
    mask = non_dominated(points, [d for _, d in plan.objectives])
    return sorted((r for r, keep in zip(candidates, mask, strict=True) if keep), key=lambda r: r["flops"])


def within_budget(row: dict[str, Any], plan: PlanConfig) -> bool:
    budget = plan.budget
    return (
        (budget.flops is None or row["flops"] <= budget.flops)
        and (budget.params is None or row["params_dense"] <= budget.params)
        and (budget.latency_ms is None or (math.isfinite(row["latency_ms"]) and row["latency_ms"] <= budget.latency_ms))
    )


def row_config(row: dict[str, Any], schema: dict[str, Any]) -> ModelConfig:
    knobs = {k: row[k] for k in ("n_tokens", "d_model", "heads", "rank", "bases", "depth", "ffn_ratio")}
    return ModelConfig(family=row["family"], **knobs, **schema)


def certify(config: ModelConfig, plan: PlanConfig) -> dict[str, Any]:
    """fvcore FLOPs (must equal the analytic count) and latency measured on the budget's device."""
    torch.manual_seed(plan.seed)
    model = build_model(config)
    flops, step_flops = measure_flops(model)
    torch.set_num_threads(max(1, int(plan.cpus_per_trial)))  # as the trials measured it
    latency = measure_latency_ms(model, plan.budget.batch_size, resolve_device(plan.budget.device))
    cost = analytic_cost(config)
    return {
        "flops_fvcore": flops,
        "flops_analytic": cost.flops,
        "step_flops": step_flops,
        "params_dense": cost.params_dense,
        "params_embedding": cost.params_embedding,
        "latency_ms": latency,
        "batch_size": plan.budget.batch_size,
        "device": plan.budget.device,
        "train_flops_per_batch": cost.train_flops_per_batch(plan.budget.batch_size),
    }


def run_plan(plan: PlanConfig, resume: bool = False, on_row=None, on_start=None) -> PlanOutcome:
    from planner.search import run_search  # Ray is imported only when a search runs

    folder = RunFolder(Path(plan.out))
    spaces = plan_spaces(plan)
    data: CTRData = load_data(plan.data, train_rows=plan.fidelity)
    schema = {**data.schema, "embed_dim": plan.embed_dim}
    check_budgets_reachable(plan, spaces, schema)
    if not resume:
        if folder.plan_file.exists():
            raise PlanError(f"--out {folder.path}: already holds a plan; use --resume {folder.path} or a new folder")
        folder.create(plan, package_versions())
    done = folder.load_trials()
    remaining = plan.trials - len(done)
    if on_start is not None:
        on_start(data, len(done), plan.trials)
    if remaining > 0:
        attempt = len(list((folder.path / "ray").glob("search-*"))) if (folder.path / "ray").is_dir() else 0
        ceiling = plan.budget.flops or DIRECT_SEARCH_MAX_FLOPS
        run_search(plan, folder, data, spaces, ceiling, remaining, attempt, on_row or (lambda row: None))
    return finish_plan(plan, folder, data, schema)


def finish_plan(plan: PlanConfig, folder: RunFolder, data: CTRData, schema: dict[str, Any]) -> PlanOutcome:
    rows = folder.load_trials()
    pareto = pareto_rows(rows, plan)
    folder.write_rows(folder.pareto_file, pareto)
    fitting = [r for r in full_fidelity_rows(rows, plan.fidelity) if within_budget(r, plan)]
    chosen = min(fitting, key=lambda r: (r["val_logloss"], r["flops"])) if fitting else None
    summary: dict[str, Any] = {
        "run_dir": str(folder.path),
        "data": data.description,
        "synthetic": data.synthetic,
        "trials": len(rows),
        "trials_by_status": {s: sum(r["status"] == s for r in rows) for s in ("ok", "stopped", "failed", "infeasible")},
        "pareto_size": len(pareto),
        "interrupted": len(rows) < plan.trials,
        "budget": plan.to_dict()["budget"],
        "chosen": None,
    }
    config = None
    if chosen is not None:
        config = row_config(chosen, schema)
        measured = certify(config, plan)
        summary["chosen"] = {
            "trial_id": chosen["trial_id"],
            "model": config.to_dict(),
            "val_logloss": chosen["val_logloss"],
            "val_auc": chosen["val_auc"],
            "fidelity": chosen["fidelity"],
            **measured,
            "margins": plan.budget.margins(measured["flops_fvcore"], measured["params_dense"], measured["latency_ms"]),
        }
        save_config(config, folder.chosen_file, extra=export_metadata(plan, data, summary["chosen"]))
    folder.summary_file.write_text(json.dumps(summary, indent=2) + "\n")
    return PlanOutcome(folder, rows, pareto, chosen, config, summary)


def export_metadata(plan: PlanConfig, data: CTRData, chosen: dict[str, Any]) -> dict[str, Any]:
    """What travels beside the model config in chosen.yaml and exports."""
    return {
        "schema": {
            "dataset": data.description,
            "num_dense": data.num_dense,
            "cardinalities": list(data.cardinalities),
            "embed_dim": plan.embed_dim,
            "dense_encoding": "log1p(max(x, 0)); missing = -1",
            "categorical_encoding": "0 = missing, 1 = out of vocabulary, 2.. = vocabulary ids",
        },
        "budget": plan.to_dict()["budget"],
        "metrics": {
            "measured": {
                k: chosen[k]
                for k in ("val_logloss", "val_auc", "fidelity", "flops_fvcore", "params_dense", "latency_ms")
                if k in chosen
            },
        },
        "versions": package_versions(),
    }
