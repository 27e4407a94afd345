"""This project's code, shipped to a cluster's workers with the job (Ray's runtime environment).

A node that joined a cluster has Ray, torch and the other dependencies, but need not have this
project installed: the driver uploads the ``unimixer_plan`` package through ``py_modules`` and Ray
unpacks it on every worker before the first trial. Installed from a wheel, the package is one folder;
in an editable checkout its subpackages live in the repository's top-level folders (``planner/`` is
``unimixer_plan``, ``mixers/`` is ``unimixer_plan.mixers``, ...), so they are assembled into one
folder named ``unimixer_plan`` first.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import unimixer_plan

# Subpackages whose folder an editable install maps from outside planner/ (pyproject's package-dir).
MAPPED_SUBPACKAGES = ("mixers", "reports", "search_spaces")
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


def package_folder(staging: Path) -> Path:
    """A folder named ``unimixer_plan`` holding the whole package: the installed one when it is one
    folder already, else one assembled under ``staging``."""
    top = Path(unimixer_plan.__file__).resolve().parent
    homes = {name: _folder_of(f"unimixer_plan.{name}") for name in MAPPED_SUBPACKAGES}
    if top.name == "unimixer_plan" and all(home == top / name for name, home in homes.items()):
        return top
    assembled = staging / "unimixer_plan"
    shutil.copytree(top, assembled, ignore=_SKIPPED)
    for name, home in homes.items():
        if home != top / name:
            shutil.copytree(home, assembled / name, ignore=_SKIPPED, dirs_exist_ok=True)
    return assembled


def _folder_of(module: str) -> Path:
    """Where a subpackage's files are, found without importing it (reports would pull in plotly)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{module} is not an installed package")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


@contextmanager
def project_runtime_env() -> Iterator[dict[str, Any]]:
    """Ray's runtime environment that carries this package to every worker, valid while the context is
    open (``ray.init`` uploads it; the staged copy is removed after)."""
    with tempfile.TemporaryDirectory(prefix="ump-code-") as staging:
        yield {"py_modules": [str(package_folder(Path(staging)))]}
