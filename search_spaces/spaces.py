"""Declarative search spaces: one per family, read from YAML (the default or a user's file)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from unimixer_plan.errors import PlanError
from unimixer_plan.mixers import get_family, list_mixers, list_searchable

DEFAULT_SPACE_FILE = "default.yaml"  # package data of unimixer_plan.search_spaces
DEFAULT_EMBED_DIMS = (16,)  # a space file without embed_dim keeps the embedding width fixed
D_MULTIPLE = 8  # d_model is a multiple of lcm(8, heads): SIMD-friendly and valid for every family
# What a plan searches when the user names no family and no space file: the two UniMixer families and
# RankMixer, the ancestor they generalise (the comparison the paper makes). Attention and Wukong are
# references a user adds with --families (or --families all). Attention trains slowest of all; the five
# families with two seeds per shape took the default 2e9 plan 23 minutes on 2 cores, these three with one 9.
DEFAULT_PLAN_FAMILIES = ("rankmixer", "unimixer", "unimixing_lite")
ALL_FAMILIES = "all"


def requested_families(names: list[str] | None, own_space: bool) -> tuple[str, ...]:
    """The plan's families from ``--families``: as named; ``all`` gives () (every family of the space);
    without the option, every family of the user's own space file, else DEFAULT_PLAN_FAMILIES."""
    if names:
        return () if ALL_FAMILIES in names else tuple(names)
    return () if own_space else DEFAULT_PLAN_FAMILIES


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False


Domain = tuple[int, ...] | IntRange


@dataclass(frozen=True)
class FamilySpace:
    family: str
    knobs: dict[str, Domain]  # the sampled knobs of this family (heads of rankmixer follows n_tokens)
    d_model: IntRange

    def smallest(self, knob: str) -> int:
        domain = self.knobs[knob]
        return domain.low if isinstance(domain, IntRange) else min(domain)

    def __hash__(self) -> int:
        return hash((self.family, tuple(sorted(self.knobs.items())), self.d_model))


def _domain(source: str, family: str, knob: str, value: Any) -> Domain:
    where = f"{source}: {family}.{knob}"
    if isinstance(value, list) and value and all(isinstance(v, int) and v >= 1 for v in value):
        return tuple(sorted(set(value)))
    if isinstance(value, dict) and set(value) <= {"low", "high", "log"}:
        low, high = value.get("low"), value.get("high")
        if isinstance(low, int) and isinstance(high, int) and 1 <= low <= high:
            return IntRange(low, high, bool(value.get("log", False)))
    raise PlanError(f"{where}={value!r}: must be a list of integers >= 1 or {{low, high[, log]}} with 1 <= low <= high")


def parse_spaces(data: Any, source: str) -> dict[str, FamilySpace]:
    if not isinstance(data, dict) or not data:
        raise PlanError(f"{source}: a search space file maps family names to their knobs")
    spaces = {}
    for family, knobs in data.items():
        if family not in list_searchable():
            kind = "a baseline, not searched" if family in list_mixers() else "unknown"
            raise PlanError(f"{source}: family {family!r} is {kind}; searchable: {', '.join(list_searchable())}")
        if not isinstance(knobs, dict):
            raise PlanError(f"{source}: {family} must map knobs to domains")
        allowed = {"n_tokens", "depth", "ffn_ratio", "d_model", "embed_dim"} | set(get_family(family).knobs)
        if family == "rankmixer":
            allowed.discard("heads")  # always n_tokens
        unknown = sorted(set(knobs) - allowed)
        if unknown:
            raise PlanError(f"{source}: {family}.{unknown[0]} is not a knob of {family}; allowed: {sorted(allowed)}")
        knobs = {"embed_dim": list(DEFAULT_EMBED_DIMS), **knobs}  # optional in a user's file
        missing = sorted(allowed - set(knobs))
        if missing:
            raise PlanError(f"{source}: {family} needs a domain for {missing[0]}")
        d_model = _domain(source, family, "d_model", knobs["d_model"])
        if not isinstance(d_model, IntRange):
            raise PlanError(f"{source}: {family}.d_model must be {{low, high}} (it is solved from the cost level)")
        spaces[family] = FamilySpace(
            family=family,
            knobs={k: _domain(source, family, k, v) for k, v in knobs.items() if k != "d_model"},
            d_model=d_model,
        )
    return spaces


def load_spaces(path: str | Path | None = None) -> dict[str, FamilySpace]:
    """The user's space file, or the default shipped as package data (read through
    importlib.resources, so that it is found in a wheel as in a checkout)."""
    if not path:
        text = resources.files("unimixer_plan.search_spaces").joinpath(DEFAULT_SPACE_FILE).read_text()
        return parse_spaces(yaml.safe_load(text), f"the default space ({DEFAULT_SPACE_FILE})")
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"--space {path}: file does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise PlanError(f"--space {path}: not readable YAML ({type(err).__name__})") from None
    return parse_spaces(data, f"--space {path}")
