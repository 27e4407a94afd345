"""Compatibility: the error root moved to :mod:`unimixer_plan.errors` (a leaf both the data layer
and the model zoo import); these names stay importable from here."""

from __future__ import annotations

from unimixer_plan.errors import ConfigError, PlanError

__all__ = ["ConfigError", "PlanError"]
