"""The end of a proxy ladder: each family's law and scaled-up target, the choice among them at the data the
production model trains on, and the run folder's records of it (scaling.json, pareto.csv, chosen.yaml)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
from unimixer_plan import outcome
from unimixer_plan.criteo import CRITEO_KAGGLE_TRAIN_ROWS
from unimixer_plan.data import CTRData
from unimixer_plan.mixers import save_config
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.records import export_metadata
from unimixer_plan.run.summary import Chosen, HeldOut
from unimixer_plan.run.trial_record import ScaledTarget
from unimixer_plan.scaling.ladder import FamilyScaling, analyse_family, best_per_rung, replicate_noise
from unimixer_plan.scaling.points import MIN_POINTS
from unimixer_plan.scaling.posterior import Prior, probability_lowest
from unimixer_plan.search.pareto import non_dominated
from unimixer_plan.search.rungs import Rung
from unimixer_plan.search_spaces import FamilySpace

# Below this probability of being the lowest at the target, no family is called the winner: the
# evidence cannot tell them apart and the tie-break (lower predicted median) decides.
DECISIVE_PROBABILITY = 0.6
CHOICE_RULE = (
    "highest posterior probability of the lowest logloss at the family's own target and the production data "
    "(joint draws, families independent), among the families whose held-out check passed when any did; below "
    f"{DECISIVE_PROBABILITY:g} the families are indistinguishable and the lower predicted median (then fewer "
    "target FLOPs) wins"
)
LAW = "L(C, N) = E + A (C/C_ref)^-alpha + B (N/N_ref)^-beta; C = FLOPs/sample, N = distinct training samples"


def production_samples(plan: PlanConfig, data: CTRData) -> int:
    """The distinct samples the production model trains on: --train-samples, else the dataset's size
    (the synthetic Criteo default stands for the Kaggle file's training split)."""
    if plan.train_samples is not None:
        return plan.train_samples
    return CRITEO_KAGGLE_TRAIN_ROWS if data.synthetic else len(data.train)


def finish_ladder(
    plan: PlanConfig,
    folder: RunFolder,
    data: CTRData,
    schema: dict[str, Any],
    spaces: dict[str, FamilySpace],
    rungs: list[Rung],
) -> outcome.PlanOutcome:
    rows = folder.load_trials()
    ladder = sorted({(r.index, r.flops, r.samples) for r in rungs if not r.fixed})
    proxy_front = outcome.pareto_rows(rows, plan)
    replicate_ss, replicate_dof = replicate_noise(rows)
    prior = Prior(
        floor_low=data.noise_floor_logloss if data.noise_floor_logloss is not None else 0.0,
        replicate_ss=replicate_ss,
        replicate_dof=replicate_dof,
    )
    target_samples = production_samples(plan, data)
    analyses = [
        analyse_family(f, rows, plan, spaces[f], schema, plan.budget.flops, target_samples, prior)
        for f in sorted(spaces)
    ]
    candidates = [a for a in analyses if a.predicted_logloss is not None]
    chosen, probabilities, warnings = choose_family(candidates)
    targets = [target_row(a) for a in candidates]
    if targets:
        points = np.array([[t.val_logloss, t.flops] for t in targets])
        keep = non_dominated(points, ["min", "min"])
        targets = [t for t, k in zip(targets, keep, strict=True) if k]
    folder.write_pareto(proxy_front, targets)
    top_samples = max(s for _, _, s in ladder)
    scaling = {
        "target": plan.to_dict()["budget"] | {"train_samples": target_samples},
        "rungs": [{"rung": index, "flops_budget": flops, "samples": samples} for index, flops, samples in ladder],
        "model": LAW,
        "families": {a.family: a.to_dict() for a in analyses},
        "chosen_family": chosen.family if chosen else None,
        "choice_rule": CHOICE_RULE,
        "family_probabilities": probabilities,
        "noise": {"replicate_ss": replicate_ss, "replicate_dof": replicate_dof, "sd": prior.measured_sigma},
    }
    folder.scaling_file.write_text(json.dumps(scaling, indent=2) + "\n")
    summary = replace(
        outcome.base_summary(plan, folder, data, rows, len(proxy_front)),
        mode="ladder",
        rungs=scaling["rungs"],
        held_out={a.family: HeldOut.from_dict(a.held_out) for a in analyses if a.held_out},
        family_probabilities=probabilities,
        warnings=warnings + unchecked_warning(chosen) + compute_warning(chosen, target_samples),
        train_samples=target_samples,
    )
    if chosen is not None:
        config = chosen.target_config
        measured = outcome.certify(config, plan)
        top = best_per_rung(rows, chosen.family)[-1]
        choice = Chosen(
            trial_id=None,
            model=config,
            predicted=True,
            val_logloss=chosen.predicted_logloss,
            val_logloss_interval=chosen.interval,
            val_auc=None,
            fidelity=target_samples,
            held_out=HeldOut.from_dict(chosen.held_out) if chosen.held_out else None,
            fit=chosen.prediction.posterior.point_estimate(),
            proxy_points=chosen.points,
            extrapolation={
                "flops": measured.flops_fvcore / max(p["flops"] for p in chosen.points),
                "data": target_samples / top_samples,
            },
            certificate=measured,
            margins=plan.budget.margins(measured.flops_fvcore, measured.params_dense, measured.latency_ms),
            top_proxy={k: getattr(top, k) for k in ("trial_id", "flops", "fidelity", "val_logloss", "val_auc")},
            compute_pays=chosen.compute_pays,
        )
        summary = replace(summary, chosen=choice)
        save_config(config, folder.chosen_file, extra=export_metadata(plan, data, choice))
    return outcome.PlanOutcome(folder, rows, summary)


def choose_family(
    candidates: list[FamilyScaling],
) -> tuple[FamilyScaling | None, dict[str, float], tuple[str, ...]]:
    """The family most likely to have the lowest logloss at its own scaled-up target, its probability
    per family, and warnings. Why probabilities: ranking by an interval's end rewards whichever
    family's interval is narrowest, which with few points was the least known one; the draws weigh
    each family's evidence. A family whose held-out check failed is not chosen while another passed:
    its law missed its own top rung. Below DECISIVE_PROBABILITY the choice is a tie-break, said so."""
    if not candidates:
        return None, {}, ()
    warnings = []
    failed = [a.family for a in candidates if a.check_failed]
    eligible = [a for a in candidates if not a.check_failed] or candidates
    if failed:
        warnings.append(
            f"held-out check failed for {', '.join(failed)}: the law fitted to the lower rungs missed the top rung's "
            "measured logloss (outside its 90% interval); "
            + (
                "not chosen, and its interval is widened by the miss"
                if len(eligible) < len(candidates)
                else "every family failed it: the predictions are widened by the miss and the choice is weak"
            )
        )
    draws = {a.family: a.prediction.draws for a in candidates}
    probabilities = probability_lowest(draws)
    eligible_probabilities = probability_lowest({a.family: draws[a.family] for a in eligible})
    best = max(eligible, key=lambda a: eligible_probabilities[a.family])
    if eligible_probabilities[best.family] >= DECISIVE_PROBABILITY:
        chosen = best
    else:
        chosen = min(eligible, key=lambda a: (a.predicted_logloss, a.target_flops))
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


def unchecked_warning(chosen: FamilyScaling | None) -> tuple[str, ...]:
    """When the chosen family's law was never tested on a rung it was not fitted to."""
    if chosen is None or chosen.held_out is not None:
        return ()
    rungs = {point["rung"] for point in chosen.points}
    return (
        f"no held-out check: {chosen.family}'s law has points on {len(rungs) - 1} rung(s) below its top one and "
        f"refitting it without the top needs {MIN_POINTS}; its interval is untested on this ladder (another rung, "
        "from a higher --proxy-max-flops or a larger budget, tests it)",
    )


def compute_warning(chosen: FamilyScaling | None, samples: int) -> tuple[str, ...]:
    """When the budget's last 4x of FLOPs buys nothing the interval can see, at the production data."""
    if chosen is None or chosen.compute_pays is None or chosen.compute_pays["pays"]:
        return ()
    pays = chosen.compute_pays
    return (
        f"more FLOPs do not pay at {samples:,} training samples: the law puts {chosen.family} at a quarter of the "
        f"budget at {pays['median_at_quarter']:.4f}, inside the budget's 90% interval [{pays['interval'][0]:.4f}, "
        f"{pays['interval'][1]:.4f}]; the smallest budget within that interval is {pays['smallest_flops']:.3g} "
        "FLOPs/sample",
    )


def target_row(analysis: FamilyScaling) -> ScaledTarget:
    return ScaledTarget(
        model=analysis.target_config,
        val_logloss=analysis.predicted_logloss,
        flops=analysis.target_flops,
        params_dense=analysis.target_params,
        latency_ms=analysis.target_latency_ms,
    )
