"""The TorchRec build of every family agrees with the project build, and its sharding plan and export.

Skipped where TorchRec is not installed (.ci/run installs it)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torchrec", exc_type=ImportError)

import torch
from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers import build_model, list_mixers, load_config
from unimixer_plan.mixers.torchrec_model import features_of, from_project, to_project
from unimixer_plan.mixers.torchrec_sharding import fused_optimizer, sharding_plan
from unimixer_plan.profiling import example_inputs

from tests.conftest import small_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "unimixing_lite.yaml"
# Distinct sizes, so that a row taken from the wrong field's offset cannot go unnoticed.
CARDINALITIES = (11, 5, 7, 2, 13)


def randomised(family: str, **overrides):
    """The family's small config with every weight drawn at random (zero-initialised LR weights too)."""
    model = build_model(small_config(family, cardinalities=CARDINALITIES, **overrides)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("family", list_mixers())
def test_same_weights_give_the_same_logits(family):
    project = randomised(family)
    torchrec_model = from_project(project).eval()
    dense, sparse = example_inputs(project.config, batch_size=16)
    expected = project(dense, sparse)
    got = torchrec_model(dense, features_of(sparse, torchrec_model.keys))
    assert got.shape == (16,)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max()
    assert expected.std() > 1e-3  # the inputs do move the logits: the comparison can fail


@pytest.mark.parametrize("family", list_mixers())
def test_weights_map_both_ways_exactly(family):
    project = randomised(family, embed_dim=1 if family == "lr" else 3)  # 3: padded to 4 in TorchRec
    torchrec_model = from_project(project)
    project_state = project.state_dict()
    back = torchrec_model.project_state()
    assert back.keys() == project_state.keys()
    assert all(torch.equal(back[k], project_state[k]) for k in project_state)
    # and from TorchRec: fresh TorchRec weights survive the trip through the project build
    with torch.no_grad():
        for name, weight in torchrec_model.named_parameters():
            weight.normal_(0, 0.3)
            if name.startswith("sparse_arch."):
                weight[:, torchrec_model.row_width :] = 0  # the padding FBGEMM needs stays 0
    state = torchrec_model.state_dict()
    again = from_project(to_project(torchrec_model)).state_dict()
    assert again.keys() == state.keys()
    assert all(torch.equal(again[k], state[k]) for k in state)


def test_the_features_hold_one_id_per_key_and_sample():
    sparse = torch.tensor([[3, 1], [4, 0], [5, 2]])
    features = features_of(sparse, ["C1", "C2"])
    assert features.keys() == ["C1", "C2"]
    assert features["C1"].values().tolist() == [3, 4, 5] and features["C2"].values().tolist() == [1, 0, 2]
    assert features["C2"].lengths().tolist() == [1, 1, 1]


def test_the_example_is_sharded_table_wise_over_both_ranks():
    plan = sharding_plan(load_config(EXAMPLE), world_size=2, device_memory_gb=None)
    assert list(plan) == [f"t_C{i}" for i in range(1, 27)]
    assert {p["sharding_type"] for p in plan.values()} == {"table_wise"}
    assert {rank for p in plan.values() for rank in p["ranks"]} == {0, 1}
    assert all(len(p["ranks"]) == 1 for p in plan.values())


def test_a_table_larger_than_one_device_is_split_or_refused():
    config = small_config("unimixing_lite", cardinalities=(250_000, 10), embed_dim=8)  # t_C1: 8 MB
    assert sharding_plan(config, world_size=2, device_memory_gb=0.1)["t_C1"]["sharding_type"] == "table_wise"
    plan = sharding_plan(config, world_size=2, device_memory_gb=0.012)  # with Adagrad's state: 16 MB
    assert plan["t_C1"] == {"sharding_type": "column_wise", "ranks": [0, 1]}  # cpu: no row-wise kernels
    gpus = sharding_plan(config, world_size=2, device_memory_gb=0.02, compute_device="cuda")  # Adam: 24 MB
    assert gpus["t_C1"] == {"sharding_type": "row_wise", "ranks": [0, 1]}
    with pytest.raises(PlanError) as err:
        sharding_plan(config, world_size=2, device_memory_gb=0.006)
    assert str(err.value).startswith("--device-memory-gb 0.006: TorchRec's planner cannot place the tables")
    assert "allowed: more memory per device or a larger --world-size" in str(err.value)


def test_the_fused_optimiser_follows_the_project_trainer_s_choice():
    rate = {"sparse_adam": 1e-3, "adagrad": 1e-2}.get
    assert fused_optimizer("sparse_adam", "cuda", rate).fbgemm_name == "ADAM"
    assert fused_optimizer("sparse_adam", "cuda", rate).kwargs == {"lr": 1e-3, "eps": 1e-8}
    cpu = fused_optimizer("sparse_adam", "cpu", rate)  # FBGEMM's CPU kernels have no Adam
    assert (cpu.fbgemm_name, cpu.kwargs) == ("EXACT_ADAGRAD", {"lr": 1e-2, "eps": 1e-10})
    assert fused_optimizer("adagrad", "cuda", rate).fbgemm_name == "EXACT_ADAGRAD"
    with pytest.raises(PlanError, match="allowed with --engine torchrec: sparse_adam, adagrad"):
        fused_optimizer("adam", "cpu", rate)


def test_tables_larger_than_the_named_device_memory_are_one_line_and_exit_2(tmp_path):
    # 40 raw Criteo rows (TSV: label, 13 integers, 26 categoricals) hashed into 100,000 ids per table:
    # 26 tables of 100,000 x 16 fp32 = 166 MB of weights
    rows = [
        [str(i % 2), *(str(i + j) for j in range(13)), *(f"{i * 31 + j:08x}" for j in range(26))] for i in range(40)
    ]
    data = tmp_path / "rows.tsv"
    data.write_text("".join("\t".join(row) + "\n" for row in rows))
    args = ["train", str(EXAMPLE), "--data", str(data), "--hash-buckets", "100000", "--engine", "torchrec"]
    result = CliRunner().invoke(app, [*args, "--nproc", "1", "--device-memory-gb", "0.1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert line.startswith("Error: --device-memory-gb 0.1: the 26 embedding tables need 166 MB")
    assert "allowed: at least 0.166 GB per device at --nproc 1" in line
    result = CliRunner().invoke(
        app, [*args, "--nproc", "1", "--device-memory-gb", "0.2"]
    )  # weights fit, not with state
    assert result.exit_code == 2
    assert "Error: --device-memory-gb 0.2: TorchRec's planner cannot place the tables" in result.output


def test_export_writes_the_config_the_tables_the_plan_and_the_command(tmp_path, monkeypatch):
    from unimixer_plan import torchrec_export

    config = load_config(EXAMPLE)
    metadata = {"setting": {"seed": 7}}
    monkeypatch.setattr(torchrec_export, "selected_config", lambda folder, trial: (config, metadata))
    monkeypatch.setattr(torchrec_export.RunFolder, "load_plan", lambda self: _Plan())
    out = torchrec_export.export_torchrec(tmp_path / "run", tmp_path / "job", world_size=2, device_memory_gb=1.0)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "tables.json", "train.sh"]
    assert load_config(out / "config.yaml") == config
    spec = json.loads((out / "tables.json").read_text())
    assert spec["total_bytes"] == 7_672_896 and len(spec["tables"]) == 26
    assert spec["topology"] == {"world_size": 2, "device_memory_gb": 1.0, "compute_device": "cpu"}
    assert {r for p in spec["sharding_plan"].values() for r in p["ranks"]} == {0, 1}
    assert spec["input"]["keys"][:2] == ["C1", "C2"] and spec["embedding_optimizer"].startswith("EXACT_ADAGRAD")
    config_path = (out / "config.yaml").resolve()
    assert spec["command"] == (f"unimixer-plan train {config_path} --engine torchrec --nproc 2 --device-memory-gb 1")
    assert spec["command"] in (out / "train.sh").read_text()
    subprocess.run(["bash", "-n", str(out / "train.sh")], check=True)  # a script bash can run
    with pytest.raises(PlanError, match="--world-size 0: must be >= 1"):
        torchrec_export.export_torchrec(tmp_path / "run", tmp_path / "job0", world_size=0)
    assert not (tmp_path / "job0").exists()


class _Plan:
    from unimixer_plan.training.trainer import TrainSettings

    train = TrainSettings()
    fidelity = 16_384  # with no batch size set, the trainer's rule in these rows sizes the plan's batch
