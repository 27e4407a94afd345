"""What a plan asks of a search, without Ray: the rungs to search and the runner that searches them.

``unimixer_plan.plan.run_plan`` takes a :class:`SearchRunner`. The default one
(``unimixer_plan.search.driver.RAY_SEARCH``) runs Ray Tune + Optuna; tests pass a scripted
runner that appends trial rows to the run folder, so that the plan's own logic (ladder,
resume, interruption, Pareto set, choice, scale-up) runs in milliseconds without Ray.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unimixer_plan.errors import PlanError
from unimixer_plan.search_spaces.cost_aware import MIN_COST_LEVEL

if TYPE_CHECKING:
    from unimixer_plan.data import CTRData
    from unimixer_plan.plan_config import PlanConfig
    from unimixer_plan.run.folder import RunFolder
    from unimixer_plan.search_spaces import FamilySpace

# Connecting to a Ray head that is not there makes ray.init print connection warnings and retry
# for minutes; a TCP connect answers at once (refused) or within this many seconds (unroutable).
RAY_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Rung:
    """One search: its FLOPs budget (the plan's own, or a proxy's), study and trial count."""

    index: int
    flops: float | None
    ceiling_flops: float
    study_name: str
    trials: int
    measure_latency: bool
    families: tuple[str, ...] = ()  # empty: every family of the space
    min_cost_level: float = MIN_COST_LEVEL
    time_budget_s: float | None = None


# run_rung(plan, folder, data, spaces, rung, attempt, on_row) -> trials recorded in folder's trials.csv
SearchRung = Callable[
    ["PlanConfig", "RunFolder", "CTRData", "dict[str, FamilySpace]", Rung, int, Callable[[dict], None]], int
]


@dataclass(frozen=True)
class SearchRunner:
    """How a plan searches its rungs.

    check:    before anything is loaded or written, fail fast on settings the runner cannot use
    session:  one context around all rungs of a plan (one Ray connection)
    run_rung: search one rung inside the session; returns how many trials it appended to trials.csv
              (fewer than asked, without a time budget, means Ctrl-C stopped it)
    """

    check: Callable[[PlanConfig], None]
    session: Callable[[PlanConfig], AbstractContextManager[Any]]
    run_rung: SearchRung


def ray_address_endpoint(address: str) -> tuple[str, int] | None:
    """Host and port to probe for ``--ray-address`` (None for ``auto``, which Ray resolves itself)."""
    if address == "auto":
        return None
    bare = address.removeprefix("ray://")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise PlanError(f"--ray-address {address}: expected HOST:PORT (the head's GCS port, e.g. 127.0.0.1:6379)")
    return host.strip("[]"), int(port)


def check_ray_address(address: str | None, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Raise PlanError unless something accepts a TCP connection at ``--ray-address``."""
    endpoint = None if address is None else ray_address_endpoint(address)
    if endpoint is None:
        return
    try:
        with socket.create_connection(endpoint, timeout=timeout_s):
            pass
    except TimeoutError:
        reason = f"no answer within {timeout_s:g} s"
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
    else:
        return
    raise PlanError(
        f"--ray-address {address}: no Ray head reachable there ({reason}); "
        "start one with `ray start --head` or omit --ray-address for a local Ray"
    )
