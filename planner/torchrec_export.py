"""`unimixer-plan export RUN --format torchrec --out DIR`: what a TorchRec training job needs.

DIR gets three files:

- ``config.yaml``: the chosen (or ``--trial``) config with the same metadata as ``--format yaml``
  (schema, budget, metrics, the plan's data setting, versions);
  ``mixers.torchrec_model.build_torchrec_model(mixers.load_config(path))`` builds its TorchRec module;
- ``tables.json``: every table's rows, width and fp32 bytes, the total, the input contract
  (feature keys in table order), the fused embedding optimiser, the topology named by
  ``--world-size`` / ``--device-memory-gb`` / ``--device`` and TorchRec's sharding plan for it
  (``{table: {"sharding_type", "ranks"}}``), and the command that trains it;
- ``train.sh``: that command (``unimixer-plan train DIR/config.yaml --engine torchrec --nproc N``,
  which trains the plan's recorded data setting), and the torchrun line that launches the same.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from unimixer_plan.errors import PlanError
from unimixer_plan.export import export, selected_config
from unimixer_plan.mixers import save_config
from unimixer_plan.mixers.embedding_tables import embedding_tables
from unimixer_plan.mixers.torchrec_model import TorchRecModel, describe, require_torchrec
from unimixer_plan.mixers.torchrec_sharding import fused_optimizer, sharding_plan
from unimixer_plan.run.folder import RunFolder
from unimixer_plan.training.batch_size import batch_size_for

DEVICES = ("cpu", "cuda")


def train_commands(config_path: Path, world_size: int, device_memory_gb: float | None) -> dict[str, str]:
    """The command that trains ``config_path`` with TorchRec on ``world_size`` processes, and the
    torchrun line that launches the same job (one process per device, e.g. per GPU)."""
    memory = [] if device_memory_gb is None else ["--device-memory-gb", f"{device_memory_gb:g}"]
    train = ["train", str(config_path), "--engine", "torchrec"]
    return {
        "command": shlex.join(["unimixer-plan", *train, "--nproc", str(world_size), *memory]),
        "torchrun": shlex.join(
            ["torchrun", f"--nproc-per-node={world_size}", "--no-python", "unimixer-plan", *train, *memory]
        ),
    }


def export_any(
    run_dir: str | Path,
    fmt: str,
    out: str | Path,
    trial_id: int | None,
    world_size: int | None,
    device_memory_gb: float | None,
    device: str | None,
) -> Path:
    """`unimixer-plan export`: --format torchrec here, the other formats in ``export.export``, which
    take no topology option."""
    if fmt == "torchrec":
        return export_torchrec(run_dir, out, trial_id, world_size or 1, device_memory_gb, device or "cpu")
    topology = {"--world-size": world_size, "--device-memory-gb": device_memory_gb, "--device": device}
    given = [f"{name} {value}" for name, value in topology.items() if value is not None]
    if given:
        raise PlanError(f"{given[0]}: only with --format torchrec")
    return export(run_dir, fmt, out, trial_id=trial_id)


def export_torchrec(
    run_dir: str | Path,
    out: str | Path,
    trial_id: int | None = None,
    world_size: int = 1,
    device_memory_gb: float | None = None,
    device: str = "cpu",
) -> Path:
    require_torchrec("--format torchrec")
    if device not in DEVICES:
        raise PlanError(f"--device {device!r}: allowed with --format torchrec: {', '.join(DEVICES)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PlanError(f"--out {out}: exists and is not a folder; --format torchrec writes a folder")
    folder = RunFolder(Path(run_dir))
    config, metadata = selected_config(folder, trial_id)
    trainer = folder.load_plan().train
    # The plan's batch (None: the trainer's rule in the training rows, which the plan's fidelity sets).
    batch = trainer.batch_size or batch_size_for(folder.load_plan().fidelity)
    plan = sharding_plan(config, world_size, device_memory_gb, device, batch, trainer.embedding_optimizer)
    optimizer = fused_optimizer(trainer.embedding_optimizer, device, lambda rule: 0.0)  # for its name only
    out.mkdir(parents=True, exist_ok=True)
    config_path = save_config(config, out / "config.yaml", extra=metadata).resolve()
    commands = train_commands(config_path, world_size, device_memory_gb)
    spec: dict[str, Any] = {
        **embedding_tables(config).to_dict(),
        "input": describe(TorchRecModel(config, device="meta")),
        "build": "unimixer_plan.mixers.torchrec_model.build_torchrec_model(unimixer_plan.mixers.load_config(CONFIG))",
        "embedding_optimizer": f"{optimizer.fbgemm_name} (fused; the project trainer's {trainer.embedding_optimizer})",
        "topology": {"world_size": world_size, "device_memory_gb": device_memory_gb, "compute_device": device},
        "sharding_plan": plan,
        **commands,
    }
    (out / "tables.json").write_text(json.dumps(spec, indent=2) + "\n")
    script = out / "train.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "# Train the exported model with TorchRec under DistributedModelParallel, on the plan's recorded data.\n"
        "set -euo pipefail\n"
        f"{commands['command']}\n"
        "# The same job launched by torchrun, one process per device:\n"
        f"# {commands['torchrun']}\n"
    )
    script.chmod(0o755)
    return out
