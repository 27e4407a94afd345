from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from unimixer_plan.mixers import (
    ConfigError,
    ModelConfig,
    analytic_cost,
    build_model,
    list_mixers,
    load_config,
    save_config,
)

from tests.conftest import small_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("family", list_mixers())
def test_dict_round_trip(family):
    config = small_config(family)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("suffix", [".yaml", pytest.param(".json", marks=pytest.mark.slow)])  # a process each
def test_config_file_rebuilds_the_same_architecture_in_a_fresh_process(tmp_path, suffix):
    config = small_config("unimixing_lite", depth=3)
    path = save_config(config, tmp_path / f"model{suffix}", extra={"note": "round trip"})
    script = (
        "import json, sys\n"
        "from unimixer_plan.mixers import load_config, build_model\n"
        "from unimixer_plan.profiling import measure_flops\n"
        "model = build_model(load_config(sys.argv[1]))\n"
        "print(json.dumps({'params': sum(p.numel() for p in model.parameters()), 'flops': measure_flops(model)[0]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    fresh = json.loads(out.stdout)
    model = build_model(config)
    assert fresh["params"] == sum(p.numel() for p in model.parameters())
    assert fresh["flops"] == analytic_cost(config).flops
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("family", "overrides", "field"),
    [
        ("unimixer", {"heads": 3}, "heads"),  # must divide d_model=8
        ("rankmixer", {"heads": 2}, "heads"),  # must equal n_tokens
        ("unimixing_lite", {"rank": 9}, "rank"),  # > N = 4 * 2
        ("unimixing_lite", {"bases": None}, "bases"),  # required
        ("rankmixer", {"rank": 4}, "rank"),  # not used by the family
        ("wukong", {"n_tokens": 1}, "n_tokens"),
        ("attention", {"d_model": 0}, "d_model"),
        ("unimixer", {"tau_end": 2.0}, "tau_end"),
        ("unimixer", {"cardinalities": (3, 0)}, "cardinalities"),
        ("unimixer", {"n_tokens": None}, "n_tokens"),  # required by the mixers
        ("fm", {"n_tokens": 4}, "n_tokens"),  # not used by the baselines
        ("lr", {"embed_dim": 8}, "embed_dim"),  # width-1 tables
        ("fm", {"embed_dim": 0}, "embed_dim"),
    ],
)
def test_invalid_configs_name_the_field(family, overrides, field):
    with pytest.raises(ConfigError) as info:
        small_config(family, **overrides)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")


def test_unknown_family_and_unknown_field():
    with pytest.raises(ConfigError, match="unknown; registered: attention, fm, lr, rankmixer"):
        ModelConfig(family="mlp", n_tokens=2, d_model=2, depth=1)
    with pytest.raises(ConfigError, match=r"^colour='red': unknown field"):
        ModelConfig.from_dict({"family": "unimixer", "colour": "red"})


def test_required_knobs_are_declared_per_family():
    with pytest.raises(ConfigError, match=r"^n_tokens=None: is required by family unimixer$"):
        ModelConfig.from_dict({"family": "unimixer", "d_model": 8, "depth": 1, "heads": 2})
    with pytest.raises(ConfigError, match=r"^family=None: is required$"):
        ModelConfig.from_dict({"n_tokens": 4})
    # ffn_ratio defaults to 2 for the mixers, so leaving it out and writing 2 is one config
    implicit = ModelConfig(family="unimixer", n_tokens=4, d_model=8, depth=1, heads=2)
    assert implicit == implicit.replace(ffn_ratio=2) and implicit.ffn_ratio == 2
    # the baselines use no knob at all, ffn_ratio included
    assert ModelConfig(family="fm").ffn_ratio is None
    with pytest.raises(ConfigError, match=r"^ffn_ratio=2: is not used by family fm"):
        ModelConfig(family="fm", ffn_ratio=2)


def test_shipped_example_and_legacy_configs_still_load(tmp_path):
    example = load_config(EXAMPLES / "unimixing_lite.yaml")
    assert (example.family, example.n_tokens, example.ffn_ratio, example.bases) == ("unimixing_lite", 16, 2, 4)
    # configs written before Sinkhorn ran to a tolerance carry sinkhorn_iters: still loadable
    legacy = small_config("unimixer").to_dict() | {"sinkhorn_iters": 20}
    legacy.pop("sinkhorn_tol")
    legacy.pop("sinkhorn_max_iters")
    assert ModelConfig.from_dict(legacy) == small_config("unimixer")


@pytest.mark.parametrize(
    ("field", "value"), [("sinkhorn_tol", 0.0), ("sinkhorn_tol", float("nan")), ("sinkhorn_max_iters", 0)]
)
def test_sinkhorn_settings_are_checked(field, value):
    with pytest.raises(ConfigError) as info:
        small_config("unimixer", **{field: value})
    assert info.value.field == field


def test_load_config_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML/JSON"):
        load_config(bad)
