"""Results of architectures already trained in this run, shared by trials on any node without a disk.

A trial on a worker node cannot see the driver's run folder (separate machines share no /tmp), so
the trained results it reuses live in a Ray actor: the driver fills it from the run folder's
``cache/`` when a rung starts (a resumed run reuses what it trained before), a trial that trains an
architecture puts its result there for the trials after it, and the driver alone writes the folder
(``TrialRecorder``, from the result the trial reported through Tune).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray


class ResultCache:
    """Final results (``trainable.CACHED_FIELDS``) by ``trainable.architecture_key``."""

    def __init__(self, entries: dict[str, dict[str, Any]]) -> None:
        self.entries = dict(entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, result: dict[str, Any]) -> None:
        self.entries[key] = result


@contextmanager
def result_cache(entries: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """The cache as an actor of the current Ray for the length of a rung: no CPU (a head node without CPUs
    for trials hosts it as well as any), its state in memory, killed when the rung ends."""
    actor = ray.remote(num_cpus=0)(ResultCache).remote(entries)
    try:
        yield actor
    finally:
        if ray.is_initialized():
            ray.kill(actor)


def lookup(cache: Any | None, key: str) -> dict[str, Any] | None:
    return None if cache is None else ray.get(cache.get.remote(key))


def share(cache: Any | None, key: str, result: dict[str, Any]) -> None:
    if cache is not None:
        ray.get(cache.put.remote(key, result))  # waited for: a trial after this one must see it
