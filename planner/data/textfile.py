"""Open a text data file, plain or gzip, and number its lines; I/O problems become DataError."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from unimixer_plan.data.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    try:
        with path.open("rb") as probe:
            return probe.read(2) == GZIP_MAGIC
    except FileNotFoundError:
        raise DataError(path, "file does not exist") from None
    except (IsADirectoryError, PermissionError) as err:
        raise DataError(path, f"cannot be read ({type(err).__name__})") from None


def open_text(path: Path) -> io.TextIOBase:
    import gzip

    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def lines(path: Path, handle: io.TextIOBase) -> Iterator[str]:
    line_number = 0
    try:
        for line_number, line in enumerate(handle, start=1):  # noqa: B007
            yield line
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(path, f"corrupt or truncated gzip stream ({err})", line=line_number + 1) from None
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text", line=line_number + 1) from None


def first_line(path: Path) -> str | None:
    """The first line of ``path`` (None when the file is empty)."""
    with open_text(path) as handle:
        return next(lines(path, handle), None)
