from __future__ import annotations

import json
import subprocess
import sys

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
    ],
)
def test_invalid_configs_name_the_field(family, overrides, field):
    with pytest.raises(ConfigError) as info:
        small_config(family, **overrides)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")


def test_unknown_family_and_unknown_field():
    with pytest.raises(ConfigError, match="unknown; registered: attention, rankmixer"):
        ModelConfig(family="mlp", n_tokens=2, d_model=2, depth=1)
    with pytest.raises(ConfigError, match=r"^colour='red': unknown field"):
        ModelConfig.from_dict({"family": "unimixer", "colour": "red"})


def test_load_config_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML/JSON"):
        load_config(bad)
