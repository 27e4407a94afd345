"""The one domain error family of unimixer-plan.

Library code raises :class:`PlanError` (or a subclass); only the CLI turns it into a
one-line message and exit code 2. Nothing below the CLI prints or exits.
"""

from __future__ import annotations


class PlanError(Exception):
    """Bad input from the user: a value, a file or a combination that cannot work."""


class ConfigError(PlanError):
    """A model configuration breaks a rule. Names the field, the value and the rule."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}={value!r}: {rule}")
