"""What a config's embedding tables cost (pure, no TorchRec), where the plan shows it, and the bad
input of the TorchRec options that needs no TorchRec to be answered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers import ModelConfig, analytic_cost, list_mixers, load_config
from unimixer_plan.mixers.embedding_tables import check_fits, embedding_tables, format_bytes
from unimixer_plan.plan_config import Budget
from unimixer_plan.run.summary import Certificate, Chosen, PlanSummary
from unimixer_plan.summary_text import print_summary

from tests.conftest import small_config

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "unimixing_lite.yaml"


@pytest.mark.parametrize("family", list_mixers())
def test_one_table_per_field_sized_like_the_project_build(family):
    config = small_config(family, cardinalities=(11, 5, 7, 2))
    tables = embedding_tables(config)
    assert [t.name for t in tables.tables] == ["t_C1", "t_C2", "t_C3", "t_C4"]
    assert [t.feature for t in tables.tables] == ["C1", "C2", "C3", "C4"]
    assert [t.rows for t in tables.tables] == [11, 5, 7, 2]
    width = {"lr": 1, "fm": 1 + config.embed_dim}.get(family, config.embed_dim)
    assert {t.dim for t in tables.tables} == {width}
    assert all(t.bytes == t.rows * t.dim * 4 for t in tables.tables)
    # the same weights the project build holds in its concatenated tables
    assert tables.total_bytes == 4 * analytic_cost(config).params_embedding
    assert all(t.torchrec_dim % 4 == 0 and 0 <= t.torchrec_dim - t.dim < 4 for t in tables.tables)


def test_the_example_tables_and_their_summary_line():
    tables = embedding_tables(load_config(EXAMPLE))
    assert len(tables.tables) == 26 and tables.largest.name == "t_C3"
    assert tables.total_rows == 119_889 and tables.total_bytes == 119_889 * 16 * 4
    assert tables.headline() == "26 tables, 119,889 rows, 7.67 MB fp32 (largest t_C3: 10,000 x 16, 640 kB)"
    assert tables.listing().startswith("t_C1 1,460x16, t_C2 583x16, t_C3 10,000x16")
    assert format_bytes(999) == "999 B" and format_bytes(2.5e9) == "2.5 GB"


def test_tables_that_cannot_fit_name_the_option_the_value_and_what_is_allowed():
    tables = embedding_tables(load_config(EXAMPLE))  # 7.67 MB as TorchRec stores them
    check_fits(tables, world_size=1, device_memory_gb=0.01)
    check_fits(tables, world_size=2, device_memory_gb=0.005)  # split over two devices it fits
    check_fits(tables, world_size=1, device_memory_gb=None)  # no limit named
    with pytest.raises(PlanError) as err:
        check_fits(tables, world_size=2, device_memory_gb=0.0035)
    message = str(err.value)
    assert message.startswith("--device-memory-gb 0.0035: the 26 embedding tables need 7.67 MB")
    assert "allowed: at least 0.00384 GB per device at --world-size 2" in message
    with pytest.raises(PlanError, match="--nproc 0: must be >= 1"):
        check_fits(tables, world_size=0, device_memory_gb=1.0, world_size_option="--nproc")
    with pytest.raises(PlanError, match="must be a finite number > 0"):
        check_fits(tables, world_size=1, device_memory_gb=float("inf"))


def chosen(config: ModelConfig) -> Chosen:
    certificate = Certificate(flops_fvcore=1_000, params_dense=100, latency_ms=1.0, batch_size=8, device="cpu")
    return Chosen(
        trial_id=1,
        model=config,
        predicted=False,
        val_logloss=0.5,
        val_auc=0.7,
        fidelity=100,
        certificate=certificate,
        margins={"flops": 0.5},
        epochs=2,
        best_epoch=1,
    )


def test_summary_json_gains_the_tables_after_every_existing_key():
    config = load_config(EXAMPLE)
    block = chosen(config).to_dict()
    assert list(block)[-1] == "embedding_tables"
    assert list(block)[:5] == ["trial_id", "model", "predicted", "val_logloss", "val_auc"]
    tables = block["embedding_tables"]
    assert tables["total_bytes"] == 7_672_896 and len(tables["tables"]) == 26
    assert tables["tables"][2] == {
        "name": "t_C3", "feature": "C3", "rows": 10_000, "dim": 16, "bytes": 640_000, "torchrec_dim": 16,
    }  # fmt: skip
    assert Chosen.from_dict(json.loads(json.dumps(block))).to_dict() == block  # a derived key reads back


def test_the_printed_summary_lists_the_tables(tmp_path, capsys):
    summary = PlanSummary(
        run_dir=str(tmp_path),
        mode="direct",
        data="criteo",
        synthetic=True,
        trials=1,
        trials_by_status={"ok": 1},
        pareto_size=1,
        interrupted=False,
        budget=Budget(flops=2_000),
        chosen=chosen(small_config("fm", cardinalities=(1_460, 583))),
    )
    print_summary(summary)
    out = capsys.readouterr().out
    assert "  embedding tables   : 2 tables, 2,043 rows, 40.9 kB fp32 (largest t_C1: 1,460 x 5, 29.2 kB)" in out
    assert "    t_C1 1,460x5, t_C2 583x5" in out


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_nproc_and_the_topology_options_need_their_engine_or_format():
    assert invoke("train", str(EXAMPLE), "--nproc", "2") == (2, "Error: --nproc 2: only with --engine torchrec\n")
    code, out = invoke("train", str(EXAMPLE), "--engine", "torchrec", "--nproc", "0")
    assert (code, out) == (2, "Error: --nproc 0: must be >= 1 (processes to start)\n")
    code, out = invoke("train", str(EXAMPLE), "--engine", "spark")
    assert (code, out) == (2, "Error: --engine 'spark': allowed: project, torchrec\n")
    code, out = invoke("train", str(EXAMPLE), "--engine", "torchrec", "--device-memory-gb", "-1")
    assert (code, out) == (2, "Error: --device-memory-gb -1.0: must be a finite number > 0\n")
    code, out = invoke("export", "no-such-run", "--out", "x.yaml", "--world-size", "2")
    assert (code, out) == (2, "Error: --world-size 2: only with --format torchrec\n")


def test_asking_for_torchrec_without_it_is_one_line_with_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchrec", None)  # what an environment without it gives an import
    for args in (
        ("train", str(EXAMPLE), "--engine", "torchrec", "--nproc", "2"),
        ("export", str(tmp_path), "--format", "torchrec", "--out", str(tmp_path / "job")),
    ):
        code, out = invoke(*args)
        assert code == 2 and out.count("\n") == 1 and "Traceback" not in out, out
        asked = "--engine torchrec" if args[0] == "train" else "--format torchrec"
        assert out.startswith(f"Error: {asked}: needs TorchRec, which cannot be imported")
        assert "pip install --no-deps torchrec==1.8.0 && pip install 'unimixer-plan[torchrec]'" in out
    assert not (tmp_path / "job").exists()


def test_nothing_but_a_torchrec_request_imports_torchrec():
    code = (
        "import sys\n"
        "import unimixer_plan, unimixer_plan.cli, unimixer_plan.train_command, unimixer_plan.torchrec_export\n"
        "import unimixer_plan.mixers.torchrec_model, unimixer_plan.training.torchrec_launch\n"
        "from typer.testing import CliRunner\n"
        "assert CliRunner().invoke(unimixer_plan.cli.app, ['families']).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchrec', 'fbgemm_gpu')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
