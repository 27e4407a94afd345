"""The plan's summary as a person reads it in the terminal (``--json`` prints summary.json instead)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from unimixer_plan.formatting import format_count


def print_summary(summary: dict[str, Any]) -> None:
    statuses = ", ".join(f"{n} {s}" for s, n in summary["trials_by_status"].items() if n)
    typer.echo(f"{summary['trials']} trials ({statuses}); Pareto set: {summary['pareto_size']} configurations")
    chosen = summary["chosen"]
    if chosen is None:
        typer.echo("No trial reached full fidelity within the budgets: raise --trials or change --fidelity.")
        return
    model = chosen["model"]
    knobs = ", ".join(
        f"{k}={model[k]}"
        for k in ("n_tokens", "d_model", "heads", "rank", "bases", "depth", "ffn_ratio", "embed_dim")
        if model.get(k) is not None
    )
    if chosen.get("predicted"):
        low, high = chosen["val_logloss_interval"]
        typer.echo(f"chosen (scaled up from {len(chosen['proxy_points'])} proxy rungs): {model['family']} ({knobs})")
        typer.echo(
            f"  quality (predicted): val logloss {chosen['val_logloss']:.4f}, 90% interval [{low:.4f}, {high:.4f}] "
            f"at {chosen['fidelity']:,} training samples"
        )
        held = chosen.get("held_out")
        if held:
            typer.echo(
                f"  held-out check     : largest rung predicted {held['predicted']:.4f} vs measured "
                f"{held['actual']:.4f} ({held['relative_error']:.2%} error, {held['extrapolation_factor']:.1f}x beyond)"
            )
    else:
        typer.echo(f"chosen: trial {chosen['trial_id']}, {model['family']} ({knobs})")
        typer.echo(
            f"  quality            : val logloss {chosen['val_logloss']:.4f}, val AUC {chosen['val_auc']:.4f} "
            f"after {chosen['epochs']} epochs over {chosen['fidelity']:,} training samples "
            f"(best epoch {chosen['best_epoch']})"
        )
    for name, base in summary.get("baselines", {}).items():
        gain = chosen.get("gain_over_baselines", {}).get(name, {})
        logloss_gain = gain.get("logloss", 0.0)
        typer.echo(
            f"  vs {name + ' baseline':<17}: val logloss {base['val_logloss']:.4f} "
            f"(chosen {abs(logloss_gain):.4f} {'lower' if logloss_gain > 0 else 'higher'})"
            + (f", AUC {base['val_auc']:.4f} (chosen {gain['auc']:+.4f})" if "auc" in gain else "")
        )
    for warning in summary.get("warnings", []):
        typer.echo(f"  warning: {warning}")
    budget = summary["budget"]
    latency_name = f"latency @{chosen['batch_size']} {chosen['device']}"
    for name, value, limit, key, fmt in (
        ("FLOPs/sample", chosen["flops_fvcore"], budget["flops"], "flops", format_count),
        ("dense params", chosen["params_dense"], budget["params"], "params", format_count),
        (latency_name, chosen["latency_ms"], budget["latency_ms"], "latency_ms", lambda v: f"{v:.3f} ms"),
    ):
        if limit is None:
            typer.echo(f"  {name:<19}: {fmt(value)}")
        else:
            typer.echo(f"  {name:<19}: {fmt(value)} of {fmt(limit)} ({chosen['margins'][key]:+.1%} margin)")
    typer.echo(f"config: {Path(summary['run_dir']) / 'chosen.yaml'}")
    typer.echo(f"report: {Path(summary['run_dir']) / 'report.html'}")
