"""Progress bars on stderr (quiet when stderr is not a terminal, so logs stay clean)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


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
