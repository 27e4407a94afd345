"""The package's shape: modules stay small enough to read in one sitting."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("planner", "mixers", "reports", "search_spaces")  # unimixer_plan and its mapped subpackages
MAX_LINES = 400


def test_no_module_is_over_400_lines():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for folder in PACKAGE_DIRS
        for path in (ROOT / folder).rglob("*.py")
    }
    assert len(sizes) > 40  # the walk found the package
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
