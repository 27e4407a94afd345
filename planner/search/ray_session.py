"""The plan's Ray: started here on loopback (or joined), checked for trial resources, stopped when the
plan ends; a killed plan's session folder is cleaned up by the next run of its folder."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import ray
from unimixer_plan.errors import PlanError
from unimixer_plan.plan_config import PlanConfig
from unimixer_plan.search.code_shipping import project_runtime_env

RAY_TEMP_PREFIX = "ump-ray-"
RAY_TEMP_MARKER = "ray-temp-dir"  # in the run folder while a plan's own local Ray runs: its session folder


@dataclass
class RayRuntime:
    """A Ray connection this plan started (and so must stop), or joined."""

    started_here: bool
    temp_dir: str | None

    def shutdown(self) -> None:
        ray.shutdown()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_ray(address: str | None, verbose: bool) -> RayRuntime:
    level = logging.INFO if verbose else logging.ERROR
    if ray.is_initialized():
        return RayRuntime(started_here=False, temp_dir=None)
    if address:
        # the cluster's nodes may lack this project: its code travels with the job (uploaded at init)
        with project_runtime_env() as runtime_env:
            ray.init(
                address=address,
                runtime_env=runtime_env,
                log_to_driver=verbose,
                logging_level=level,
                configure_logging=True,
            )
        return RayRuntime(started_here=False, temp_dir=None)
    temp_dir = tempfile.mkdtemp(prefix=RAY_TEMP_PREFIX, dir=ray_temp_base())
    ray.init(
        num_cpus=os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=verbose,
        logging_level=level,
        _temp_dir=temp_dir,
    )
    return RayRuntime(started_here=True, temp_dir=temp_dir)


def ray_temp_base() -> Path:
    """Where a local Ray's session folder goes: /tmp, since Ray's Unix sockets must fit in 107 characters."""
    return Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())


def remove_stale_ray_dir(marker: Path) -> None:
    """A plan killed with SIGKILL leaves its local Ray's session folder behind, named in ``marker``; the
    next run of the same folder removes it (only a folder this planner made: ump-ray-* in the temp dir)."""
    if not marker.is_file():
        return
    stale = Path(marker.read_text().strip())
    ours = stale.name.startswith(RAY_TEMP_PREFIX) and stale.parent == ray_temp_base()
    if ours and not in_use(stale):
        shutil.rmtree(stale, ignore_errors=True)
    marker.unlink(missing_ok=True)


def in_use(session: Path) -> bool:
    """Whether a live process names ``session`` on its command line (a Ray still running there: the
    folder was copied while its plan ran, or is resumed twice at once). Without /proc, assume it is."""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    needle = str(session).encode()
    for entry in proc.iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def unmet_trial_request(nodes: list[dict[str, Any]], cpus: float, gpus: float) -> str | None:
    """Why no node of this Ray can ever run a trial of ``cpus`` CPUs and ``gpus`` GPUs (``ray.nodes()``'s
    alive nodes and their total resources), as one line naming the option; None when one node can."""
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive")]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return None
    gpu_short = gpus > 0 and not any(r.get("GPU", 0) >= gpus for r in alive)
    option, value = ("--gpus-per-trial", gpus) if gpu_short else ("--cpus-per-trial", cpus)
    largest = max(((r.get("CPU", 0), r.get("GPU", 0)) for r in alive), default=(0, 0))
    return (
        f"{option} {value:g}: no node of this Ray can run a trial of {cpus:g} CPU and {gpus:g} GPU "
        f"({len(alive)} node(s), the largest with {largest[0]:g} CPU and {largest[1]:g} GPU); allowed: a request "
        "one node can meet (a cluster that gains nodes later: join it with --ray-address)"
    )


@contextmanager
def ray_session(plan: PlanConfig) -> Iterator[None]:
    """One Ray connection for a whole plan (all rungs); stopped only if this plan started it."""
    optuna.logging.set_verbosity(optuna.logging.INFO if plan.verbose else optuna.logging.WARNING)
    marker = Path(plan.out) / RAY_TEMP_MARKER
    remove_stale_ray_dir(marker)
    runtime = start_ray(plan.ray_address, plan.verbose)
    if runtime.temp_dir:
        marker.write_text(runtime.temp_dir + "\n")
    # A Ray started here has every node it will ever have: a request none can meet would wait forever.
    unmet = unmet_trial_request(ray.nodes(), plan.cpus_per_trial, plan.gpus_per_trial) if runtime.started_here else None
    if unmet:
        runtime.shutdown()
        marker.unlink(missing_ok=True)
        raise PlanError(unmet)
    try:
        yield
    finally:
        if runtime.started_here:
            runtime.shutdown()
            marker.unlink(missing_ok=True)
