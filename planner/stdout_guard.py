"""Keep stdout for the one JSON object of ``--json``.

Python-level prints (Ray's driver reporting a dead worker) and C-level writes to file
descriptor 1 (MKL's "Intel oneMKL ERROR ..." lines, printed by the library itself) both
go to stderr while the guard is on; stdout is restored for the JSON.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout, suppress


@contextmanager
def stdout_to_stderr(active: bool = True) -> Iterator[None]:
    """While active, everything written to stdout, by Python or by native code, lands on stderr."""
    if not active:
        yield
        return
    sys.stdout.flush()
    try:
        target, saved = sys.stderr.fileno(), os.dup(1)
    except (OSError, ValueError):  # no real file descriptors (a test runner's streams): Python's redirect only
        with redirect_stdout(sys.stderr):
            yield
        return
    # C's stdout is fully buffered on a pipe or file: what native code printed before or inside the
    # guard must leave its buffer while fd 1 still points where it was written for
    _flush_c_stdio()
    try:
        os.dup2(target, 1)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        try:
            sys.stderr.flush()
            _flush_c_stdio()
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _flush_c_stdio() -> None:
    with suppress(OSError, AttributeError):  # no C library to flush (not a glibc/musl process)
        ctypes.CDLL(None).fflush(None)
