"""The plan's summary as a person reads it in the terminal (``--json`` prints summary.json instead)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from unimixer_plan.formatting import format_count
from unimixer_plan.mixers.embedding_tables import embedding_tables

if TYPE_CHECKING:
    from unimixer_plan.run.summary import PlanSummary

KNOBS = ("n_tokens", "d_model", "heads", "rank", "bases", "depth", "ffn_ratio", "embed_dim")


def print_summary(summary: PlanSummary) -> None:
    statuses = ", ".join(f"{n} {s}" for s, n in summary.trials_by_status.items() if n)
    typer.echo(f"{summary.trials} trials ({statuses}); Pareto set: {summary.pareto_size} configurations")
    chosen = summary.chosen
    if chosen is None:
        typer.echo("No trial reached full fidelity within the budgets: raise --trials or change --fidelity.")
        return
    model = chosen.model
    knobs = ", ".join(f"{k}={getattr(model, k)}" for k in KNOBS if getattr(model, k) is not None)
    if chosen.predicted:
        low, high = chosen.val_logloss_interval
        typer.echo(f"chosen (scaled up from {len(summary.rungs or [])} proxy rungs): {model.family} ({knobs})")
        typer.echo(
            f"  quality (predicted): val logloss {chosen.val_logloss:.4f}, 90% interval [{low:.4f}, {high:.4f}] "
            f"for {chosen.fidelity:,} distinct training samples"
        )
        step = chosen.extrapolation or {}
        if step:
            typer.echo(
                f"  extrapolation      : {step['flops']:,.0f}x the largest proxy's FLOPs/sample and "
                f"{step['data']:,.0f}x its training data"
            )
        held = chosen.held_out
        if held:
            typer.echo(
                f"  held-out check     : top rung predicted {held.predicted:.4f} vs measured {held.actual:.4f} "
                f"({held.relative_error:.2%} error, {'inside' if held.covered else 'OUTSIDE'} its 90% interval) at "
                f"a step of {held.step['flops']:.0f}x FLOPs and {held.step['data']:.0f}x data"
            )
    else:
        typer.echo(f"chosen: trial {chosen.trial_id}, {model.family} ({knobs})")
        typer.echo(
            f"  validation         : val logloss {chosen.val_logloss:.4f}, val AUC {chosen.val_auc:.4f} "
            f"after {chosen.epochs} epochs over {chosen.fidelity:,} training samples "
            f"(best epoch {chosen.best_epoch}; the search trial's, which chose it: biased low)"
        )
    if summary.final_check is not None:
        print_final_check(summary)
    gains = chosen.gain_over_baselines or {}
    if chosen.predicted and chosen.top_proxy and summary.baselines:
        top = chosen.top_proxy
        typer.echo(
            f"  baselines          : on the top rung's {top['fidelity']:,} rows, against {model.family}'s best "
            f"proxy there (trial {top['trial_id']}, val logloss {top['val_logloss']:.4f})"
        )
    for name, base in (summary.baselines or {}).items():
        gain = gains.get(name)
        logloss_gain = gain.logloss if gain else 0.0
        typer.echo(
            f"  vs {name + ' baseline':<17}: val logloss {base.val_logloss:.4f} "
            f"(chosen {abs(logloss_gain):.4f} {'lower' if logloss_gain > 0 else 'higher'})"
            + (f", AUC {base.val_auc:.4f} (chosen {gain.auc:+.4f})" if gain and gain.auc is not None else "")
        )
    if summary.family_probabilities and len(summary.family_probabilities) > 1:
        ranked = sorted(summary.family_probabilities.items(), key=lambda item: -item[1])
        typer.echo("  P(lowest at target): " + ", ".join(f"{family} {p:.2f}" for family, p in ranked))
    for warning in summary.warnings or ():
        typer.echo(f"  warning: {warning}")
    budget = summary.budget
    certificate = chosen.certificate
    latency_name = f"latency @{certificate.batch_size} {certificate.device}"
    for name, value, limit, key, fmt in (
        ("FLOPs/sample", certificate.flops_fvcore, budget.flops, "flops", format_count),
        ("dense params", certificate.params_dense, budget.params, "params", format_count),
        (latency_name, certificate.latency_ms, budget.latency_ms, "latency_ms", lambda v: f"{v:.3f} ms"),
    ):
        if limit is None:
            typer.echo(f"  {name:<19}: {fmt(value)}")
        else:
            typer.echo(f"  {name:<19}: {fmt(value)} of {fmt(limit)} ({chosen.margins[key]:+.1%} margin)")
    tables = embedding_tables(model)
    typer.echo(f"  {'embedding tables':<19}: {tables.headline()}")
    for line in textwrap.wrap(tables.listing(), width=96):
        typer.echo(f"    {line}")
    typer.echo(f"config: {Path(summary.run_dir) / 'chosen.yaml'}")
    typer.echo(f"report: {Path(summary.run_dir) / 'report.html'}")


def print_final_check(summary: PlanSummary) -> None:
    """The test split's numbers: models re-trained after the choice, scored on rows nothing chose on."""
    check = summary.final_check
    seeds = len(check.chosen.seeds)
    typer.echo(f"  test split ({check.rows:,} rows; {check.subject}, re-trained with {seeds} seeds):")
    for score in (check.chosen, check.runner_up):
        if score is not None:
            typer.echo(
                f"    {score.role:<10} trial {score.trial_id} {score.family}: test logloss {score.logloss:.4f} "
                f"± {score.logloss_se:.4f}, AUC {score.auc:.4f} ± {score.auc_se:.4f}"
            )
    for failure in check.failures:
        typer.echo(f"    did not train: {failure}")
    paired = check.paired
    if paired is not None:
        low, high = paired.logloss_interval
        typer.echo(
            f"    chosen - runner-up: logloss {paired.logloss_difference:+.4f} [{low:+.4f}, {high:+.4f}] "
            f"(paired bootstrap, 90%), P(chosen lower) {paired.probability_chosen_better:.2f}; "
            f"AUC {paired.auc_difference:+.4f}"
        )
