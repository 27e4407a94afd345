"""The same seed with one trial at a time gives the same trials and the same choice (a real local Ray)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

EXE = str(Path(sys.executable).with_name("unimixer-plan"))
# What may differ between two runs of one plan: the clock and the Ray session's node id.
VARYING = ("wall_time_s", "node", "started", "ended")


def plan(out: Path) -> None:
    cpus = str(os.cpu_count() or 1)  # one trial takes every CPU: concurrency 1 on any machine
    args = ["--flops", "3e5", "--trials", "6", "--fidelity", "2000", "--seed", "5", "--cpus-per-trial", cpus]
    args += ["--test-seeds", "0"]  # the choice is the point here; the check is tested in test_plan.py
    result = subprocess.run([EXE, *args, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def table(out: Path, name: str = "trials.csv") -> list[dict[str, str]]:
    with (out / name).open(newline="") as handle:
        return [{k: v for k, v in row.items() if k not in VARYING} for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_the_same_seed_with_concurrency_1_gives_the_same_trials_and_choice(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    plan(first)
    plan(second)
    assert len(table(first)) == 6
    assert "ok" in {row["status"] for row in table(first)}
    assert table(first) == table(second)  # same proposals, same stops, the same numbers to the last digit
    assert table(first, "pareto.csv") == table(second, "pareto.csv")
    chosen = [yaml.safe_load((out / "chosen.yaml").read_text()) for out in (first, second)]
    for config in chosen:
        config["metrics"]["measured"].pop("latency_ms")  # timed on the shared CPU: the one measurement that varies
    assert chosen[0] == chosen[1]
