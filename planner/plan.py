"""Run a plan end to end: check budgets, search, Pareto set, choose, certify, write the run folder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from unimixer_plan.data import CTRData, load_data
from unimixer_plan.mixers import ModelConfig, PlanError, analytic_cost, build_model, save_config
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.profiling import measure_flops, measure_latency_ms, resolve_device
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.records import export_metadata
from unimixer_plan.run.summary import BaselineScore, Certificate, Chosen, HeldOut, PlanSummary
from unimixer_plan.run.trial_record import ScaledTarget, TrialRecord
from unimixer_plan.run.versions import package_versions
from unimixer_plan.scaling.ladder import (
    LADDER_MIN_COST_LEVEL,
    MIN_RUNGS,
    FamilyScaling,
    analyse_family,
    ladder_budgets,
    proxy_max_flops,
)
from unimixer_plan.scaling.posterior import Prior, probability_lowest
from unimixer_plan.search.pareto import non_dominated
from unimixer_plan.search.rungs import Rung, SearchRunner
from unimixer_plan.search_spaces import FamilySpace, load_spaces, smallest_config
from unimixer_plan.training.baselines import BaselineResult, fm_verdict, gains_over_baselines, train_baselines

# Without a FLOPs budget, direct search stops at this size (it must train on this machine).
DIRECT_SEARCH_MAX_FLOPS = 1e8
# Below this probability of being the lowest at the target, no family is called the winner: the
# evidence cannot tell them apart and the tie-break (lower predicted median) decides.
DECISIVE_PROBABILITY = 0.6
CHOICE_RULE = (
    "highest posterior probability of the lowest logloss at the family's own target (joint draws, families "
    f"independent); below {DECISIVE_PROBABILITY:g} the families are indistinguishable and the lower predicted "
    "median (then fewer target FLOPs) wins"
)


@dataclass(frozen=True)
class PlanOutcome:
    folder: RunFolder
    trials: list[TrialRecord]
    summary: PlanSummary  # also written to summary.json; summary.chosen is the chosen config


def default_run_dir(base: str = "runs") -> str:
    return str(Path(base) / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def plan_spaces(plan: PlanConfig) -> dict[str, FamilySpace]:
    spaces = load_spaces(plan.space_path)
    if plan.families:
        missing = [f for f in plan.families if f not in spaces]
        if missing:
            raise PlanError(f"--families {missing[0]!r}: not in the search space file ({', '.join(sorted(spaces))})")
        spaces = {f: spaces[f] for f in plan.families}
    if plan.embed_dim is not None:  # --embed-dim fixes the knob the space would search
        spaces = {f: replace(s, knobs={**s.knobs, "embed_dim": (plan.embed_dim,)}) for f, s in spaces.items()}
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


def full_fidelity_rows(rows: list[TrialRecord]) -> list[TrialRecord]:
    """Trials trained to early stopping (or the epoch cap) on all their data: status ok."""
    return [r for r in rows if r.is_complete]


def pareto_rows(rows: list[TrialRecord], plan: PlanConfig) -> list[TrialRecord]:
    """Non-dominated full-fidelity completed trials, one per architecture."""
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


def run_plan(
    plan: PlanConfig,
    resume: bool = False,
    on_row=None,
    on_start=None,
    search: SearchRunner | None = None,
) -> PlanOutcome:
    """Search every rung still missing trials, then choose (directly or through the proxy ladder).

    ``search`` runs the rungs; the default is Ray Tune + Optuna. Tests pass a scripted runner.
    """
    if search is None:
        from unimixer_plan.search.driver import RAY_SEARCH  # Ray is imported only when a search runs

        search = RAY_SEARCH
    search.check(plan)  # before anything is loaded or written: a wrong --ray-address fails in seconds
    folder = RunFolder(Path(plan.out))
    spaces = plan_spaces(plan)
    data: CTRData = load_data(plan.data, train_rows=plan.fidelity)
    schema = data.schema
    check_budgets_reachable(plan, spaces, schema)
    rungs = plan_rungs(plan, spaces, schema)
    if not resume:
        if folder.plan_file.exists():
            raise PlanError(f"--out {folder.path}: already holds a plan; use --resume {folder.path} or a new folder")
        folder.create(plan, package_versions())
    baselines = folder.load_baselines()
    if baselines is None:  # trained once per plan, before the search; kept on resume
        baselines = train_baselines(data, plan.fidelity, plan.seed, plan.train, plan.embed_dim)
        folder.write_baselines(baselines)
    done = folder.load_trials()
    if on_start is not None:
        on_start(data, len(done), sum(r.trials for r in rungs), rungs)
    pending = [(r, r.trials - sum(study_of(record, rungs) == r.study_name for record in done)) for r in rungs]
    interrupted = False
    if any(missing > 0 for _, missing in pending):
        attempt = len(list((folder.path / "ray").glob("*"))) if (folder.path / "ray").is_dir() else 0
        deadline = time.monotonic() + plan.time_budget_min * 60 if plan.time_budget_min else None
        with search.session(plan):
            for position, (rung, missing) in enumerate(pending):
                if missing <= 0:
                    continue
                left = None if deadline is None else max(1.0, (deadline - time.monotonic()) / (len(pending) - position))
                rung = replace(rung, trials=missing, time_budget_s=left)
                recorded = search.run_rung(plan, folder, data, spaces, rung, attempt, on_row or (lambda record: None))
                if recorded < missing and left is None:  # Ctrl-C: Tune stopped this rung; stop the plan
                    interrupted = True
                    break
    if interrupted and len(rungs) > 1:
        # No scale-up from a partial ladder; --resume finishes it.
        rows = folder.load_trials()
        outcome = PlanOutcome(folder, rows, replace(base_summary(plan, folder, data, rows, 0), mode="ladder"))
    elif len(rungs) == 1:
        outcome = finish_plan(plan, folder, data, schema)
    else:
        outcome = finish_ladder(plan, folder, data, schema, spaces, rungs)
    planned = sum(r.trials for r in rungs)
    summary = replace(
        add_baselines(outcome.summary, baselines),
        planned_trials=planned,
        # A time budget ends searches on purpose; fewer rows without one means the run was interrupted.
        interrupted=interrupted or (plan.time_budget_min is None and len(outcome.trials) < planned),
    )
    outcome = replace(outcome, summary=summary)
    folder.write_summary(summary)
    if not summary.interrupted:
        from unimixer_plan.reports import write_report

        write_report(folder.path)
    return outcome


def add_baselines(summary: PlanSummary, baselines: dict[str, BaselineResult]) -> PlanSummary:
    """The lr/fm floor in the summary, the chosen model's gain over it, and a warning when a
    model far costlier than FM does not beat it."""
    scores = {name: BaselineScore.of(result) for name, result in baselines.items()}
    chosen = summary.chosen
    earlier = summary.warnings or ()  # the ladder's choice warnings stay
    if chosen is None:
        return replace(summary, baselines=scores, warnings=earlier)
    gains = gains_over_baselines(chosen.val_logloss, chosen.val_auc, baselines)
    verdict = fm_verdict(chosen.val_logloss, chosen.certificate.flops_fvcore, baselines)
    return replace(
        summary,
        chosen=replace(chosen, gain_over_baselines=gains),
        baselines=scores,
        warnings=(*earlier, verdict) if verdict else earlier,
    )


def study_of(record: TrialRecord, rungs: list[Rung]) -> str:
    """The study a trial belongs to (a rung, or a rung and family on a ladder)."""
    for rung in rungs:
        if rung.index == record.rung and (not rung.families or record.family in rung.families):
            return rung.study_name
    return ""


def plan_rungs(plan: PlanConfig, spaces: dict[str, FamilySpace], schema: dict[str, Any]) -> list[Rung]:
    """One direct search when the budget trains here; otherwise a ladder of proxy budgets."""
    top = proxy_max_flops(plan)
    target = plan.budget.flops
    if target is None or target <= top:
        ceiling = target or min(DIRECT_SEARCH_MAX_FLOPS, top)
        return [Rung(0, target, ceiling, "plan", plan.trials, plan.budget.latency_ms is not None)]
    bottom = 2 * analytic_cost(smallest_config(spaces, schema)).flops
    budgets = ladder_budgets(target, top, bottom)
    if len(budgets) < MIN_RUNGS:
        raise PlanError(
            f"--flops {target:g}: the proxy ladder between the smallest model ({bottom:.3g}) and the largest proxy "
            f"({top:.3g} FLOPs/sample, from --fidelity {plan.fidelity} or --proxy-max-flops) has room for "
            f"{len(budgets)} rung(s), {MIN_RUNGS} are needed; raise --proxy-max-flops or lower --fidelity"
        )
    # One study per (rung, family): every family gets points on every rung for its own fit, and
    # proxies aim at the top of their rung so that the compute axis of the fit is clean.
    per_study = max(2, plan.trials // (len(budgets) * len(spaces)))
    return [
        Rung(k + 1, b, b, f"rung-{k + 1}-{family}", per_study, False, (family,), LADDER_MIN_COST_LEVEL)
        for k, b in enumerate(budgets)
        for family in sorted(spaces)
    ]


def finish_ladder(
    plan: PlanConfig,
    folder: RunFolder,
    data: CTRData,
    schema: dict[str, Any],
    spaces: dict[str, FamilySpace],
    rungs: list[Rung],
) -> PlanOutcome:
    rows = folder.load_trials()
    ladder = sorted({(r.index, r.flops) for r in rungs})
    proxy_front = pareto_rows(rows, plan)
    prior = Prior(floor_low=data.noise_floor_logloss if data.noise_floor_logloss is not None else 0.0)
    analyses = [analyse_family(f, rows, plan, spaces[f], schema, plan.budget.flops, prior) for f in sorted(spaces)]
    candidates = [a for a in analyses if a.predicted_logloss is not None]
    chosen, probabilities, warnings = choose_family(candidates)
    targets = [target_row(a) for a in candidates]
    if targets:
        points = np.array([[t.val_logloss, t.flops] for t in targets])
        keep = non_dominated(points, ["min", "min"])
        targets = [t for t, k in zip(targets, keep, strict=True) if k]
    folder.write_pareto(proxy_front, targets)
    scaling = {
        "target": plan.to_dict()["budget"],
        "rungs": [{"rung": index, "flops_budget": flops} for index, flops in ladder],
        "model": "L(C) = floor + scale * exp(-alpha * (ln C - log_c_reference)); C = FLOPs/sample",
        "families": {a.family: a.to_dict() for a in analyses},
        "chosen_family": chosen.family if chosen else None,
        "choice_rule": CHOICE_RULE,
        "family_probabilities": probabilities,
    }
    folder.scaling_file.write_text(json.dumps(scaling, indent=2) + "\n")
    summary = replace(
        base_summary(plan, folder, data, rows, len(proxy_front)),
        mode="ladder",
        rungs=scaling["rungs"],
        held_out={a.family: HeldOut.from_dict(a.held_out) for a in analyses if a.held_out},
        family_probabilities=probabilities,
        warnings=warnings,
    )
    if chosen is not None:
        config = chosen.target_config
        measured = certify(config, plan)
        choice = Chosen(
            trial_id=None,
            model=config,
            predicted=True,
            val_logloss=chosen.predicted_logloss,
            val_logloss_interval=chosen.interval,
            val_auc=None,
            fidelity=plan.fidelity,
            held_out=HeldOut.from_dict(chosen.held_out) if chosen.held_out else None,
            fit=chosen.fit.to_dict(),
            proxy_points=chosen.points,
            extrapolation={"flops": measured.flops_fvcore / max(p["flops"] for p in chosen.points), "data": 1.0},
            certificate=measured,
            margins=plan.budget.margins(measured.flops_fvcore, measured.params_dense, measured.latency_ms),
        )
        summary = replace(summary, chosen=choice)
        save_config(config, folder.chosen_file, extra=export_metadata(plan, data, choice))
    return PlanOutcome(folder, rows, summary)


def choose_family(
    candidates: list[FamilyScaling],
) -> tuple[FamilyScaling | None, dict[str, float], tuple[str, ...]]:
    """The family most likely to have the lowest logloss at its own scaled-up target, its probability
    per family, and warnings. Why probabilities: ranking by an interval's end rewards whichever
    family's interval is narrowest, which with few points was the least known one; the posterior's
    draws weigh each family's evidence. Below DECISIVE_PROBABILITY the choice is a tie-break, said so."""
    if not candidates:
        return None, {}, ()
    draws = {a.family: a.posterior.draws(a.target_flops) for a in candidates}
    probabilities = probability_lowest(draws)
    warnings = []
    best = max(candidates, key=lambda a: probabilities[a.family])
    if probabilities[best.family] >= DECISIVE_PROBABILITY:
        chosen = best
    else:
        chosen = min(candidates, key=lambda a: (a.predicted_logloss, a.target_flops))
        shares = ", ".join(f"{f} {p:.2f}" for f, p in sorted(probabilities.items(), key=lambda i: -i[1]))
        warnings.append(
            f"families indistinguishable at this evidence: no family is the lowest at the target with probability "
            f">= {DECISIVE_PROBABILITY:g} ({shares}); chose {chosen.family} by the tie-break, the lower predicted "
            "median logloss (then fewer target FLOPs); more rungs or seed replicates would separate them"
        )
    for a in candidates:
        if a.at_bound:
            warnings.append(
                f"{a.family}: the scaling posterior piles up at a prior bound ({', '.join(a.at_bound)}): its "
                "predicted interval is set by the stated prior, not by the proxies"
            )
    return chosen, probabilities, tuple(warnings)


def target_row(analysis: FamilyScaling) -> ScaledTarget:
    return ScaledTarget(
        model=analysis.target_config,
        val_logloss=analysis.predicted_logloss,
        flops=analysis.target_flops,
        params_dense=analysis.target_params,
        latency_ms=analysis.target_latency_ms,
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


def finish_plan(plan: PlanConfig, folder: RunFolder, data: CTRData, schema: dict[str, Any]) -> PlanOutcome:
    rows = folder.load_trials()
    pareto = pareto_rows(rows, plan)
    folder.write_pareto(pareto)
    fitting = [r for r in full_fidelity_rows(rows) if plan.budget.admits(r.flops, r.params_dense, r.latency_ms)]
    chosen = min(fitting, key=lambda r: (r.val_logloss, r.flops)) if fitting else None
    summary = base_summary(plan, folder, data, rows, len(pareto))
    if chosen is not None:
        config = chosen.model_config(schema)
        measured = certify(config, plan)
        margins = plan.budget.margins(measured.flops_fvcore, measured.params_dense, measured.latency_ms)
        choice = Chosen.of_trial(chosen, config, measured, margins)
        summary = replace(summary, chosen=choice)
        save_config(config, folder.chosen_file, extra=export_metadata(plan, data, choice))
    return PlanOutcome(folder, rows, summary)
