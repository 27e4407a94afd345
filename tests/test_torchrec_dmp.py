"""Training under DistributedModelParallel: 2 CPU processes (gloo) shard the tables over both ranks and
train exactly what the project's trainer trains. Skipped where TorchRec is not installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torchrec", exc_type=ImportError)

from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.data import DataSpec, load_data
from unimixer_plan.mixers import save_config
from unimixer_plan.plan_config import Budget, PlanConfig
from unimixer_plan.run.records import plan_setting
from unimixer_plan.training.trainer import TrainSettings, evaluate

from tests.conftest import small_config

runner = CliRunner()
SPEC = DataSpec(seed=3, vocab_cap=50, synthetic_val_rows=700)
# Adagrad: the one table optimiser FBGEMM's CPU kernels share with the project trainer, so the two
# engines must agree to rounding (with SparseAdam, cpu TorchRec runs Adagrad instead).
TRAINER = TrainSettings(max_epochs=2, val_subsample=500, learning_rate=2e-3, embedding_optimizer="adagrad")


def chosen_file(tmp_path, family: str = "unimixing_lite"):
    plan = PlanConfig(budget=Budget(flops=1e6), data=SPEC, fidelity=333, seed=5, train=TRAINER)
    data = load_data(SPEC, train_rows=plan.fidelity)
    config = small_config(family, **data.schema)
    return save_config(config, tmp_path / "chosen.yaml", extra={"setting": plan_setting(plan)}), config, data


# torch's Adagrad on sparse gradients (the project trainer's side) warns once about invariant checks.
ADAGRAD_WARNING = "ignore:Sparse invariant checks:UserWarning"


@pytest.mark.slow
@pytest.mark.filterwarnings(ADAGRAD_WARNING)
def test_two_processes_shard_the_tables_over_both_ranks_and_train_what_the_project_trains(tmp_path):
    path, config, data = chosen_file(tmp_path)
    result = runner.invoke(app, ["train", str(path), "--engine", "torchrec", "--nproc", "2", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout.strip().splitlines()[-1])
    project = evaluate(config, data, 333, seed=5, settings=TRAINER, score_test=True)
    assert document["world_size"] == 2 and document["backend"] == "gloo" and document["engine"] == "torchrec"
    plan = document["sharding_plan"]
    assert sorted(plan) == sorted(f"t_C{i}" for i in range(1, 27))
    assert all(
        p == {"sharding_type": "table_wise", "ranks": p["ranks"]} and len(p["ranks"]) == 1 for p in plan.values()
    )
    assert {p["ranks"][0] for p in plan.values()} == {0, 1}  # tables on both ranks
    assert document["embedding_optimizer"].startswith("EXACT_ADAGRAD (fused, lr 0.02)")  # 10x the dense rate
    # 333 rows in global batches of 64 (the trainer's rule): 32/32 per rank, the last 13 as 7/6 + a padded row
    assert document["batch_size"] == 64 and document["distinct_samples"] == 333 and document["samples_seen"] == 666
    assert document["epochs"] == 2 and document["test_rows"] > 0
    assert document["test_logloss"] == pytest.approx(project.test.logloss, abs=1e-5)
    assert document["val_logloss"] == pytest.approx(project.val_logloss, abs=1e-5)
    assert document["val_auc"] == pytest.approx(project.val_auc, abs=1e-4)
    assert [c["val_logloss"] for c in document["history"]] == pytest.approx(
        [c.val_logloss for c in project.history], abs=1e-5
    )
    assert document["best_epoch"] == project.best_epoch and document["stop_reason"] == project.stop_reason


@pytest.mark.slow
@pytest.mark.filterwarnings(ADAGRAD_WARNING)
def test_a_launcher_s_environment_makes_this_process_one_rank(tmp_path, monkeypatch):
    path, config, data = chosen_file(tmp_path, "fm")  # fm: rows of width 1 + e, padded for FBGEMM
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29531")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    wrong = runner.invoke(app, ["train", str(path), "--engine", "torchrec", "--nproc", "2"])
    assert wrong.exit_code == 2 and "allowed: 1 or no --nproc" in wrong.output
    result = runner.invoke(app, ["train", str(path), "--engine", "torchrec", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert document["world_size"] == 1 and {p["ranks"][0] for p in document["sharding_plan"].values()} == {0}
    project = evaluate(config, data, 333, seed=5, settings=TRAINER)
    assert document["val_logloss"] == pytest.approx(project.val_logloss, abs=1e-5)


def _one_step_on_each_rank(rank: int, port: int, out: str) -> None:
    """Rank ``rank`` of 2: one TorchRec step on a global batch of 61 rows (shares 31 and 30 + a padded
    row), and the project trainer's step on the same rows; writes the largest differences."""
    import os

    import torch
    import torch.distributed as dist
    from unimixer_plan.mixers import build_model
    from unimixer_plan.mixers.torchrec_model import TorchRecModel
    from unimixer_plan.training.torchrec_trainer import RankEnv, TorchRecJob, _TorchRecEngine
    from unimixer_plan.training.trainer import _LocalEngine

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    data = load_data(SPEC, train_rows=200)
    config = small_config("unimixing_lite", **data.schema)
    settings = TrainSettings(embedding_optimizer="adagrad", grad_clip=1e9)
    dist.init_process_group("gloo")
    engine = _TorchRecEngine(
        TorchRecJob(config, 200, 1, settings), data, RankEnv.from_environ(), torch.device("cpu"), 1e-3
    )
    torch.manual_seed(1)
    local = _LocalEngine(build_model(config), data, settings, 1e-3, "cpu")
    index = torch.arange(200)[7:68]
    for run in (engine, local):
        run.scale_learning_rates(1.0)
        assert run.train_step(index)
    project = dict(local.model.named_parameters())
    grads = [
        (p.grad - project[name.removeprefix("dense_arch.")].grad).abs().max().item()
        for name, p in engine.dmp.named_parameters()
        if name.startswith("dense_arch.")
    ]
    rows = TorchRecModel(config, "meta").state_from_project(local.model.state_dict())
    tables = [
        (shard - rows[key][r : r + len(shard), c : c + shard.shape[1]]).abs().max().item()
        for key, shard, (r, c) in engine.tables
    ]
    Path(out, f"rank{rank}.txt").write_text(f"{max(grads)} {max(tables)} {len(engine.tables)}\n")
    dist.destroy_process_group()


@pytest.mark.slow
def test_one_step_on_two_ranks_is_the_project_trainer_s_step_on_the_whole_batch(tmp_path):
    import torch.multiprocessing as mp
    from unimixer_plan.training.torchrec_launch import _free_port

    mp.start_processes(_one_step_on_each_rank, args=(_free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    results = [tuple(map(float, (tmp_path / f"rank{r}.txt").read_text().split())) for r in (0, 1)]
    for grad_gap, table_gap, tables in results:
        assert grad_gap < 1e-6  # dense gradients: DDP's average times the world size
        assert table_gap < 1e-5  # the rows after one fused Adagrad step
        assert tables > 0  # each rank holds some of the tables
    assert results[0][2] + results[1][2] == 26
