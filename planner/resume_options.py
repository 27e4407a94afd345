"""What ``--resume DIR`` takes from the command line: the plan is the folder's; only the options that say
where and how it runs may be given again."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import typer
from unimixer_plan.errors import PlanError

if TYPE_CHECKING:  # the command line loads torch (through the run folder) only once a command runs
    from unimixer_plan.plan_config import PlanConfig
    from unimixer_plan.run.folder import RunFolder

# Options that say where and how a plan runs, not what it plans: --resume takes them again (a new cluster
# address, a new time budget); every other option is the recorded plan's. Trial resources are not among
# them: --gpus-per-trial sizes the ladder (a GPU proxy may cost 100x a CPU one) and --cpus-per-trial sets
# the threads a trial's latency is measured with.
RESUME_RUNTIME_OPTIONS = {
    "ray_address": "ray_address",
    "time_budget": "time_budget_min",
    "verbose": "verbose",
}


def resumed_plan(ctx: typer.Context, folder: RunFolder) -> PlanConfig:
    """The plan recorded in ``folder`` (wherever the folder is now), with the runtime options given again;
    a plan-defining option given with --resume is refused rather than silently ignored."""
    flags = {param.name: param.opts[0] for param in ctx.command.params}
    given = [
        name
        for name in ctx.params
        # by name: Typer ships its own copy of click, whose enum is not click's
        if name not in ("resume", "as_json") and getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"
    ]
    defining = [name for name in given if name not in RESUME_RUNTIME_OPTIONS]
    if defining:
        allowed = ", ".join(flags[name] for name in RESUME_RUNTIME_OPTIONS)
        raise PlanError(
            f"{flags[defining[0]]}: cannot be given with --resume (the plan is the one recorded in "
            f"{folder.plan_file}); allowed with --resume: {allowed}, --json"
        )
    plan = folder.load_plan()
    # a new --ray-address is checked by run_plan before anything is loaded or written, as any plan's is
    return replace(plan, **{RESUME_RUNTIME_OPTIONS[name]: ctx.params[name] for name in given})
