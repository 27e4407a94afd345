"""Is a Ray head listening at ``--ray-address``? Answered in seconds, before anything heavy loads.

Connecting to a Ray head that is not there makes ray.init print connection warnings and retry for
minutes. A TCP connect to the head's GCS port answers at once (refused) or within a timeout
(unroutable). Standard library only: the CLI calls it before importing torch, Ray or the data.
"""

from __future__ import annotations

import socket

from unimixer_plan.errors import PlanError

RAY_CONNECT_TIMEOUT_S = 5.0


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
