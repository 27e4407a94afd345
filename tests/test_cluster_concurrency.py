"""A ladder plan uses the whole cluster: on a one-node Ray started with 8 logical CPUs (`ray start` on
loopback, stopped by the PID this test started), each rung runs its warm starts (one per family), then
its other 8 trials at once, as trials.csv's start and end times show."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from test_cluster import CLUSTER_ENV, EXE, RAY, start, wait_for


def most_at_once(rows: list[dict]) -> int:
    """The largest number of trials running at one instant, from their started/ended times."""
    events = sorted(
        [(datetime.fromisoformat(r["started"]), 1) for r in rows]
        + [(datetime.fromisoformat(r["ended"]), -1) for r in rows]
    )  # at equal times the end (-1) sorts first: a trial that ends as another starts never overlaps it
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_most_at_once_counts_overlaps_only():
    def row(start: str, end: str) -> dict:
        return {"started": f"2026-12-05T10:00:{start}+00:00", "ended": f"2026-12-05T10:00:{end}+00:00"}

    assert most_at_once([row("00", "10"), row("05", "15"), row("10", "20")]) == 2
    assert most_at_once([row("00", "01"), row("01", "02")]) == 1


@pytest.mark.slow
@pytest.mark.cluster
def test_a_ladder_plan_on_8_logical_cpus_runs_at_least_6_trials_at_once(tmp_path):
    port = 20000 + (os.getpid() + 7) % 20000
    address = f"127.0.0.1:{port}"
    head_temp = Path("/tmp") / f"ump-head8-{os.getpid()}"
    head = start(
        [
            *(RAY, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=8"),
            *("--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={head_temp}"),
        ]
    )
    try:
        wait_for(
            lambda: subprocess.run([RAY, "status", "--address", address], capture_output=True).returncode == 0,
            "the head did not come up",
        )
        out = tmp_path / "run"
        result = subprocess.run(
            [
                *(EXE, "--flops", "6e6", "--proxy-max-flops", "4e5", "--fidelity", "1000", "--trials", "40"),
                *("--families", "unimixing_lite", "--families", "wukong", "--test-seeds", "0"),
                *("--ray-address", address, "--json", "--out", str(out)),
            ],
            capture_output=True,
            text=True,
            env=CLUSTER_ENV,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        with (out / "trials.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        searched = [r for r in rows if r["role"] == "search"]
        assert len(searched) == 30 and len(rows) == 40 == json.loads(result.stdout)["trials"]
        rungs = sorted({r["rung"] for r in searched})
        assert len(rungs) == 3  # one study per rung, both families in it
        peaks = {rung: most_at_once([r for r in searched if r["rung"] == rung]) for rung in rungs}
        # The first rung also starts the trial worker processes, which Ray starts two at a time on two
        # cores (its start-up concurrency follows the physical CPUs); later rungs reuse them.
        assert max(peaks.values()) >= 6 and peaks[rungs[-1]] >= 6, peaks
        assert most_at_once([r for r in rows if r["role"] != "search"]) >= 6  # the measurements, all at once
    finally:
        if head.poll() is None:  # only what this test started, by PID
            head.send_signal(signal.SIGTERM)
            head.wait(timeout=60)
        shutil.rmtree(head_temp, ignore_errors=True)
