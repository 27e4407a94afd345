"""The planner: CLI, data, training, cost profiling, search, Pareto set and export."""

from __future__ import annotations

# Ray reads its environment when first imported; every planner module that imports Ray
# does so after this package's __init__ has run, whatever an import sorter does.
import unimixer_plan.ray_env  # noqa: F401
