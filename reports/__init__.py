"""The Plotly report: data objects from a run folder, figures from them, one offline page."""

from __future__ import annotations

from unimixer_plan.reports.data import ReportData, load_report_data
from unimixer_plan.reports.figures import all_figures
from unimixer_plan.reports.page import write_pngs, write_report

__all__ = ["ReportData", "all_figures", "load_report_data", "write_pngs", "write_report"]
