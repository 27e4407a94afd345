"""Export a run's chosen (or any trial's) configuration for trainers and serving.

- yaml / json: the model config with the data schema, budget, metrics and versions;
  ``unimixer_plan.mixers.build_model(mixers.load_config(path))`` rebuilds the identical architecture.
- torchscript / onnx: the built module (eval mode, mixing matrices precomputed) with
  freshly initialised weights seeded by the plan's seed: the serving graph of exactly
  that architecture, for latency tests and serving integration, not trained weights
  (the planner trains proxies, never the target model).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from unimixer_plan.data import load_data
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers import ModelConfig, analytic_cost, build_model, save_config
from unimixer_plan.profiling import example_inputs
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.run.records import export_metadata
from unimixer_plan.run.summary import Certificate, Chosen
from unimixer_plan.run.trial_record import TrialRecord

FORMATS = ("yaml", "json", "torchscript", "onnx")


def select_trial(folder: RunFolder, trial_id: int) -> TrialRecord:
    rows = folder.load_trials()
    matches = [r for r in rows if r.trial_id == trial_id]
    if not matches or not matches[0].family:
        known = sorted(r.trial_id for r in rows if r.family)
        raise PlanError(f"--trial {trial_id}: no such trial with a model in {folder.trials_file}; known: {known}")
    return matches[0]


def selected_config(folder: RunFolder, trial_id: int | None) -> tuple[ModelConfig, dict[str, Any]]:
    """The config to export and the metrics that travel with it: the plan's chosen one (which on a
    proxy ladder is the scaled-up target, not a trial), or the given trial's."""
    plan = folder.load_plan()
    data = load_data(plan.data, train_rows=16)  # the schema only: cardinalities come from the data
    if trial_id is None:
        summary = folder.load_summary()
        if summary.chosen is None:
            raise PlanError(f"{folder.path}: the plan chose no configuration; pass --trial ID")
        return summary.chosen.model, export_metadata(plan, data, summary.chosen, summary.final_check)
    record = select_trial(folder, trial_id)
    config = record.model_config(data.schema)
    # The trial's own recorded costs (FLOPs by the analytic count fvcore matches), not certified again.
    costs = Certificate(
        flops_fvcore=analytic_cost(config).flops, params_dense=record.params_dense, latency_ms=record.latency_ms
    )
    margins = plan.budget.margins(costs.flops_fvcore, record.params_dense, record.latency_ms)
    chosen = Chosen.of_trial(record, config, costs, margins)
    return config, {"trial_id": trial_id, **export_metadata(plan, data, chosen)}


def export(run_dir: str | Path, fmt: str, out: str | Path, trial_id: int | None = None) -> Path:
    if fmt not in FORMATS:
        raise PlanError(f"--format {fmt!r}: allowed: {', '.join(FORMATS)}")
    folder = RunFolder(Path(run_dir))
    config, metadata = selected_config(folder, trial_id)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("yaml", "json"):
        return save_config(config, out if out.suffix else out.with_suffix(f".{fmt}"), extra=metadata)
    torch.manual_seed(folder.load_plan().seed)
    model = build_model(config).eval()
    inputs = example_inputs(config, batch_size=4)
    with torch.no_grad():
        model(*inputs)  # builds and caches the mixing matrices, so the graph carries them as constants
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.trace is deprecated in torch 2.13 but still works
            traced = torch.jit.trace(model, inputs)
        traced.save(str(out))
        return out
    return export_onnx(model, inputs, out)


def export_onnx(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], out: Path) -> Path:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise PlanError("--format onnx: needs the onnx extras; run pip install 'unimixer-plan[export]'") from None
    batch = torch.export.Dim("batch", min=1)
    quiet = io.StringIO()
    onnx_logger = logging.getLogger("torch.onnx")
    previous = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                inputs,
                input_names=["dense", "sparse"],
                output_names=["logits"],
                dynamic_shapes=({0: batch}, {0: batch}),
                dynamo=True,
                verbose=False,
            )
            program.save(str(out))
    finally:
        onnx_logger.setLevel(previous)
    return out
