from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.mixers import analytic_cost, load_config, save_config

from tests.conftest import small_config

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_profile_json_has_the_documented_keys(tmp_path):
    path = save_config(small_config("unimixer"), tmp_path / "m.yaml")
    result = runner.invoke(app, ["profile", str(path), "--json", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    cost = analytic_cost(load_config(path))
    assert data["flops"] == cost.flops
    assert data["params_dense"] == cost.params_dense
    assert data["params_embedding"] == cost.params_embedding
    assert data["train_flops_per_batch"] == 3 * 4 * cost.flops


def test_profile_table_for_the_shipped_example():
    result = runner.invoke(app, ["profile", str(ROOT / "examples" / "unimixing_lite.yaml")])
    assert result.exit_code == 0, result.output
    assert "unimixing_lite" in result.stdout and "dense params" in result.stdout


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("unimixer-plan")
    return subprocess.run([str(exe), *args], capture_output=True, text=True)


def test_invalid_config_prints_one_line_and_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {family: unimixer, n_tokens: 4, d_model: 8, depth: 1, heads: 3}\n")
    result = _run_cli("profile", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["Error: heads=3: must divide d_model=8 (family unimixer)"]
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_device_and_batch_size_exit_2(tmp_path):
    path = save_config(small_config("wukong"), tmp_path / "m.json")
    for args, fragment in [
        (["--device", "tpu"], "--device 'tpu'"),
        (["--batch-size", "0"], "--batch-size 0"),
    ]:
        result = runner.invoke(app, ["profile", str(path), *args])
        assert result.exit_code == 2, result.output
        assert fragment in result.output
