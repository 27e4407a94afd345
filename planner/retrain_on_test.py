"""After the choice: the chosen configuration and the runner-up, re-trained with fresh seeds and scored on
the test split, so that the quality a plan reports was not used to make it (no winner's curse).

The search, successive halving, the scaling fits and the choice read the validation split only; a trial's
validation logloss is the best of many and biased low. Here each of the two is trained
``PlanConfig.test_seeds`` times (3 by default) on the rows its trial trained on, with seeds no search
trial used (the plan's seed + 1, + 2, ...: a trial chosen for a lucky initialisation is not scored with
that luck), early-stopped on validation as every trial is, and its best epoch scored on the test
split. The two are compared on the same rows with a paired bootstrap over rows and seeds.

What is re-trained: on a direct search, the chosen trial and the best fitting trial of another
architecture; on a ladder, the chosen target is too large to train here, so the best top-rung proxies
of the chosen family and the runner-up family (the family with the next highest probability) stand
for them: the test split says whether the family choice holds on rows nothing chose on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from unimixer_plan import outcome
from unimixer_plan.data import CTRData
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.run.final_check import FinalCheck, PairedComparison, RetrainedScore
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.summary import PlanSummary
from unimixer_plan.run.trial_record import TrialRecord
from unimixer_plan.scaling.ladder import best_per_rung
from unimixer_plan.training.metrics import RankedScores, SplitScore, row_logloss
from unimixer_plan.training.trainer import evaluate

BOOTSTRAP_DRAWS = 1_000
DIRECT_SUBJECT = "the chosen trial and the best fitting trial of another architecture"
LADDER_SUBJECT = (
    "the best top-rung proxies of the chosen family and of the runner-up family (the highest rung both completed)"
)


def with_final_check(
    plan: PlanConfig,
    folder: RunFolder,
    data: CTRData,
    summary: PlanSummary,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> PlanSummary:
    """``summary`` with its ``final_check``: computed once, kept in final_check.json (a resumed plan
    with the same pair, seeds and test rows reuses it). ``on_progress(trained, total)`` follows it."""
    pair = subjects(summary, folder.load_trials(), plan)
    if pair is None or plan.test_seeds == 0:
        return summary
    chosen, runner_up, subject = pair
    key = {
        "chosen": chosen.trial_id,
        "runner_up": runner_up.trial_id if runner_up else None,
        "seeds": check_seeds(plan),
        "test_rows": len(data.test),
    }
    file = folder.final_check_file
    if file.exists():
        try:
            kept = json.loads(file.read_text())
            if kept["key"] == key:
                return replace(summary, final_check=FinalCheck.from_dict(kept["check"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # torn or from another choice: computed again
    try:
        check = final_check(plan, data, data.schema, chosen, runner_up, subject, on_progress)
    except ChosenNeverTrained as failed:
        return replace(summary, warnings=(*(summary.warnings or ()), f"test split: {failed}"))
    if check is None:
        warning = "test split: the data has no test rows; nothing reported was scored on rows that did not choose it"
        return replace(summary, warnings=(*(summary.warnings or ()), warning))
    if not check.failures:  # a check with failed seeds is reported, and tried again on --resume
        file.write_text(json.dumps({"key": key, "check": check.to_dict()}, indent=2) + "\n")
    return replace(summary, final_check=check)


class ChosenNeverTrained(Exception):
    """No seed of the chosen configuration trained again: no check, and the message says why."""

    def __init__(self, chosen: TrialRecord, errors: list[str]) -> None:
        causes = " | ".join(dict.fromkeys(errors)) or "no seed ran"  # distinct errors, in order
        super().__init__(
            f"no seed of the chosen configuration (trial {chosen.trial_id}) trained again, no check: {causes}"
        )


def check_seeds(plan: PlanConfig) -> list[int]:
    """Seeds no search trial trained with (every search trial uses the plan's seed)."""
    return list(range(plan.seed + 1, plan.seed + 1 + plan.test_seeds))


def subjects(
    summary: PlanSummary, rows: list[TrialRecord], plan: PlanConfig
) -> tuple[TrialRecord, TrialRecord | None, str] | None:
    """The trials to re-train: (chosen, runner-up, what they are). On a direct search the chosen trial
    and the best fitting trial of another architecture; on a ladder the best top-rung proxy of the
    chosen family and of the family with the next highest probability of the lowest logloss."""
    chosen = summary.chosen
    if chosen is None:
        return None
    if summary.mode == "direct":
        pick = next(r for r in rows if r.trial_id == chosen.trial_id)
        fitting = [
            r
            for r in outcome.full_fidelity_rows(rows)
            if plan.budget.admits(r.flops, r.params_dense, r.latency_ms)
            and (r.family, r.knobs) != (pick.family, pick.knobs)
        ]
        runner_up = min(fitting, key=lambda r: (r.val_logloss, r.flops)) if fitting else None
        return pick, runner_up, DIRECT_SUBJECT
    family = chosen.model.family
    best = {f: {r.rung: r for r in best_per_rung(rows, f)} for f in sorted({r.family for r in rows if r.family})}
    if not best.get(family):
        return None
    probabilities = summary.family_probabilities or {}
    others = sorted((f for f in best if f != family and best[f]), key=lambda f: (-probabilities.get(f, 0.0), f))
    if not others:
        return best[family][max(best[family])], None, LADDER_SUBJECT
    # the highest rung both families completed: a pair on one rung, the same rows and budget
    rung = max(set(best[family]) & set(best[others[0]]), default=max(best[family]))
    return best[family][rung], best[others[0]].get(rung), LADDER_SUBJECT


def final_check(
    plan: PlanConfig,
    data: CTRData,
    schema: dict,
    chosen: TrialRecord,
    runner_up: TrialRecord | None,
    subject: str,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> FinalCheck | None:
    """Re-train and score both on the test split (None when the data has no test rows; a seed that fails
    is listed in ``failures`` and left out; :class:`ChosenNeverTrained` when every seed of the chosen
    configuration failed)."""
    if not len(data.test):
        return None
    pair = [(role, record) for role, record in (("chosen", chosen), ("runner-up", runner_up)) if record is not None]
    # on the driver, after its search's Ray has stopped: every core, or its GPU when trials trained on
    # GPUs and it has one (a CPU driver of a GPU cluster trains them on its CPU, slowly)
    device = "cuda" if plan.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return _retrain_pair(plan, data, schema, pair, subject, device, on_progress)
    finally:
        torch.set_num_threads(threads)


def _retrain_pair(
    plan: PlanConfig,
    data: CTRData,
    schema: dict,
    pair: list[tuple[str, TrialRecord]],
    subject: str,
    device: str,
    on_progress: Callable[[int, int], None],
) -> FinalCheck:
    scores, logits = {}, {}
    total, done = plan.test_seeds * len(pair), 0
    on_progress(done, total)
    failures: list[str] = []
    errors: dict[str, list[str]] = {role: [] for role, _ in pair}
    for role, record in pair:
        seeds, splits = [], []
        for seed in check_seeds(plan):
            result = evaluate(
                record.model_config(schema),
                data,
                record.fidelity,
                seed=seed,
                settings=plan.train,
                device=device,
                score_test=True,
            )
            done += 1
            on_progress(done, total)
            if result.ok and result.test is not None:
                seeds.append(seed)
                splits.append(result.test)
            else:  # recorded, not raised: the plan's choice stands, the check uses the seeds that trained
                failures.append(f"{role} (trial {record.trial_id}) seed {seed}: {result.error}")
                errors[role].append(str(result.error))
        if splits:
            scores[role] = retrained_score(role, record, seeds, splits)
            logits[role] = np.stack([s.logits for s in splits])
    if "chosen" not in scores:
        raise ChosenNeverTrained(pair[0][1], errors["chosen"])
    labels = data.test.labels.numpy()
    paired = None
    if "runner-up" in logits:
        paired = paired_bootstrap(labels, logits["chosen"], logits["runner-up"], plan.seed)
    return FinalCheck(
        subject=subject,
        rows=len(labels),
        chosen=scores["chosen"],
        runner_up=scores.get("runner-up"),
        paired=paired,
        failures=failures,
    )


def retrained_score(role: str, record: TrialRecord, seeds: list[int], splits: list[SplitScore]) -> RetrainedScore:
    """Means over the seeds; each SE adds the seeds' spread (sd/sqrt(n)) and the rows' mean SE in quadrature."""

    def mean_and_se(values: list[float], row_ses: list[float]) -> tuple[float, float]:
        seed_var = float(np.var(values, ddof=1)) / len(values) if len(values) > 1 else 0.0
        return float(np.mean(values)), float(np.sqrt(seed_var + np.mean(row_ses) ** 2))

    logloss, logloss_se = mean_and_se([s.logloss for s in splits], [s.logloss_se for s in splits])
    auc, auc_se = mean_and_se([s.auc for s in splits], [s.auc_se for s in splits])
    return RetrainedScore(
        role=role,
        trial_id=record.trial_id,
        family=record.family or "",
        flops=record.flops or 0,
        fidelity=record.fidelity or 0,
        seeds=seeds,
        logloss=logloss,
        logloss_se=logloss_se,
        auc=auc,
        auc_se=auc_se,
        per_seed=[{"seed": seed, "logloss": s.logloss, "auc": s.auc} for seed, s in zip(seeds, splits, strict=True)],
    )


def paired_bootstrap(
    labels: np.ndarray, chosen: np.ndarray, runner_up: np.ndarray, seed: int, draws: int | None = None
) -> PairedComparison:
    """Chosen minus runner-up on the same rows (``chosen``/``runner_up``: logits, one row per seed). A draw
    resamples the rows (each row's count) and, apart for each configuration, its seeds, so that the
    interval carries the training's randomness as well as the test rows'; a configuration's loss in a
    draw is the mean over its drawn seeds of their weighted mean row loss, its AUC likewise.
    ``draws``: 1,000, fewer on a large test split (each costs a pass over its rows per seed)."""
    rows = len(labels)
    draws = draws or int(np.clip(2e8 / max(rows, 1), 200, BOOTSTRAP_DRAWS))
    chosen_loss, runner_up_loss = row_logloss(labels, chosen), row_logloss(labels, runner_up)
    chosen_ranked = [RankedScores(labels, s) for s in chosen]
    runner_up_ranked = [RankedScores(labels, s) for s in runner_up]
    rng = np.random.default_rng(seed)
    loss_draws = np.empty(draws)
    auc_draws = np.empty(draws)
    for k in range(draws):
        counts = np.bincount(rng.integers(0, rows, rows), minlength=rows).astype(np.float64)
        pick_c = rng.integers(0, len(chosen), len(chosen))
        pick_r = rng.integers(0, len(runner_up), len(runner_up))
        loss_draws[k] = (chosen_loss[pick_c] @ counts).mean() / rows - (runner_up_loss[pick_r] @ counts).mean() / rows
        aucs_c = [chosen_ranked[i].auc(counts) for i in pick_c]
        aucs_r = [runner_up_ranked[i].auc(counts) for i in pick_r]
        auc_draws[k] = np.mean(aucs_c) - np.mean(aucs_r)
    auc_difference = np.mean([r.auc() for r in chosen_ranked]) - np.mean([r.auc() for r in runner_up_ranked])
    return PairedComparison(
        logloss_difference=float(chosen_loss.mean() - runner_up_loss.mean()),
        logloss_interval=[float(q) for q in np.quantile(loss_draws, [0.05, 0.95])],
        auc_difference=float(auc_difference),
        auc_interval=[float(q) for q in np.nanquantile(auc_draws, [0.05, 0.95])],
        probability_chosen_better=float(np.mean(loss_draws < 0)),
        draws=draws,
    )
