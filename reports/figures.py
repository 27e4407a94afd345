"""Plotly figures, each built from ``ReportData`` alone."""

from __future__ import annotations

import json
import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from unimixer_plan.mixers.embedding_tables import embedding_tables
from unimixer_plan.reports.data import ReportData, TrialPoint, final_check_rows

FAMILY_COLOURS = {
    "unimixing_lite": "#1f77b4",
    "unimixer": "#2ca02c",
    "rankmixer": "#d62728",
    "attention": "#9467bd",
    "wukong": "#ff7f0e",
}
KNOBS = ("n_tokens", "d_model", "heads", "rank", "bases", "depth", "ffn_ratio")


def _hover(t: TrialPoint) -> str:
    knobs = ", ".join(f"{k}={v}" for k, v in t.knobs.items() if v is not None)
    return (
        f"trial {t.trial_id} (rung {t.rung}) {t.family}<br>{knobs}<br>"
        f"status {t.status}, {t.epochs} epochs over {t.fidelity:,} samples"
        f"<br>val logloss {t.val_logloss:.4f}, AUC {t.val_auc:.4f}<br>FLOPs {t.flops:,.0f}, "
        f"params {t.params_dense:,.0f}"
    )


def pareto_figure(data: ReportData) -> go.Figure:
    """Validation logloss against FLOPs per family; early-stopped trials hollow; front and chosen marked."""
    fig = go.Figure()
    for family in sorted({t.family for t in data.trials}):
        for full, symbol, label in ((True, "circle", "full fidelity"), (False, "circle-open", "stopped early")):
            points = [
                t
                for t in data.trials
                if t.family == family and t.full_fidelity == full and math.isfinite(t.val_logloss)
            ]
            if points:
                fig.add_trace(
                    go.Scatter(
                        x=[t.flops for t in points],
                        y=[t.val_logloss for t in points],
                        mode="markers",
                        name=f"{family} ({label})",
                        marker={"symbol": symbol, "size": 9, "color": FAMILY_COLOURS.get(family, "#555")},
                        hovertext=[_hover(t) for t in points],
                        hoverinfo="text",
                    )
                )
    front = sorted((t for t in data.trials if t.on_front), key=lambda t: t.flops)
    if front:
        fig.add_trace(
            go.Scatter(
                x=[t.flops for t in front],
                y=[t.val_logloss for t in front],
                mode="lines",
                name="Pareto front (proxies)",
                line={"color": "black", "dash": "dot"},
            )
        )
    chosen = data.chosen
    if chosen:
        label = "chosen (predicted)" if chosen.predicted else "chosen"
        error = None
        if chosen.val_logloss_interval:
            low, high = chosen.val_logloss_interval
            error = {
                "type": "data",
                "symmetric": False,
                "array": [high - chosen.val_logloss],
                "arrayminus": [chosen.val_logloss - low],
            }
        fig.add_trace(
            go.Scatter(
                x=[chosen.certificate.flops_fvcore],
                y=[chosen.val_logloss],
                mode="markers",
                name=label,
                error_y=error,
                marker={"symbol": "star", "size": 18, "color": "gold", "line": {"color": "black", "width": 1}},
                hovertext=[json.dumps(chosen.model.to_dict() | {"val_logloss": chosen.val_logloss}, default=str)],
                hoverinfo="text",
            )
        )
    for name, base in (data.summary.baselines or {}).items():
        if base.status == "ok":  # the floor to beat, trained on the same rows by the same trainer
            fig.add_trace(
                go.Scatter(
                    x=[max(base.flops, 1)],
                    y=[base.val_logloss],
                    mode="markers+text",
                    name=f"{name} (baseline)",
                    text=[name],
                    textposition="top center",
                    marker={"symbol": "x", "size": 12, "color": "black"},
                )
            )
    if data.budget["flops"]:
        fig.add_vline(x=data.budget["flops"], line_dash="dash", line_color="grey", annotation_text="FLOPs budget")
    infeasible = sum(t.status == "infeasible" for t in data.trials)
    fig.update_layout(
        title=f"Quality vs cost ({infeasible} infeasible proposals not trained)",
        xaxis={"type": "log", "title": "forward FLOPs / sample"},
        yaxis={"title": "validation logloss"},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def three_objective_figure(data: ReportData) -> go.Figure | None:
    third = "latency_ms" if data.budget["latency_ms"] else "params_dense" if data.budget["params"] else None
    if third is None:
        return None
    points = [t for t in data.trials if t.full_fidelity and math.isfinite(getattr(t, third))]
    fig = go.Figure(
        go.Scatter3d(
            x=[math.log10(t.flops) for t in points],
            y=[getattr(t, third) for t in points],
            z=[t.val_logloss for t in points],
            mode="markers",
            hovertext=[_hover(t) for t in points],
            hoverinfo="text",
            marker={"size": 5, "color": [FAMILY_COLOURS.get(t.family, "#555") for t in points]},
        )
    )
    fig.update_layout(
        title=f"Three objectives: logloss, FLOPs and {third}",
        scene={"xaxis_title": "log10 FLOPs", "yaxis_title": third, "zaxis_title": "val logloss"},
    )
    return fig


def scaling_figure(data: ReportData) -> go.Figure | None:
    if not data.scaling:
        return None
    fig = go.Figure()
    for curve in data.scaling:
        colour = FAMILY_COLOURS.get(curve.family, "#555")
        held = curve.held_out
        check = f", held-out {held['relative_error']:.2%} {'inside' if held['passed'] else 'OUTSIDE'}" if held else ""
        fig.add_trace(
            go.Scatter(
                x=curve.grid + curve.grid[::-1],
                y=curve.band_high + curve.band_low[::-1],
                fill="toself",
                line={"width": 0},
                fillcolor=colour,
                opacity=0.15,
                name=f"{curve.family} 90% band at {curve.target_samples:,.0f} samples",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=curve.grid,
                y=curve.curve,
                mode="lines",
                line={"color": colour},
                name=f"{curve.family} law at {curve.target_samples:,.0f} samples (the target's data{check})",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=curve.grid,
                y=curve.proxy_curve,
                mode="lines",
                line={"color": colour, "dash": "dot"},
                name=f"{curve.family} law at {curve.proxy_samples:,.0f} samples (the top rung's data)",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=curve.compute,
                y=curve.loss,
                mode="markers",
                marker={"color": colour, "size": [7 + 6 * s / max(curve.samples) for s in curve.samples]},
                name=f"{curve.family} proxies (marker size: training samples)",
                hovertext=[
                    f"{c:,.0f} FLOPs, {s:,.0f} samples: {v:.4f}"
                    for c, s, v in zip(curve.compute, curve.samples, curve.loss, strict=True)
                ],
                hoverinfo="text",
            )
        )
        if curve.predicted is not None and curve.interval:
            fig.add_trace(
                go.Scatter(
                    x=[curve.target_flops],
                    y=[curve.predicted],
                    mode="markers",
                    name=f"{curve.family} at target",
                    marker={"symbol": "diamond", "size": 12, "color": colour},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [curve.interval[1] - curve.predicted],
                        "arrayminus": [curve.predicted - curve.interval[0]],
                    },
                )
            )
    fig.update_layout(
        title="Scaling laws L(C, N) = E + A C^-alpha + B N^-beta: at the proxies' data and at the target's",
        xaxis={"type": "log", "title": "forward FLOPs / sample"},
        yaxis={"title": "validation logloss"},
    )
    return fig


def history_figure(data: ReportData) -> go.Figure | None:
    if not data.history:
        return None
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    trials = [h.trial for h in data.history]
    fig.add_trace(go.Scatter(x=trials, y=[h.hypervolume for h in data.history], name="hypervolume"), secondary_y=False)
    best = [h.best_feasible_logloss if math.isfinite(h.best_feasible_logloss) else None for h in data.history]
    fig.add_trace(
        go.Scatter(x=trials, y=best, name="best within-budget logloss", line={"shape": "hv"}), secondary_y=True
    )
    fig.update_layout(title="Search history", xaxis_title="trial")
    fig.update_yaxes(title_text="hypervolume (logloss x log10 FLOPs)", secondary_y=False)
    fig.update_yaxes(title_text="val logloss", secondary_y=True)
    return fig


def parallel_figure(data: ReportData) -> go.Figure | None:
    points = [t for t in data.trials if math.isfinite(t.val_logloss)]
    if len(points) < 2:
        return None
    families = sorted({t.family for t in points})
    dims = [
        {
            "label": "family",
            "values": [families.index(t.family) for t in points],
            "tickvals": list(range(len(families))),
            "ticktext": families,
        }
    ]
    for knob in KNOBS:
        values = [t.knobs[knob] if t.knobs[knob] is not None else 0 for t in points]
        dims.append({"label": knob + (" (0 = unused)" if 0 in values else ""), "values": values})
    dims.append({"label": "val logloss", "values": [t.val_logloss for t in points]})
    fig = go.Figure(
        go.Parcoords(
            line={"color": [t.val_logloss for t in points], "colorscale": "Viridis_r", "showscale": True},
            dimensions=dims,
        )
    )
    fig.update_layout(title="Knobs against validation logloss")
    return fig


def importance_figure(data: ReportData) -> go.Figure | None:
    if not data.importances:
        return None
    names = sorted(data.importances, key=data.importances.get)
    fig = go.Figure(go.Bar(x=[data.importances[n] for n in names], y=names, orientation="h"))
    fig.update_layout(title="Optuna parameter importances for validation logloss", xaxis_title="importance")
    return fig


def latency_figure(data: ReportData) -> go.Figure | None:
    points = [t for t in data.trials if math.isfinite(t.latency_ms)]
    chosen = data.chosen
    if not points and not chosen:
        return None
    fig = go.Figure()
    if points:
        fig.add_trace(
            go.Scatter(
                x=[t.flops for t in points],
                y=[t.latency_ms for t in points],
                mode="markers",
                name="trials (measured)",
                hovertext=[_hover(t) for t in points],
                hoverinfo="text",
            )
        )
    if chosen:
        fig.add_trace(
            go.Scatter(
                x=[chosen.certificate.flops_fvcore],
                y=[chosen.certificate.latency_ms],
                mode="markers",
                name="chosen (certified)",
                marker={"symbol": "star", "size": 16, "color": "gold"},
            )
        )
    if data.budget["latency_ms"]:
        fig.add_hline(y=data.budget["latency_ms"], line_dash="dash", annotation_text="latency budget")
    fig.update_layout(
        title=f"Measured latency at batch {data.budget['batch_size']} on {data.budget['device']}",
        xaxis={"type": "log", "title": "forward FLOPs / sample"},
        yaxis={"type": "log", "title": "latency (ms)"},
    )
    return fig


def pareto_table(data: ReportData) -> go.Figure:
    front = sorted((t for t in data.trials if t.on_front), key=lambda t: t.flops)
    columns = ["trial", "family", *KNOBS, "FLOPs", "params", "val logloss", "val AUC"]
    cells = [
        [t.trial_id for t in front],
        [t.family for t in front],
        *[[t.knobs[k] if t.knobs[k] is not None else "" for t in front] for k in KNOBS],
        [f"{t.flops:,.0f}" for t in front],
        [f"{t.params_dense:,.0f}" for t in front],
        [f"{t.val_logloss:.4f}" for t in front],
        [f"{t.val_auc:.4f}" for t in front],
    ]
    fig = go.Figure(go.Table(header={"values": columns}, cells={"values": cells}))
    fig.update_layout(title=f"Pareto set ({len(front)} proxies, measured)")
    return fig


def chosen_table(data: ReportData) -> go.Figure:
    rows: list[tuple[str, str]] = []
    chosen = data.chosen
    if chosen:
        kind = "predicted by the scaling posterior" if chosen.predicted else "the search trial's, which chose it"
        model = chosen.model
        rows += [("family", model.family)]
        rows += [(k, str(getattr(model, k))) for k in KNOBS if getattr(model, k) is not None]
        quality = f"{chosen.val_logloss:.4f} ({kind})"
        if chosen.val_logloss_interval:
            low, high = chosen.val_logloss_interval
            quality += f", 90% interval [{low:.4f}, {high:.4f}]"
        rows.append(("val logloss", quality))
        rows += final_check_rows(data.summary)
        probabilities = data.summary.family_probabilities or {}
        if len(probabilities) > 1:
            ranked = sorted(probabilities.items(), key=lambda item: -item[1])
            rows.append(("P(lowest at target)", ", ".join(f"{family} {p:.2f}" for family, p in ranked)))
        budget = data.budget
        certificate = chosen.certificate
        for name, key, value, limit in (
            ("FLOPs / sample (fvcore)", "flops", certificate.flops_fvcore, budget["flops"]),
            ("dense params", "params", certificate.params_dense, budget["params"]),
            ("latency (ms)", "latency_ms", certificate.latency_ms, budget["latency_ms"]),
        ):
            margin = f" of {limit:,.4g} budget, margin {chosen.margins[key]:+.1%}" if limit else ""
            rows.append((name, f"{value:,.4g}{margin}"))
        tables = embedding_tables(model)
        rows.append(("embedding tables", f"{tables.headline()}: {tables.listing()}"))
    gains = (chosen.gain_over_baselines if chosen else None) or {}
    for name, base in (data.summary.baselines or {}).items():
        gain = gains.get(name)
        against = f"; chosen {gain.logloss:+.4f} logloss better" if gain else ""
        rows.append((f"baseline {name}", f"val logloss {base.val_logloss:.4f}, AUC {base.val_auc:.4f}{against}"))
    rows += [(f"warning {i + 1}", w) for i, w in enumerate(data.summary.warnings or ())]
    data_spec = data.plan["data"]
    rows += [
        ("dataset", data.summary.data),
        ("synthetic", "yes" if data.summary.synthetic else "no (real data: " + str(data_spec["path"]) + ")"),
        ("budgets", ", ".join(f"{k}={v}" for k, v in data.budget.items() if v is not None)),
        ("seed", str(data.plan["seed"])),
        ("fidelity", f"{data.plan['fidelity']:,} distinct training samples per trial, to early stopping"),
        ("versions", ", ".join(f"{k} {v}" for k, v in data.versions.items())),
    ]
    fig = go.Figure(
        go.Table(
            columnwidth=[1, 3],
            header={"values": ["", "chosen configuration and plan inputs"]},
            cells={"values": [[r[0] for r in rows], [r[1] for r in rows]], "align": "left"},
        )
    )
    fig.update_layout(title="Chosen configuration", height=200 + 30 * len(rows))  # room for wrapped rows
    return fig


def all_figures(data: ReportData) -> dict[str, go.Figure]:
    """Every figure of the report, by name, in page order (figures without data are left out)."""
    figures = {
        "chosen": chosen_table(data),
        "pareto": pareto_figure(data),
        "three_objectives": three_objective_figure(data),
        "scaling": scaling_figure(data),
        "history": history_figure(data),
        "parallel": parallel_figure(data),
        "importances": importance_figure(data),
        "latency": latency_figure(data),
        "pareto_table": pareto_table(data),
    }
    return {name: fig for name, fig in figures.items() if fig is not None}
