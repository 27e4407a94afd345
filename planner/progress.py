"""Progress on stderr: bars (quiet when stderr is not a terminal, so logs stay clean) and a plan's
opening lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from unimixer_plan.outcome import PlanOutcome
    from unimixer_plan.plan_config import PlanConfig
    from unimixer_plan.run.trial_record import TrialRecord


@contextmanager
def progress_bar(description: str, total: int, lazy: bool = False) -> Iterator[Callable]:
    """Yields ``update(completed[, description])``; draws nothing unless stderr is a terminal.

    With ``lazy``, yields ``open(total)`` instead, which starts the bar once the total is known
    and returns the update function.
    """
    console = Console(stderr=True)
    if not console.is_terminal:

        def ignore(*_: object) -> None:
            return None

        yield (lambda _total: ignore) if lazy else ignore
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:

        def start(count: int) -> Callable:
            task = progress.add_task(description, total=count)

            def update(completed: int, label: str | None = None) -> None:
                progress.update(task, completed=completed, description=label or description)

            return update

        yield start if lazy else start(total)


def run_with_progress(plan_config: PlanConfig, resume: bool) -> PlanOutcome:
    from unimixer_plan.plan import run_plan

    state: dict[str, Any] = {"done": 0, "per_rung": {}, "bar": None}

    def on_start(data: Any, done: int, total: int, rungs: list) -> None:
        state["done"] = done
        typer.echo(f"data: {data.description}", err=True)
        if len(rungs) > 1:
            budgets = sorted({r.flops for r in rungs})
            listed = ", ".join(f"{b:.3g}" for b in budgets)
            searched = [r.trials for r in sorted(rungs, key=lambda r: r.index)]
            typer.echo(
                f"proxy ladder: {len(budgets)} rungs at {listed} FLOPs/sample; {sum(searched)} search trials "
                f"({', '.join(map(str, searched))} per rung, each rung one study over every family), then "
                f"{total - sum(searched)} measurements (data points and seed replicates of each rung's best shapes)",
                err=True,
            )
        typer.echo(f"run folder: {plan_config.out} ({done} of {total} trials already done)", err=True)
        state["total"] = total
        state["bar"] = state["open"](total)

    with progress_bar("trials", 0, lazy=True) as open_bar:
        state["open"] = open_bar

        def on_row(record: TrialRecord) -> None:
            state["done"] += 1
            rung = record.rung
            state["per_rung"][rung] = state["per_rung"].get(rung, 0) + 1
            label = f"rung {rung}: {state['per_rung'][rung]} done" if rung else "trials"
            state["bar"](state["done"], label)

        def on_check(trained: int, total: int) -> None:
            if trained == 0:
                typer.echo(
                    f"test split: re-training the chosen configuration and the runner-up ({total} trainings)", err=True
                )
            state["bar"](state["done"], f"test split: {trained}/{total} re-trained")

        return run_plan(plan_config, resume=resume, on_row=on_row, on_start=on_start, on_check=on_check)
