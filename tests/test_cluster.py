"""The planner on a real two-node Ray cluster on loopback: a head with no CPUs for trials, and a worker
node in its own mount namespace with a private /tmp, so that it cannot see the driver's run folder (as a
separate machine could not), running from a Python environment that has the dependencies but not this
project (the code must travel with the job). Started with `ray start` and stopped by the PIDs this test
started."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

PYTHON = sys.executable
RAY = str(Path(sys.executable).with_name("ray"))
EXE = str(Path(sys.executable).with_name("unimixer-plan"))
# A second node must be allowed to join: Ray refuses one when this is 0 (the planner's own local Ray
# sets 0 to stay on loopback, alone). Nodes still bind 127.0.0.1's machine; nothing leaves the host.
CLUSTER_ENV = {
    **os.environ,
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
}


# The worker node mounts a private /tmp: an environment installed under /tmp would vanish from its view.
ENVIRONMENT_UNDER_TMP = Path(sys.prefix).resolve().is_relative_to("/tmp")


def can_unshare_mounts() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "--mount", "true"]).returncode == 0


def start(args: list[str], cwd: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CLUSTER_ENV, start_new_session=True, cwd=cwd
    )


def dependencies_only_python(folder: Path) -> str:
    """A virtual environment at ``folder`` that sees every package of this one except this project: a
    node with Ray, torch and the rest installed, but not unimixer_plan. Returns its python."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    visible = folder / "site"
    visible.mkdir()
    site_packages = Path(next(p for p in sys.path if p.endswith("site-packages")))
    for entry in site_packages.iterdir():
        hidden = entry.name.startswith(("unimixer_plan", "__editable__")) or entry.suffix == ".pth"
        if not hidden:
            (visible / entry.name).symlink_to(entry)
    (target,) = (folder / "venv" / "lib").glob("python*/site-packages")
    (target / "dependencies.pth").write_text(f"{visible}\n")  # a path line: its own .pth files stay unread
    python = str(folder / "venv" / "bin" / "python")
    probe = "import ray, torch, optuna, fvcore\ntry:\n import unimixer_plan\nexcept ImportError: print('absent')"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout.strip() == "absent"
    return python


def nodes(address: str) -> list[dict]:
    """The cluster's alive nodes: id and CPUs, through a driver of its own (the test stays out of Ray)."""
    script = "\n".join(
        [
            "import json, ray",
            f"ray.init(address={address!r}, log_to_driver=False, logging_level='ERROR')",
            "alive = [n for n in ray.nodes() if n['Alive']]",
            "print(json.dumps([{'id': n['NodeID'], 'cpus': n['Resources'].get('CPU', 0)} for n in alive]))",
        ]
    )
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, env=CLUSTER_ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_for(condition, what: str, seconds: int = 60) -> None:
    for _ in range(seconds):
        if condition():
            return
        time.sleep(1)
    pytest.fail(f"{what} within {seconds} s")


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.skipif(not can_unshare_mounts(), reason="needs `unshare --mount` (root or user namespaces)")
@pytest.mark.skipif(ENVIRONMENT_UNDER_TMP, reason="the worker's private /tmp would hide this environment (under /tmp)")
def test_a_plan_on_a_head_and_a_worker_that_cannot_see_the_run_folder_trains_every_trial_on_the_worker(tmp_path):
    port = 20000 + os.getpid() % 20000
    address = f"127.0.0.1:{port}"
    head_temp = Path("/tmp") / f"ump-head-{os.getpid()}"
    worker_env = Path(tempfile.mkdtemp(prefix="ump-worker-env-", dir="/var/tmp"))  # outside the private /tmp
    head = start(
        [
            *(RAY, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=0"),
            *("--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={head_temp}"),
        ]
    )
    worker = None
    try:
        wait_for(
            lambda: subprocess.run([RAY, "status", "--address", address], capture_output=True).returncode == 0,
            "the head did not come up",
        )
        # unshare execs the shell, which execs `ray start`: the worker node's process is worker.pid itself
        worker_python = dependencies_only_python(worker_env)
        worker_start = (
            f"mount -t tmpfs tmpfs /tmp && exec {worker_python} -m ray.scripts.scripts start --block "
            f"--address={address} --node-ip-address=127.0.0.1 --num-cpus=2 --disable-usage-stats "
            "--temp-dir=/tmp/ray-worker"
        )
        worker = start(["unshare", "--mount", "--propagation", "private", "sh", "-c", worker_start], cwd="/")
        wait_for(lambda: len(nodes(address)) == 2, "the worker did not join", seconds=90)
        (worker_node,) = [n["id"] for n in nodes(address) if n["cpus"] > 0]

        out = tmp_path / "run"
        result = subprocess.run(
            [
                *(EXE, "--flops", "2e5", "--trials", "3", "--fidelity", "2000", "--ray-address", address, "--json"),
                *("--test-seeds", "0", "--out", str(out)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert out.is_dir() and not Path(f"/proc/{worker.pid}/root{out}").exists()  # the worker cannot see it

        with (out / "trials.csv").open(newline="") as handle:
            trials = list(csv.DictReader(handle))
        assert len(trials) == 3 and json.loads(result.stdout)["trials"] == 3
        assert {t["status"] for t in trials} <= {"ok", "stopped"}, [t["error"] for t in trials]
        assert any(t["status"] == "ok" for t in trials) and json.loads(result.stdout)["chosen"] is not None
        assert {t["node"].split("/")[1] for t in trials} == {worker_node[:8]}  # each trial trained on the worker
        assert list((out / "cache").glob("*.json"))  # its results reached the driver's disk through Tune
        assert head.poll() is None and worker.poll() is None  # the planner joined the cluster, left it running
    finally:
        for process in (worker, head):  # only what this test started, by PID
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
        shutil.rmtree(head_temp, ignore_errors=True)
        shutil.rmtree(worker_env, ignore_errors=True)
