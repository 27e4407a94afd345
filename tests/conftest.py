from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch
from unimixer_plan.data.cache import CACHE_ENV
from unimixer_plan.mixers import ConfigError, ModelConfig, get_family

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2`: one core per worker, or the two workers' torch threads fight over two cores.
    torch.set_num_threads(1)

SHARED_CRITEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "criteo"


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """Encoded-data caches of a test session go to its own folder, never the user's ~/.cache (and
    the environment carries it into the subprocess tests' plans)."""
    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("data-cache"))
    yield
    if saved is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = saved


SMALL_SCHEMA = {"num_dense": 3, "cardinalities": (11, 5, 7, 2), "embed_dim": 4}

# One small valid config per family, for contract tests.
FAMILY_EXAMPLES: dict[str, dict] = {
    "rankmixer": {"n_tokens": 4, "d_model": 8, "heads": 4},
    "unimixer": {"n_tokens": 4, "d_model": 8, "heads": 2},
    "unimixing_lite": {"n_tokens": 4, "d_model": 8, "heads": 2, "rank": 3, "bases": 2},
    "attention": {"n_tokens": 4, "d_model": 8, "heads": 2},
    "wukong": {"n_tokens": 5, "d_model": 8, "rank": 3},
    "lr": {"embed_dim": 1},  # one scalar weight per id
    "fm": {},
}


def small_config(family: str, **overrides) -> ModelConfig:
    stack = {"depth": 2, "ffn_ratio": 2} if "depth" in get_family(family).knobs else {}
    fields = {"family": family, **stack, **SMALL_SCHEMA, **FAMILY_EXAMPLES[family], **overrides}
    return ModelConfig(**fields)


def random_config(family: str, rng: random.Random) -> ModelConfig:
    """A random valid config of ``family`` (retries until the family's rules accept it)."""
    if get_family(family).baseline:
        return ModelConfig(
            family=family,
            num_dense=rng.randint(0, 4),
            cardinalities=tuple(rng.randint(1, 20) for _ in range(rng.randint(1, 5))),
            embed_dim=1 if family == "lr" else rng.randint(1, 6),
        )
    while True:
        t = rng.randint(2, 8)
        d = rng.choice([4, 6, 8, 12, 16])
        fields = {
            "family": family,
            "n_tokens": t,
            "d_model": d,
            "depth": rng.randint(1, 3),
            "ffn_ratio": rng.randint(1, 3),
            "num_dense": rng.randint(0, 4),
            "cardinalities": tuple(rng.randint(1, 20) for _ in range(rng.randint(1, 5))),
            "embed_dim": rng.randint(1, 6),
        }
        if family == "rankmixer":
            fields["heads"] = t
        elif family in ("unimixer", "unimixing_lite", "attention"):
            fields["heads"] = rng.choice([h for h in range(1, d + 1) if d % h == 0])
        if family == "unimixing_lite":
            fields["rank"] = rng.randint(1, t * fields["heads"])
            fields["bases"] = rng.randint(1, 4)
        if family == "wukong":
            fields["rank"] = rng.randint(1, 6)
        try:
            return ModelConfig(**fields)
        except ConfigError:
            continue


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
