"""One offline HTML page: plotly.js embedded once, no network request."""

from __future__ import annotations

import html
from pathlib import Path

import plotly.io as pio
from plotly.offline import get_plotlyjs
from unimixer_plan.errors import PlanError
from unimixer_plan.reports.data import load_report_data
from unimixer_plan.reports.figures import all_figures

PNG_HINT = "PNG export needs Chromium: apt-get install chromium (kaleido finds it on PATH)"


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    data = load_report_data(run_dir)
    figures = all_figures(data)
    sections = []
    for name, fig in figures.items():
        div = pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            div_id=f"figure-{name}",
            config={"displaylogo": False, "responsive": True},
        )
        sections.append(f'<section id="{name}">{div}</section>')
    chosen = data.chosen
    headline = (
        "No configuration was chosen."
        if chosen is None
        else (
            f"Chosen: {html.escape(chosen.model.family)} at {chosen.certificate.flops_fvcore:,} FLOPs/sample, "
            f"validation logloss {chosen.val_logloss:.4f}" + (" (predicted)" if chosen.predicted else "")
        )
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>unimixer-plan report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}} section{{margin:2em 0}}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body><h1>unimixer-plan report</h1>
<p>{headline}. Run folder: <code>{html.escape(data.run_dir)}</code>; data: {html.escape(data.summary.data)};
{data.summary.trials} trials. FLOPs are forward operations per sample, 2 per multiply-add.</p>
{"".join(sections)}
</body></html>
"""
    path = Path(out) if out else Path(run_dir) / "report.html"
    path.write_text(page)
    return path


def write_pngs(run_dir: str | Path, out_dir: str | Path) -> list[Path]:
    import shutil

    if not any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        raise PlanError(f"--png {out_dir}: {PNG_HINT}")
    import kaleido  # noqa: F401  (plotly's image export backend)

    figures = all_figures(load_report_data(run_dir))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png" for name in figures]
    pio.write_images(list(figures.values()), paths, width=1000, height=600)
    return paths
