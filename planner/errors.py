"""The one domain error family of unimixer-plan: a leaf module that every layer may import.

Library code raises :class:`PlanError` (or a subclass); only the CLI turns it into a
one-line message and exit code 2. Nothing below the CLI prints or exits.

It lives at the package root, not in ``mixers``, so that the data layer and the model zoo
share an error root without depending on each other (import contracts in pyproject.toml).
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
