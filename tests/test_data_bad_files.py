"""Bad files in the new formats and splits: one line naming the file, the line or column and what is
allowed; the library raises DataError, the CLI exits 2 without a traceback."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest
from typer.testing import CliRunner
from unimixer_plan.cli import app
from unimixer_plan.data import DataError, DataSpec, load_data
from unimixer_plan.mixers import save_config

from tests.conftest import small_config

runner = CliRunner()
SCHEMA = "label: label\ndense: [x]\ncategorical: [a, b]\n"


def csv_rows(n: int, labels: str = "01", header: str = "label,x,a,b") -> str:
    return header + "\n" + "".join(f"{labels[i % 2]},{i},a{i % 3},b{i % 5}\n" for i in range(n))


def load(path, **options):
    return load_data(DataSpec(path=str(path), cache=False, **options))


def cli_error(tmp_path, *options: str) -> str:
    """Train through the CLI; it must exit 2 with one line on stderr."""
    config = save_config(small_config("fm"), tmp_path / "m.yaml")
    result = runner.invoke(app, ["train", str(config), "--samples", "10", "--no-cache", *options])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_malformed_libfm_pair_names_line_and_field(tmp_path):
    path = tmp_path / "bad.libfm"
    path.write_text("1 3:1 7:1 9:1\n-1 3:1 8:1 9:1\n1 4:1 4x1 9:1\n")
    assert cli_error(tmp_path, "--data", str(path)) == (
        f"Error: {path}: line 3, column f2: pair '4x1' is not index:value "
        "(a non-negative integer, ':', a number; e.g. 451:1)"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1 3:1 7:x", "line 2, column f2: pair '7:x': value 'x' is not a number"),
        ("1 3:1 7:1:1", "line 2, column f2: pair '7:1:1': value '1:1' is not a number (a three-part pair: read libffm"),
        ("1 3:1 -7:1", "line 2, column f2: pair '-7:1': the index '-7' is not a non-negative integer"),
        ("1 3:1 7:0.5", "line 2, column f2: pair '7:0.5': field f2 is categorical (one-hot): its value must be 1"),
        ("1 3:1", "line 2: expected a label and 2 index:value pairs (one per field, in field order: f1, f2), found 1"),
        ("2 3:1 7:1", "line 2, column label: label '2' is not allowed: labels are 0/1 or -1/1"),
    ],
)
def test_libfm_problems(tmp_path, line, problem):
    path = tmp_path / "bad.libfm"
    path.write_text(f"-1 3:1 7:1\n{line}\n-1 3:1 7:1\n")
    with pytest.raises(DataError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: {problem}")


def test_libffm_problems(tmp_path):
    path = tmp_path / "bad.ffm"
    path.write_text("1 0:3:1 1:7:1\n0 0:3:1 0:4:1\n")
    with pytest.raises(DataError, match=r"line 2, column f0: field 0 appears twice on the line"):
        load(path)
    path.write_text("1 0:3:1 1:7:1\n0 0:3:1 2:4:1\n")
    with pytest.raises(DataError, match=r"line 2: field 2 is not a field of this data \(fields 0..1"):
        load(path)
    path.write_text("1 0:3:1 1:7:1\n0 0:3:1 4:1\n")
    with pytest.raises(DataError, match=r"line 2: pair '4:1' is not field:index:value .*--format libfm"):
        load(path)


def test_mixed_label_conventions_in_one_file_and_across_splits(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(csv_rows(6).replace("\n1,5,", "\n-1,5,"))  # 0/1 rows, then a -1 on line 7
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    assert cli_error(tmp_path, "--data", str(path), "--schema", str(schema)) == (
        f"Error: {path}: line 7, column label: label '-1' mixes label conventions: {path} line 2 has label '0' "
        "(0/1); the files of one dataset use 0/1 or -1/1 throughout"
    )
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    train.write_text(csv_rows(20))
    valid.write_text(csv_rows(5, labels="1-").replace("-,", "-1,"))
    with pytest.raises(DataError, match=rf"{valid}: line 3, column label: label '-1' mixes .* {train} line 2 has"):
        load(train, schema_path=str(schema), valid_path=str(valid))


def test_a_third_value_with_a_named_positive_label(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("label,x,a,b\nclick,1,a,b\nskip,2,a,b\nclik,3,a,b\n")
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    with pytest.raises(DataError) as info:
        load(path, schema_path=str(schema), positive_label="click")
    assert str(info.value) == (
        f"{path}: line 4, column label: label 'clik' is a third value: with --positive-label 'click' every label "
        f"is 'click' or one other value, and {path} line 3 has 'skip'"
    )


def test_parquet_missing_a_schema_column(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"label": [0, 1], "x": [1.0, 2.0], "a": ["u", "v"]}).to_parquet(path)
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    assert cli_error(tmp_path, "--data", str(path), "--schema", str(schema)) == (
        f"Error: {path}, column b: no such column; the schema needs it, the file has label, x, a"
    )
    pd.DataFrame({"label": [0, 1], "x": ["1", "2"], "a": ["u", "v"], "b": ["p", "q"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"column x: type (large_)?string is not a number; label and dense columns"):
        load(path, schema_path=str(schema))
    packed = tmp_path / "rows.parquet.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match=r"gzip-compressed Parquet is not read"):
        load(packed, schema_path=str(schema))


def test_a_split_file_with_other_columns_or_format(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text(csv_rows(20))
    test.write_text(csv_rows(5, header="label,x,a,b,extra").replace("\n", ",e\n").replace("extra,e", "extra", 1))
    assert cli_error(tmp_path, "--data", str(train), "--schema", str(schema), "--test", str(test)) == (
        f"Error: {test}, column extra: test file has a column the training file lacks: 'extra'; its columns must "
        f"be the training file's ({train})"
    )
    valid = tmp_path / "valid.parquet"
    pd.DataFrame({"label": [0, 1], "x": [1.0, 2.0], "a": ["u", "v"], "b": ["p", "q"]}).to_parquet(valid)
    with pytest.raises(DataError, match=rf"{valid}: validation file is parquet, the training file {train} is csv"):
        load(train, schema_path=str(schema), valid_path=str(valid))


def test_empty_splits(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text(SCHEMA)
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    train.write_text(csv_rows(20))
    valid.write_text("label,x,a,b\n")
    assert cli_error(tmp_path, "--data", str(train), "--schema", str(schema), "--valid", str(valid)) == (
        f"Error: {valid}: line 2: no data rows after the header"
    )
    tiny = tmp_path / "tiny.csv"
    tiny.write_text(csv_rows(2))
    with pytest.raises(DataError, match=r"2 rows are too few to split off validation \(1\) and test \(1\)"):
        load(tiny, schema_path=str(schema))
    empty = tmp_path / "empty.libfm"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.libfm: line 1: empty file"):
        load(empty)


def test_bad_options_are_one_line(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text(csv_rows(20))
    assert cli_error(tmp_path, "--data", str(path), "--format", "xls") == (
        "Error: --format 'xls': unknown; allowed: csv, tsv, libsvm, libfm, libffm, parquet"
    )
    assert cli_error(tmp_path, "--data", str(path), "--val-fraction", "0.6", "--test-fraction", "0.5").startswith(
        "Error: --val-fraction 0.6 + --test-fraction 0.5: must leave training rows"
    )
    assert cli_error(tmp_path, "--test", str(path)) == f"Error: --test {path}: needs --data PATH, the training file"
