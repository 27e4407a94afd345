"""End to end: the planner under budgets, its run folder, export and resume (small fidelity, local Ray).

The real-Ray plans are marked slow (minutes on two cores); the same decisions are covered in
milliseconds through the search seam in test_plan_logic.py and test_search_driver.py.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.mixers import analytic_cost, build_model, load_config
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.search.pareto import non_dominated

EXE = str(Path(sys.executable).with_name("unimixer-plan"))
TRAINED = ("ok", "stopped", "failed")


def plan_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def number(value: str) -> float:
    return float(value) if value != "" else math.nan


@pytest.fixture(scope="module")
def flops_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "run"
    result = plan_cli(
        "--flops", "3e5", "--trials", "8", "--fidelity", "3000", "--seed", "1", "--out", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


@pytest.mark.slow
def test_flops_plan_respects_the_budget_and_writes_the_run_folder(flops_run):
    out, summary = flops_run
    for name in ("plan.json", "trials.csv", "pareto.csv", "chosen.yaml", "summary.json", "optuna.db"):
        assert (out / name).is_file(), name
    rows = read_csv(out / "trials.csv")
    assert len(rows) == 8 and summary["trials"] == 8 and not summary["interrupted"]
    assert {r["status"] for r in rows} <= {"ok", "stopped", "failed", "infeasible"}
    for row in rows:
        if row["status"] in TRAINED:
            assert int(row["flops"]) <= 3e5, row  # nothing over budget was ever trained
            assert int(row["fidelity"]) > 0
    chosen = summary["chosen"]
    assert chosen["flops_fvcore"] == chosen["flops_analytic"] <= 3e5
    config = load_config(out / "chosen.yaml")
    assert analytic_cost(config).flops == chosen["flops_fvcore"]
    assert config.to_dict() == chosen["model"]
    # the study in optuna.db holds every trial
    study = optuna.load_study(study_name="plan", storage=f"sqlite:///{out / 'optuna.db'}")
    assert len(study.trials) == 8


@pytest.mark.slow
def test_the_chosen_trial_and_the_runner_up_are_re_trained_and_scored_on_the_test_split(flops_run):
    out, summary = flops_run
    check = summary["test"]
    rows = {int(r["trial_id"]): r for r in read_csv(out / "trials.csv")}
    chosen, runner_up = check["chosen"], check["runner_up"]
    assert chosen["trial_id"] == summary["chosen"]["trial_id"] and chosen["seeds"] == [2, 3, 4]  # not the search's 1
    assert runner_up["trial_id"] != chosen["trial_id"] and rows[runner_up["trial_id"]]["status"] == "ok"
    assert check["rows"] == 32_768 and 0 < chosen["logloss_se"] < 0.05 and check["failures"] == []
    paired = check["paired"]
    assert paired["logloss_interval"][0] <= paired["logloss_difference"] <= paired["logloss_interval"][1]
    assert json.loads((out / "final_check.json").read_text())["check"] == check
    saved = yaml.safe_load((out / "chosen.yaml").read_text())["metrics"]
    assert (
        saved["test"]["logloss"] == chosen["logloss"]
        and saved["validation"]["val_logloss"] == (summary["chosen"]["val_logloss"])
    )


@pytest.mark.slow
def test_pareto_csv_is_the_brute_force_front_of_full_fidelity_rows(flops_run):
    out, _ = flops_run
    plan = PlanConfig.from_dict(json.loads((out / "plan.json").read_text())["plan"])
    rows = [r for r in read_csv(out / "trials.csv") if r["status"] == "ok" and int(r["fidelity"]) >= plan.fidelity]
    assert rows, "no full-fidelity trial"
    expected = brute_force_front(rows, plan)
    assert {r["trial_id"] for r in read_csv(out / "pareto.csv")} == expected
    points = np.array([[number(r[c]) for c, _ in plan.objectives] for r in rows])
    assert non_dominated(points, [d for _, d in plan.objectives]).sum() == len(expected)


@pytest.mark.slow
def test_export_round_trip_in_a_fresh_process(flops_run, tmp_path):
    out, summary = flops_run
    for fmt in ("yaml", "json", "torchscript", "onnx"):
        result = plan_cli("export", str(out), "--format", fmt, "--out", str(tmp_path / f"model.{fmt}"))
        assert result.returncode == 0, result.stderr
    script = """
import json, sys, torch, numpy as np, onnxruntime
from unimixer_plan.mixers import load_config, build_model, analytic_cost
from unimixer_plan.profiling import measure_flops, example_inputs
folder = sys.argv[1]
config = load_config(folder + "/model.yaml")
torch.manual_seed(int(sys.argv[2]))
model = build_model(config).eval()
inputs = example_inputs(config, 33)
with torch.no_grad():
    reference = model(*inputs)
scripted = torch.jit.load(folder + "/model.torchscript")
session = onnxruntime.InferenceSession(folder + "/model.onnx")
onnx_out = session.run(None, {"dense": inputs[0].numpy(), "sparse": inputs[1].numpy()})[0]
print(json.dumps({
    "params": sum(p.numel() for p in model.dense_parameters()),
    "flops": measure_flops(model)[0],
    "json_equal": load_config(folder + "/model.json") == config,
    "torchscript_err": float((scripted(*inputs) - reference).abs().max()),
    "onnx_err": float(np.abs(onnx_out - reference.numpy()).max()),
}))
"""
    seed = json.loads((out / "plan.json").read_text())["plan"]["seed"]
    fresh = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(seed)], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    measured = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert measured["params"] == summary["chosen"]["params_dense"]
    assert measured["flops"] == summary["chosen"]["flops_fvcore"]
    assert measured["json_equal"]
    assert measured["torchscript_err"] <= 1e-5
    assert measured["onnx_err"] <= 1e-5
    exported = (tmp_path / "model.yaml").read_text()
    for key in ("schema:", "budget:", "metrics:", "versions:"):
        assert key in exported


@pytest.mark.slow
def test_params_and_latency_budgets_constrain_the_result(tmp_path):
    # One real plan under three budgets at once (each budget's choice is also tested fast, alone).
    out = tmp_path / "run"
    params_budget, latency_budget = 20_000, 1.5
    result = plan_cli(
        "--params",
        str(params_budget),
        "--latency-ms",
        str(latency_budget),
        "--batch-size",
        "64",
        "--flops",
        "2e6",
        "--trials",
        "6",
        "--fidelity",
        "2000",
        "--test-seeds",
        "0",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    # params: measured on the built model, not taken from the table
    assert sum(p.numel() for p in build_model(load_config(out / "chosen.yaml")).dense_parameters()) <= params_budget
    assert summary["chosen"]["margins"]["params"] >= 0
    rows = read_csv(out / "trials.csv")
    for row in rows:
        assert row["latency_ms"] != "" or (row["status"] == "infeasible" and row["flops"] == "")
        if row["status"] in TRAINED:
            assert int(row["params_dense"]) <= params_budget
            assert number(row["latency_ms"]) <= latency_budget  # measured in the trial before training
    chosen_row = next(r for r in rows if int(r["trial_id"]) == summary["chosen"]["trial_id"])
    assert chosen_row["rung"] == "0"
    assert number(chosen_row["latency_ms"]) <= latency_budget
    assert math.isfinite(summary["chosen"]["latency_ms"])  # certified again on the budget's device
    plan = json.loads((out / "plan.json").read_text())["plan"]
    objectives = [c for c, _ in PlanConfig.from_dict(plan).objectives]
    assert objectives == ["val_logloss", "flops", "params_dense", "latency_ms"]


def test_unreachable_budget_exits_2_and_names_the_smallest_cost(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["--flops", "100", "--out", str(out)])
    assert result.exit_code == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: --flops 100: no configuration fits; the smallest possible costs ")
    assert "FLOPs/sample" in message and "Traceback" not in result.output
    assert not (out / "trials.csv").exists()  # nothing trained


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--flops", "inf"], "--flops inf: must be a finite number > 0"),
        (["--flops", "-5"], "--flops -5.0: must be a finite number > 0"),
        (["--trials", "3"], "no budget given"),
        (["--flops", "1e6", "--fidelity", "slow"], "--fidelity 'slow': use quick | standard | full"),
        (["--flops", "1e6", "--families", "mlp"], "--families 'mlp': unknown"),
        (["--resume", "/nonexistent/run"], "--resume /nonexistent/run: not a run folder"),
    ],
)
def test_bad_plan_options_exit_2_with_one_line(args, fragment):
    # In process: the CLI's error boundary is the same; the executable itself is covered below.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.output


def processes_with(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (the Ray processes of one session folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def brute_force_front(rows: list[dict[str, str]], plan: PlanConfig) -> set[str]:
    columns = [c for c, _ in plan.objectives]
    points = np.array([[number(r[c]) for c in columns] for r in rows])
    return {
        rows[i]["trial_id"]
        for i in range(len(rows))
        if not any(np.all(points[j] <= points[i]) and np.any(points[j] < points[i]) for j in range(len(rows)))
    }


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_from_a_moved_folder_keeps_finished_trials(tmp_path):
    out = tmp_path / "run"
    args = [EXE, "--flops", "3e5", "--trials", "6", "--fidelity", "3000", "--seed", "2", "--test-seeds", "0"]
    args += ["--out", str(out)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (out / "trials.csv").exists() and len(read_csv(out / "trials.csv")) >= 2:
            break
        time.sleep(0.5)
    process.kill()  # SIGKILL: no handler runs, nothing is flushed or closed
    process.communicate(timeout=60)
    first = read_csv(out / "trials.csv")
    assert 2 <= len(first) < 6
    ray_session = Path((out / "ray-temp-dir").read_text().strip())  # left behind by the killed plan
    for pid in processes_with(str(ray_session)):  # Ray's own processes of that session, if any outlived it
        os.kill(pid, signal.SIGKILL)

    moved = tmp_path / "moved" / "run"
    moved.parent.mkdir()
    out.rename(moved)
    result = plan_cli("--resume", str(moved), "--json")
    assert result.returncode == 0, result.stderr
    assert not out.exists() and not ray_session.exists()  # worked where the folder is; the stale session is gone
    rows = read_csv(moved / "trials.csv")
    assert len(rows) == 6  # only the missing trials ran
    assert rows[: len(first)] == first  # finished rows untouched, not re-run
    assert [int(r["trial_id"]) for r in rows] == list(range(6))
    study = optuna.load_study(study_name="plan", storage=f"sqlite:///{moved / 'optuna.db'}")
    states = {t.number: t.state for t in study.trials}
    assert all(int(r["optuna_trial"]) in states for r in rows)  # one study across both runs
    assert not any(s == optuna.trial.TrialState.RUNNING for s in states.values())
    # the final Pareto set is the front of every full-fidelity trial, the ones kept from before the kill too
    plan = PlanConfig.from_dict(json.loads((moved / "plan.json").read_text())["plan"])
    full = [r for r in rows if r["status"] == "ok" and int(r["fidelity"]) >= plan.fidelity]
    assert {r["trial_id"] for r in read_csv(moved / "pareto.csv")} == brute_force_front(full, plan)

    again = plan_cli("--resume", str(moved), "--json")  # a finished run: nothing more runs
    assert again.returncode == 0 and len(read_csv(moved / "trials.csv")) == 6


def trial_workers(session: str) -> list[int]:
    """The trial actors (``ray::ImplicitFunc.train``) of the local Ray whose session folder is ``session``."""
    raylets = {pid for pid in processes_with(session) if b"raylet" in Path(f"/proc/{pid}/cmdline").read_bytes()}
    workers = []
    for pid in processes_with("ray::ImplicitFunc.train"):
        try:
            if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) in raylets:
                workers.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    return workers


def listening_addresses(pids: list[int]) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) on which these processes listen for TCP."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.append(fields[1].split(":")[0])
    return addresses


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 or ::ffff:127.x.y.z, in /proc/net/tcp's byte order."""
    if len(address) == 8:
        return address.endswith("7F")
    return address == "00000000000000000000000001000000" or (
        address.startswith("0000000000000000FFFF0000") and address.endswith("7F")
    )


@pytest.mark.slow
def test_a_ray_worker_killed_during_a_trial_is_retried_and_the_plan_completes_on_a_loopback_ray(tmp_path):
    out = tmp_path / "run"
    args = [EXE, "--flops", "3e5", "--trials", "3", "--fidelity", "3000", "--seed", "4", "--test-seeds", "0"]
    args += ["--out", str(out), "--json"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        marker = out / "ray-temp-dir"
        workers = trial_workers(marker.read_text().strip()) if marker.is_file() else []
        if workers and not (out / "trials.csv").exists():  # a trial is in flight on it
            listening = listening_addresses(processes_with(marker.read_text().strip()))
            assert listening and all(map(is_loopback, listening)), listening  # the local Ray: loopback only
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.2)
    stdout, stderr = process.communicate(timeout=600)
    assert killed is not None, "no trial worker seen"
    assert process.returncode == 0, stderr
    rows = read_csv(out / "trials.csv")
    # the killed trial ran again: every trial has a result, none is recorded as a crash
    assert len(rows) == 3 and all(r["status"] in ("ok", "stopped") for r in rows), rows
    assert json.loads(stdout)["trials"] == 3, stdout[:3000]


@pytest.mark.slow
def test_a_gpu_request_this_machine_cannot_meet_exits_2_instead_of_waiting(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = plan_cli("--flops", "3e5", "--trials", "2", "--gpus-per-trial", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: --gpus-per-trial 1: no node of this Ray can run a trial of 1 CPU and 1 GPU")
    assert "Traceback" not in result.stderr


def test_corrupt_run_folder_on_resume_exits_2(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "plan.json").write_text("{not json")
    result = CliRunner().invoke(app, ["--resume", str(out)])
    assert result.exit_code == 2
    assert "plan.json: corrupt plan file" in result.stderr
