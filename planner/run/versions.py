from __future__ import annotations

import platform
from importlib import metadata


def package_versions() -> dict[str, str]:
    """Versions that a plan's numbers depend on, recorded in plan.json and exports."""
    versions = {"python": platform.python_version()}
    for name in ("unimixer-plan", "torch", "optuna", "ray", "fvcore", "plotly", "typer", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
