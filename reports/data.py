"""Plain report data, built from a run folder alone (no figures, no Plotly).

Everything the report shows comes from here, so a test can check it against the folder.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.summary import Chosen, PlanSummary
from unimixer_plan.run.trial_record import TrialStatus
from unimixer_plan.scaling.posterior import Prior, family_seed
from unimixer_plan.scaling.prediction import predict
from unimixer_plan.search.pareto import hypervolume


@dataclass(frozen=True)
class TrialPoint:
    trial_id: int
    rung: int
    family: str
    status: TrialStatus
    fidelity: int  # distinct training samples
    epochs: int
    full_fidelity: bool  # trained to early stopping or the epoch cap
    val_logloss: float
    val_auc: float
    flops: float
    params_dense: float
    latency_ms: float
    knobs: dict[str, int | None]
    on_front: bool


@dataclass(frozen=True)
class ScalingCurve:
    family: str
    compute: list[float]  # the points of the law: the best proxy per rung and its quarter-data point
    samples: list[float]  # their distinct training samples
    loss: list[float]
    fit: dict[str, float]  # posterior medians of the parameters
    grid: list[float]  # from the smallest proxy to the target
    curve: list[float]  # the prediction's median along the grid at the target's data (it meets the target)
    band_low: list[float]  # its central 90 % band, as the target's interval is made
    band_high: list[float]
    proxy_samples: float  # the top rung's data
    proxy_curve: list[float]  # the law's median along the grid at the top rung's data (through the proxies)
    target_flops: float | None
    target_samples: float | None
    predicted: float | None
    interval: tuple[float, float] | None
    held_out: dict[str, Any] | None


@dataclass(frozen=True)
class HistoryPoint:
    trial: int
    hypervolume: float
    best_feasible_logloss: float


@dataclass(frozen=True)
class ReportData:
    run_dir: str
    plan: dict[str, Any]
    versions: dict[str, str]
    summary: PlanSummary
    objectives: tuple[tuple[str, str], ...]
    trials: list[TrialPoint]
    chosen: Chosen | None
    scaling: list[ScalingCurve] = field(default_factory=list)
    history: list[HistoryPoint] = field(default_factory=list)
    importances: dict[str, float] | None = None

    @property
    def budget(self) -> dict[str, Any]:
        return self.plan["budget"]


def load_report_data(run_dir: str | Path) -> ReportData:
    folder = RunFolder(Path(run_dir))
    plan = folder.load_plan()
    versions = json.loads(folder.plan_file.read_text()).get("versions", {})
    summary = folder.load_summary()
    rows = folder.load_trials()
    front_ids = _front_ids(folder)
    trials = [
        TrialPoint(
            trial_id=r.trial_id,
            rung=r.rung,
            family=r.family,
            status=r.status,
            fidelity=r.fidelity or 0,
            epochs=r.epochs or 0,
            full_fidelity=r.status is TrialStatus.OK,
            val_logloss=r.val_logloss,
            val_auc=r.val_auc,
            flops=r.number("flops"),
            params_dense=r.number("params_dense"),
            latency_ms=r.latency_ms,
            knobs=r.knobs,
            on_front=r.trial_id in front_ids,
        )
        for r in rows
        if r.family
    ]
    return ReportData(
        run_dir=str(folder.path),
        plan=plan.to_dict(),
        versions=versions,
        summary=summary,
        objectives=plan.objectives,
        trials=trials,
        chosen=summary.chosen,
        scaling=_scaling_curves(folder, plan),
        history=_history(trials, plan),
        importances=_importances(folder, summary),
    )


def _front_ids(folder: RunFolder) -> set[int]:
    if not folder.pareto_file.exists():
        return set()
    import csv

    with folder.pareto_file.open(newline="") as handle:
        return {int(r["trial_id"]) for r in csv.DictReader(handle) if r.get("trial_id")}


def _scaling_curves(folder: RunFolder, plan: PlanConfig) -> list[ScalingCurve]:
    if not folder.scaling_file.exists():
        return []
    scaling = json.loads(folder.scaling_file.read_text())
    curves = []
    for family, entry in scaling["families"].items():
        if not entry["fit"] or not entry["target_flops"]:
            continue
        points = entry["points"]
        compute, samples, loss = (
            np.array([p[k] for p in points], dtype=float) for k in ("flops", "samples", "val_logloss")
        )
        # The plan's own prediction (same points, prior, target and seed): the band meets its interval.
        target = (entry["target_flops"], entry["target_samples"])
        prediction = predict(
            compute, samples, loss, Prior.from_dict(entry.get("prior")), *target, family_seed(plan.seed, family)
        )
        if prediction is None:
            continue
        grid = np.geomspace(compute.min(), max(target[0], compute.max()), 60)
        median, low, high = prediction.band(grid, target[1])
        at_proxies = np.median(prediction.posterior.curves(grid, samples.max()), axis=0)
        curves.append(
            ScalingCurve(
                family=family,
                compute=compute.tolist(),
                samples=samples.tolist(),
                loss=loss.tolist(),
                fit=entry["fit"],
                grid=grid.tolist(),
                curve=median.tolist(),
                band_low=low.tolist(),
                band_high=high.tolist(),
                proxy_samples=float(samples.max()),
                proxy_curve=at_proxies.tolist(),
                target_flops=target[0],
                target_samples=target[1],
                predicted=entry["predicted_logloss"],
                interval=tuple(entry["interval"]) if entry["interval"] else None,
                held_out=entry["held_out"],
            )
        )
    return curves


def _history(trials: list[TrialPoint], plan: PlanConfig) -> list[HistoryPoint]:
    """Hypervolume (logloss x log10 FLOPs) and best within-budget logloss after each trial."""
    done = [t for t in sorted(trials, key=lambda t: t.trial_id) if t.full_fidelity]
    if not done:
        return []
    worst_loss = max(t.val_logloss for t in done) * 1.01
    top_flops = math.log10(max(t.flops for t in done)) + 0.1
    history, points, best = [], [], math.inf
    for t in sorted(trials, key=lambda t: t.trial_id):
        if t.full_fidelity:
            points.append((t.val_logloss, math.log10(t.flops)))
            if plan.budget.admits(t.flops, t.params_dense, t.latency_ms):
                best = min(best, t.val_logloss)
        volume = hypervolume(np.array(points), [worst_loss, top_flops], ["min", "min"]) if points else 0.0
        history.append(HistoryPoint(trial=t.trial_id, hypervolume=volume, best_feasible_logloss=best))
    return history


def _importances(folder: RunFolder, summary: PlanSummary) -> dict[str, float] | None:
    """Optuna's parameter importances for validation logloss (the direct search's study, or the
    largest study of a ladder); None when too few trials finished."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        names = optuna.get_all_study_names(storage=folder.optuna_url)
    except Exception:  # a missing or unreadable optuna.db: the report still renders
        return None
    best: dict[str, float] | None = None
    for name in names:
        study = optuna.load_study(study_name=name, storage=folder.optuna_url)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 4:
            continue
        try:
            # PED-ANOVA warns about every sparse conditional parameter: not for the user's terminal.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = optuna.importance.get_param_importances(study, target=lambda t: t.values[0])
        except (RuntimeError, ValueError, ZeroDivisionError):
            continue
        if values and (best is None or len(complete) > best.get("__trials__", 0)):
            best = {**{k: float(v) for k, v in values.items()}, "__trials__": len(complete)}
    if best is None:
        return None
    best.pop("__trials__")
    return best


def final_check_rows(summary: PlanSummary) -> list[tuple[str, str]]:
    """The chosen table's test-split rows: models re-trained after the choice, scored on rows nothing chose on."""
    check = summary.final_check
    if check is None:
        return []
    rows = [("test split", f"{check.rows:,} rows; {check.subject}, re-trained with {len(check.chosen.seeds)} seeds")]
    for score in (check.chosen, check.runner_up):
        if score is not None:
            rows.append(
                (
                    f"test: {score.role}",
                    f"trial {score.trial_id} {score.family}: logloss {score.logloss:.4f} ± {score.logloss_se:.4f}, "
                    f"AUC {score.auc:.4f} ± {score.auc_se:.4f}",
                )
            )
    if check.paired is not None:
        low, high = check.paired.logloss_interval
        rows.append(
            (
                "test: chosen - runner-up",
                f"logloss {check.paired.logloss_difference:+.4f}, 90% [{low:+.4f}, {high:+.4f}] (paired bootstrap), "
                f"P(chosen lower) {check.paired.probability_chosen_better:.2f}, AUC {check.paired.auc_difference:+.4f}",
            )
        )
    return rows
