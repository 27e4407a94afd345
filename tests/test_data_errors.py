"""Malformed input raises DataError naming file, line and column; the CLI exits 2 with one line."""

from __future__ import annotations

import gzip

import pytest
from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.data import CRITEO_SCHEMA, DataError, DataSpec, load_data, load_schema
from unimixer_plan.data.reader import read_table
from unimixer_plan.mixers import save_config

from tests.conftest import small_config


def criteo_line(label: str = "0", i5: str = "12") -> str:
    dense = ["1", "2", "", "4", i5, "6", "7", "8", "9", "0", "1", "", "3"]
    cats = [f"{i:08x}" for i in range(26)]
    cats[5] = ""
    return "\t".join([label, *dense, *cats]) + "\n"


def test_wrong_column_count(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text(criteo_line() * 3 + criteo_line().replace("\t", "\t\t", 1) + criteo_line())
    with pytest.raises(DataError) as info:
        read_table(path, CRITEO_SCHEMA)
    assert info.value.line == 4
    assert str(info.value) == f"{path}: line 4: expected 40 columns, found 41"


def test_non_numeric_integer_field(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text(criteo_line() * 2 + criteo_line(i5="abc"))
    with pytest.raises(DataError) as info:
        read_table(path, CRITEO_SCHEMA, chunk_rows=2)  # the bad row sits in the second chunk
    assert (info.value.line, info.value.column) == (3, "I5")
    assert "'abc' is not a number" in str(info.value)


def test_bad_label_and_header_line_numbers(tmp_path):
    path = tmp_path / "bad.csv"
    header = ",".join(CRITEO_SCHEMA.columns) + "\n"
    path.write_text(header + criteo_line().replace("\t", ",") + criteo_line(label="2").replace("\t", ","))
    with pytest.raises(DataError) as info:
        read_table(path, CRITEO_SCHEMA)
    assert (info.value.line, info.value.column) == (3, "label")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("")
    with pytest.raises(DataError, match=r"empty\.tsv: line 1: empty file"):
        read_table(path, CRITEO_SCHEMA)


def test_broken_gzip(tmp_path):
    path = tmp_path / "broken.tsv.gz"
    path.write_bytes(gzip.compress((criteo_line() * 2000).encode())[:-300])
    with pytest.raises(DataError) as info:
        read_table(path, CRITEO_SCHEMA)
    assert "corrupt or truncated gzip" in str(info.value)
    assert info.value.line is not None and info.value.line > 1


def test_missing_file_and_header_without_columns(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.tsv", CRITEO_SCHEMA)
    path = tmp_path / "h.csv"
    path.write_text("label,I1,C1\n0,1,ab\n")
    with pytest.raises(DataError, match=r"line 1: the header has no column 'I2'"):
        read_table(path, CRITEO_SCHEMA)


def test_user_schema_reads_any_ctr_table(tmp_path):
    schema_path = tmp_path / "schema.yaml"
    schema_path.write_text("label: clicked\ndense: [price]\ncategorical: [user, item]\ndrop: [ts]\n")
    table = tmp_path / "table.csv"
    rows = ["ts,user,item,price,clicked"] + [f"{i},u{i % 7},i{i % 5},{i * 1.5},{i % 2}" for i in range(200)]
    table.write_text("\n".join(rows) + "\n")
    data = load_data(DataSpec(path=str(table), schema_path=str(schema_path), min_count=1))
    assert data.num_dense == 1 and data.cardinalities == (7 + 2, 5 + 2)
    assert (len(data.train), len(data.val), len(data.test)) == (160, 20, 20)  # 8:1:1 by file order
    bad_schema = tmp_path / "bad.yaml"
    bad_schema.write_text("label: clicked\ndense: [price]\ncolour: red\n")
    with pytest.raises(DataError, match="unknown schema key 'colour'"):
        load_schema(bad_schema)


def test_cli_reports_malformed_data_in_one_line(tmp_path):
    # In process (the executable's own start is covered by test_plan_logic's subprocess test).
    config = save_config(small_config("unimixer"), tmp_path / "m.yaml")
    path = tmp_path / "bad.tsv"
    path.write_text(criteo_line() + criteo_line(i5="x1"))
    result = CliRunner().invoke(app, ["train", str(config), "--data", str(path), "--samples", "10"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == f"Error: {path}: line 2, column I5: 'x1' is not a number"
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["train", str(config), "--dataset", "avazu"])
    assert result.exit_code == 2 and "--dataset 'avazu': unknown; allowed: criteo" in result.stderr
