from __future__ import annotations

from pathlib import Path

from unimixer_plan.errors import PlanError


class DataError(PlanError):
    """Unreadable or malformed data. Names the file and, where known, the line and column."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None, column: str | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f": line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {problem}")
