"""The typed, frozen model configuration and its YAML/JSON round trip.

A :class:`ModelConfig` is everything needed to rebuild one architecture exactly: the
family and its knobs, and the input schema that sizes the embedding tables.
Family-specific rules live with the family (see ``registry``); this module checks the
rules every family shares.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from unimixer_plan.criteo import CRITEO_NUM_DENSE, capped_criteo_cardinalities
from unimixer_plan.errors import ConfigError
from unimixer_plan.mixers.sinkhorn import SINKHORN_MAX_ITERS, SINKHORN_TOL

# Architecture knobs; which of them a family uses is declared by the family (registry).
KNOBS = ("n_tokens", "d_model", "depth", "ffn_ratio", "heads", "rank", "bases")
LEGACY_FIELDS = frozenset({"sinkhorn_iters"})


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class ModelConfig:
    """One ranking model: a UniMixer-family mixer or a baseline (``lr``, ``fm``).

    Knobs: ``n_tokens`` T, ``d_model`` D, ``heads`` H, ``rank`` r, ``bases`` b,
    ``depth`` M (number of blocks) and ``ffn_ratio`` k (per-token FFN hidden = k*D).
    Which knobs a family uses is the family's declaration (``MixerFamily.knobs``): a
    used knob is required unless the family has a default for it (every mixer family:
    ``ffn_ratio`` = 2, filled in here so that leaving it out and writing 2 give equal
    configs), and a knob the family does not use must stay ``None``, so that one
    architecture has exactly one config. The baselines use none of them. Input schema:
    ``num_dense`` dense fields, one embedding table per categorical field with
    ``cardinalities[i]`` rows, all of width ``embed_dim``.

    Numerics of the Sinkhorn-constrained families (ignored by the others):
    ``sinkhorn_tol`` (rows and columns within this of 1), ``sinkhorn_max_iters`` (cap on
    Newton steps), and the temperature schedule ``tau_start`` -> ``tau_end``.
    """

    family: str
    n_tokens: int | None = None
    d_model: int | None = None
    depth: int | None = None
    ffn_ratio: int | None = None
    heads: int | None = None
    rank: int | None = None
    bases: int | None = None
    num_dense: int = CRITEO_NUM_DENSE
    cardinalities: tuple[int, ...] = field(default_factory=lambda: capped_criteo_cardinalities(10_000))
    embed_dim: int = 16
    sinkhorn_tol: float = SINKHORN_TOL
    sinkhorn_max_iters: int = SINKHORN_MAX_ITERS
    tau_start: float = 1.0
    tau_end: float = 0.05

    def __post_init__(self) -> None:
        # YAML/JSON give lists; the frozen config must stay hashable.
        object.__setattr__(self, "cardinalities", tuple(self.cardinalities))
        from unimixer_plan.mixers.registry import get_family  # late: registry imports the families

        family = get_family(self.family)
        for knob, default in family.knob_defaults.items():
            if getattr(self, knob) is None:
                object.__setattr__(self, knob, default)
        self._check_shared_rules()
        family.validate(self)

    def _check_shared_rules(self) -> None:
        for name in ("embed_dim", "sinkhorn_max_iters"):
            value = getattr(self, name)
            if not _is_positive_int(value):
                raise ConfigError(name, value, "must be an integer >= 1")
        for name in KNOBS:
            value = getattr(self, name)
            if value is not None and not _is_positive_int(value):
                raise ConfigError(name, value, "must be an integer >= 1 (or unset)")
        if not isinstance(self.num_dense, int) or self.num_dense < 0:
            raise ConfigError("num_dense", self.num_dense, "must be an integer >= 0")
        if any(not isinstance(c, int) or c < 1 for c in self.cardinalities):
            raise ConfigError("cardinalities", list(self.cardinalities), "every table needs >= 1 row")
        if self.num_dense + len(self.cardinalities) == 0:
            raise ConfigError("num_dense", self.num_dense, "the schema has no field at all")
        for name in ("tau_start", "tau_end", "sinkhorn_tol"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(name, value, "must be a finite number > 0")
        if self.tau_end > self.tau_start:
            raise ConfigError("tau_end", self.tau_end, f"must be <= tau_start={self.tau_start}")

    # Derived sizes, named as in DESIGN.md section 2.
    @property
    def num_fields(self) -> int:
        return self.num_dense + len(self.cardinalities)

    @property
    def chunk_width(self) -> int:
        """Width d of each of the T chunks of the concatenated embeddings (zero-padded)."""
        return -(-self.num_fields * self.embed_dim // self.n_tokens)

    @property
    def flat_width(self) -> int:
        """L = T * D."""
        return self.n_tokens * self.d_model

    @property
    def ffn_hidden(self) -> int:
        return self.ffn_ratio * self.d_model

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cardinalities"] = list(self.cardinalities)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        if not isinstance(data, dict):
            raise ConfigError("config", type(data).__name__, "must be a mapping of field names to values")
        # Configs written before Sinkhorn ran to a tolerance carry a fixed iteration count; it
        # sized nothing (same parameters and FLOPs), so such a file still rebuilds its model.
        data = {k: v for k, v in data.items() if k not in LEGACY_FIELDS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], data[unknown[0]], f"unknown field; allowed: {', '.join(sorted(known))}")
        if "family" not in data:
            raise ConfigError("family", None, "is required")
        return cls(**data)


def save_config(config: ModelConfig, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``config`` as YAML or JSON (by suffix). ``extra`` keys sit beside ``model``."""
    path = Path(path)
    document: dict[str, Any] = {"model": config.to_dict(), **(extra or {})}
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(document, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=None))
    return path


def load_config(path: str | Path) -> ModelConfig:
    """Load a config written by :func:`save_config`, or a bare mapping of model fields."""
    data = load_document(path)
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    return ModelConfig.from_dict(data)


def load_document(path: str | Path) -> Any:
    """The whole file :func:`save_config` wrote: ``model`` and the ``extra`` keys beside it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError("config file", str(path), "does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as err:
        raise ConfigError("config file", str(path), f"cannot be read ({type(err).__name__})") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError("config file", str(path), f"is not valid YAML/JSON: {first_line}") from None
    return data
