"""Render the benchmarks page and the README's tables from the benchmarks' latest results.

Every benchmark on the page writes ``bench-out/<name>/<name>.json`` (its numbers, with ``meta``:
date and machine) and ``<name>.md`` (its table). This script reads whichever exist and

- writes ``benchmarks/index.html``: one offline page (plotly.js embedded once), per benchmark its
  table and its figures (built from the JSON apart from the page: ``FIGURES``);
- replaces each ``<!-- bench:<name> -->`` ... ``<!-- /bench:<name> -->`` block of README.md with
  the benchmark's table; text outside the blocks is never touched.

``run_all.py`` runs the benchmarks and then this.

    .venv/bin/python benchmarks/render.py [--results bench-out] [--readme README.md]
"""

from __future__ import annotations

import argparse
import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "benchmarks" / "index.html"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
TITLES = {
    "search": "Search efficiency: hypervolume against trials and training time",
    "throughput": "Training throughput at matched FLOPs against the matmul peak",
    "overhead": "Ray Tune + Optuna overhead per trial at 1,000 trials",
    "families": "Families at matched FLOPs against the tuned lr and fm baselines",
    "cost": "The cost model: analytic against fvcore",
    "plan": "The default plan end to end",
    "prediction": "Predictions checked by training the predicted model",
    "ladder_search": "The ladder's search: one study per rung with warm starts, against per-family random studies",
}


def hv_against_time(runs: list[dict[str, Any]], points: int = 200) -> tuple[list[float], list[float]]:
    """Mean over seeds of each seed's hypervolume ratio at a common time (0 before its first trial)."""
    end = max(r["train_s"][-1] for r in runs)
    grid = [end * k / (points - 1) for k in range(points)]
    mean = []
    for t in grid:
        values = [
            next((hv for s, hv in zip(r["train_s"][::-1], r["hv_ratio"][::-1], strict=True) if s <= t), 0.0)
            for r in runs
        ]
        mean.append(sum(values) / len(values))
    return grid, mean


def search_figures(result: dict[str, Any]) -> list[go.Figure]:
    """Mean hypervolume ratio (band: min-max over seeds) per method, per trial and per training second."""
    by_trials, by_time = go.Figure(), go.Figure()
    for k, (method, runs) in enumerate(result["runs"].items()):
        colour = COLOURS[k % len(COLOURS)]  # one colour per method, in both figures and its band
        n = min(len(r["hv_ratio"]) for r in runs)
        mean = [sum(r["hv_ratio"][i] for r in runs) / len(runs) for i in range(n)]
        low = [min(r["hv_ratio"][i] for r in runs) for i in range(n)]
        high = [max(r["hv_ratio"][i] for r in runs) for i in range(n)]
        trials = list(range(1, n + 1))
        line = {"color": colour}
        by_trials.add_trace(go.Scatter(x=trials, y=mean, name=method, mode="lines", line=line, legendgroup=method))
        by_trials.add_trace(
            go.Scatter(
                x=trials + trials[::-1],
                y=high + low[::-1],
                fill="toself",
                fillcolor=colour,
                opacity=0.12,
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                legendgroup=method,
                name=f"{method} range",
            )
        )
        grid, at_time = hv_against_time(runs)
        by_time.add_trace(go.Scatter(x=grid, y=at_time, name=method, mode="lines", line=line))
    at = max(1, int(0.15 * result["meta"]["grid_feasible"]))
    by_trials.add_vline(x=at, line_dash="dot", annotation_text="15 % of the grid")
    for fig, axis in ((by_trials, "trials"), (by_time, "seconds: recorded training + search overhead")):
        fig.add_hline(y=0.99, line_dash="dot", annotation_text="0.99")
        fig.update_layout(
            title=f"Hypervolume / grid's, against {axis}",
            xaxis_title=axis,
            yaxis_title="hypervolume ratio",
            yaxis_range=[0.0, 1.02],
        )
    return [by_trials, by_time]


def throughput_figures(result: dict[str, Any]) -> list[go.Figure]:
    fig = go.Figure()
    for family in dict.fromkeys(r["family"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["family"] == family]
        fig.add_trace(
            go.Bar(x=[f"{r['flops_per_sample']:.2g}" for r in rows], y=[r["gflops_per_s"] for r in rows], name=family)
        )
    fig.add_hline(y=result["meta"]["square_matmul_gflops"], line_dash="dot", annotation_text="torch.mm 1024^3")
    fig.update_layout(
        title="Training GFLOP/s per family at matched FLOPs/sample",
        barmode="group",
        xaxis_title="FLOPs/sample",
        yaxis_title="GFLOP/s",
    )
    return [fig]


def overhead_figures(result: dict[str, Any]) -> list[go.Figure]:
    fig = go.Figure()
    for run in result["runs"]:
        windows = run["s_per_trial_by_100"]
        fig.add_trace(
            go.Scatter(
                x=[100 * (i + 1) for i in range(len(windows))],
                y=windows,
                name=f"{run['workers']} worker(s)",
                mode="lines+markers",
            )
        )
    fig.update_layout(
        title="Seconds per trial, per window of 100 trials", xaxis_title="trials", yaxis_title="s per trial"
    )
    return [fig]


def families_figures(result: dict[str, Any]) -> list[go.Figure]:
    """Per dataset: validation logloss against FLOPs/sample per family (bars: min..max over seeds)."""
    figures = []
    for name, data in result["datasets"].items():
        fig = go.Figure()
        for family in dict.fromkeys(c["family"] for c in data["cells"]):
            cells = [c for c in data["cells"] if c["family"] == family]
            mean = [c["logloss"]["mean"] for c in cells]
            fig.add_trace(
                go.Scatter(
                    x=[c["flops"] for c in cells],
                    y=mean,
                    name=family,
                    mode="lines+markers",
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [c["logloss"]["max"] - m for c, m in zip(cells, mean, strict=True)],
                        "arrayminus": [m - c["logloss"]["min"] for c, m in zip(cells, mean, strict=True)],
                    },
                )
            )
        for baseline, row in data["baselines"].items():
            fig.add_hline(y=row["logloss"]["mean"], line_dash="dot", annotation_text=f"{baseline} (tuned)")
        fig.update_layout(
            title=f"{name}: validation logloss at matched FLOPs",
            xaxis_type="log",
            xaxis_title="FLOPs/sample",
            yaxis_title="validation logloss",
        )
        figures.append(fig)
    return figures


def prediction_figures(result: dict[str, Any]) -> list[go.Figure]:
    """Per case: the predicted logloss with its 90 % interval, and what training the chosen model measured."""
    rows = [r for r in result["rows"] if "error" not in r]
    labels = [f"{r['data']}, seed {r['seed']}, {r['family']} at {r['flops']:.2g}" for r in rows]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=labels,
            y=[r["predicted"] for r in rows],
            mode="markers",
            name="predicted [90 %]",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [r["interval"][1] - r["predicted"] for r in rows],
                "arrayminus": [r["predicted"] - r["interval"][0] for r in rows],
            },
        )
    )
    fig.add_trace(
        go.Scatter(
            x=labels,
            y=[r["measured"] for r in rows],
            mode="markers",
            name="measured",
            marker={"symbol": "x", "size": 10},
        )
    )
    fig.update_layout(title="Predicted against measured validation logloss", yaxis_title="validation logloss")
    return [fig]


def ladder_search_series(result: dict[str, Any], key: str) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """Per layout: rung indices, the mean over seeds of ``key`` (a rung's number) and its sd."""
    series = {}
    for layout in ("joint", "per-family"):
        rungs, means, sds = [], [], []
        for rung in result["rungs"]:
            values = [seed[layout]["rungs"][str(rung["index"])][key] for seed in result["seeds"]]
            values = [v for v in values if v == v]  # NaN: a rung without a complete trial
            if values:
                mean = sum(values) / len(values)
                rungs.append(rung["index"])
                means.append(mean)
                sds.append((sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5)
        series[layout] = (rungs, means, sds)
    return series


def ladder_search_figures(result: dict[str, Any]) -> list[go.Figure]:
    figures = []
    for key, title in (("hypervolume", "Hypervolume per rung"), ("best", "Best validation logloss per rung")):
        fig = go.Figure()
        for colour, (layout, (rungs, means, sds)) in zip(
            COLOURS, ladder_search_series(result, key).items(), strict=False
        ):
            fig.add_trace(
                go.Scatter(x=rungs, y=means, error_y={"type": "data", "array": sds}, name=layout, line_color=colour)
            )
        fig.update_layout(title=f"{title} (mean ± sd over seeds)", xaxis_title="rung", yaxis_title=key)
        figures.append(fig)
    return figures


FIGURES: dict[str, Callable[[dict[str, Any]], list[go.Figure]]] = {
    "search": search_figures,
    "throughput": throughput_figures,
    "overhead": overhead_figures,
    "families": families_figures,
    "cost": lambda result: [],  # its table says it all
    "plan": lambda result: [],
    "prediction": prediction_figures,
    "ladder_search": ladder_search_figures,
}


def load_results(root: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """(JSON, Markdown table) of every page benchmark that has run, by name."""
    found = {}
    for name in FIGURES:
        data, table = root / name / f"{name}.json", root / name / f"{name}.md"
        if data.exists() and table.exists():
            found[name] = (json.loads(data.read_text()), table.read_text().strip())
    return found


def markdown_to_html(text: str) -> str:
    """The tables' Markdown (a caption line, a pipe table, notes) as HTML, without a Markdown library."""
    out, rows = [], []

    def flush() -> None:
        if rows:
            head, *body = rows
            cells = lambda r, tag: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in r)  # noqa: E731
            out.append(
                "<table><tr>"
                + cells(head, "th")
                + "</tr>"
                + "".join("<tr>" + cells(r, "td") + "</tr>" for r in body)
                + "</table>"
            )
            rows.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            if not re.fullmatch(r"\|[\s:|-]+\|", line):  # the separator row
                rows.append([c.strip() for c in line.strip("|").split("|")])
            continue
        flush()
        if line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def page(results: dict[str, tuple[dict[str, Any], str]]) -> str:
    sections = []
    for name, (data, table) in results.items():
        divs = "".join(
            pio.to_html(
                fig,
                include_plotlyjs=False,
                full_html=False,
                div_id=f"{name}-{i}",
                config={"displaylogo": False, "responsive": True},
            )
            for i, fig in enumerate(FIGURES[name](data))
        )
        sections.append(
            f'<section id="{name}"><h2>{html.escape(TITLES[name])}</h2>{markdown_to_html(table)}{divs}</section>'
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>unimixer-plan benchmarks</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}} section{{margin:2em 0}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body><h1>unimixer-plan benchmarks</h1>
<p>Regenerated by <code>benchmarks/run_all.py</code> from each benchmark's latest JSON.</p>
{"".join(sections)}
</body></html>
"""


MARKER = re.compile(r"<!-- (/?)bench:([\w-]+) -->")


def update_readme(text: str, tables: dict[str, str]) -> str:
    """``text`` with every ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->`` block holding
    ``tables[NAME]``; blocks without a table are kept. Markers must pair up in order, unnested: a
    stray one raises ValueError (naming it) rather than swallow the text up to the next block."""
    out, position, opened = [], 0, None
    for match in MARKER.finditer(text):
        closing, name = match.group(1) == "/", match.group(2)
        if not closing:
            if opened is not None:
                raise ValueError(f"README: <!-- bench:{name} --> inside the open block {opened.group(2)!r}")
            opened = match
            continue
        if opened is None or opened.group(2) != name:
            raise ValueError(f"README: <!-- /bench:{name} --> closes no open <!-- bench:{name} --> block")
        if name in tables:
            out.append(text[position : opened.end()] + "\n" + tables[name] + "\n")
            position = match.start()
        opened = None
    if opened is not None:
        raise ValueError(f"README: <!-- bench:{opened.group(2)} --> is never closed")
    return "".join(out) + text[position:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="'-': leave the README alone")
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args()
    results = load_results(args.results)
    if not results:
        raise SystemExit(f"--results {args.results}: no benchmark results there (run benchmarks/run_all.py)")
    args.page.write_text(page(results))
    print(f"{args.page}: {', '.join(results)}")
    if str(args.readme) != "-":
        args.readme.write_text(update_readme(args.readme.read_text(), {n: table for n, (_, table) in results.items()}))
        print(f"{args.readme}: bench blocks of {', '.join(results)} updated")


if __name__ == "__main__":
    main()
