"""What a finished plan is made of, shared by the direct search and the ladder: the outcome, the Pareto
rows, the certificate of a chosen configuration, the summary's common part and the baselines in it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from unimixer_plan.data import CTRData
from unimixer_plan.mixers import ModelConfig, analytic_cost, build_model
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_flops, measure_latency_ms, resolve_device
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.summary import BaselineScore, Certificate, PlanSummary
from unimixer_plan.run.trial_record import TrialRecord
from unimixer_plan.search.pareto import non_dominated
from unimixer_plan.training.baselines import BaselineResult, fm_verdict, gains_over_baselines


@dataclass(frozen=True)
class PlanOutcome:
    folder: RunFolder
    trials: list[TrialRecord]
    summary: PlanSummary  # also written to summary.json; summary.chosen is the chosen config


def full_fidelity_rows(rows: list[TrialRecord]) -> list[TrialRecord]:
    """Search trials trained to early stopping (or the epoch cap) on all their data: status ok. The
    measurements (a shape trained again on other rows or seeds) are the scaling law's, not the choice's."""
    return [r for r in rows if r.is_complete and r.is_search]


def pareto_rows(rows: list[TrialRecord], plan: PlanConfig) -> list[TrialRecord]:
    """Non-dominated full-fidelity completed search trials, one per architecture."""
    candidates = full_fidelity_rows(rows)
    if not candidates:
        return []
    columns = [c for c, _ in plan.objectives]
    points = np.array([[r.number(c) for c in columns] for r in candidates])
    mask = non_dominated(points, [d for _, d in plan.objectives])
    return sorted((r for r, keep in zip(candidates, mask, strict=True) if keep), key=lambda r: r.flops)


def certify(config: ModelConfig, plan: PlanConfig) -> Certificate:
    """fvcore FLOPs (must equal the analytic count) and latency measured on the budget's device."""
    torch.manual_seed(plan.seed)
    model = build_model(config)
    flops, step_flops = measure_flops(model)
    torch.set_num_threads(max(1, int(plan.cpus_per_trial)))  # as the trials measured it
    big = analytic_cost(config).flops * plan.budget.batch_size > 1e10  # seconds per forward on a CPU
    latency = measure_latency_ms(
        model,
        plan.budget.batch_size,
        resolve_device(plan.budget.device),
        min_run_time=0.2 if big else 0.5,
        warmup=1 if big else 3,
    )
    cost = analytic_cost(config)
    return Certificate(
        flops_fvcore=flops,
        flops_analytic=cost.flops,
        step_flops=step_flops,
        params_dense=cost.params_dense,
        params_embedding=cost.params_embedding,
        latency_ms=latency,
        batch_size=plan.budget.batch_size,
        device=plan.budget.device,
        train_flops_per_batch=cost.train_flops_per_batch(plan.budget.batch_size),
    )


def base_summary(
    plan: PlanConfig, folder: RunFolder, data: CTRData, rows: list[TrialRecord], pareto_size: int
) -> PlanSummary:
    return PlanSummary(
        run_dir=str(folder.path),
        mode="direct",
        data=data.description,
        synthetic=data.synthetic,
        trials=len(rows),
        trials_by_status=PlanSummary.count_by_status(rows),
        pareto_size=pareto_size,
        interrupted=False,
        budget=plan.budget,
        chosen=None,
    )


def add_baselines(summary: PlanSummary, baselines: dict[str, BaselineResult]) -> PlanSummary:
    """The lr/fm floor in the summary, the chosen model's gain over it, and a warning when a model far
    costlier than FM does not beat it. Compared on the same rows: a direct search's choice is a trial
    trained on the baselines' rows; on a ladder the baselines train on the top rung's rows, and the
    comparison is the chosen family's best proxy there (its measured numbers, not the prediction,
    which is for other data)."""
    scores = {name: BaselineScore.of(result) for name, result in baselines.items()}
    chosen = summary.chosen
    earlier = summary.warnings or ()  # the ladder's choice warnings stay
    if chosen is None:
        return replace(summary, baselines=scores, warnings=earlier)
    logloss, auc, flops = chosen.val_logloss, chosen.val_auc, chosen.certificate.flops_fvcore
    if chosen.predicted and chosen.top_proxy:
        logloss, auc, flops = (chosen.top_proxy[k] for k in ("val_logloss", "val_auc", "flops"))
    elif chosen.predicted:
        return replace(summary, baselines=scores, warnings=earlier)
    gains = gains_over_baselines(logloss, auc, baselines)
    verdict = fm_verdict(logloss, flops, baselines)
    return replace(
        summary,
        chosen=replace(chosen, gain_over_baselines=gains),
        baselines=scores,
        warnings=(*earlier, verdict) if verdict else earlier,
    )
