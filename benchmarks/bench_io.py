"""What every benchmark on the page writes: ``<out>/<name>.json`` (its numbers, with ``meta``: date and
machine) and ``<out>/<name>.md`` (its table), the files ``render.py`` reads."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def run_meta(**extra: Any) -> dict[str, Any]:
    """Today's date and this machine, and whatever else the benchmark records about its run."""
    return {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} CPUs, {platform.machine()}", **extra}


def write_results(out: Path, name: str, payload: dict[str, Any], table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    (out / f"{name}.md").write_text(table + "\n")
