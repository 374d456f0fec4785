"""Black-box tests for /app/csvstats.py (run through a subprocess)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path("/app/csvstats.py")
SALES = Path("/app/data/sales.csv")
DATA = Path(__file__).resolve().parent / "data"


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, str(CLI), *map(str, args)],
        input=stdin, capture_output=True, text=True, timeout=30,
    )


def ok(*args, stdin=None):
    result = run(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


SALES_TEXT = """\
date: type=text count=8 missing=0
region: type=text count=8 missing=0
units: type=numeric count=7 missing=1 mean=11.00 min=3.00 max=20.00
unit_price: type=numeric count=8 missing=0 mean=4.84 min=3.75 max=5.49
discount: type=numeric count=5 missing=3 mean=0.12 min=0.05 max=0.20
"""


def test_cli_exists():
    assert CLI.is_file()


def test_default_text_output():
    assert ok(SALES) == SALES_TEXT


def test_stdin_dash():
    assert ok("-", stdin=SALES.read_text()) == SALES_TEXT


def test_column_selection_keeps_given_order():
    assert ok("--column", "discount", "--column", "units", SALES) == (
        "discount: type=numeric count=5 missing=3 mean=0.12 min=0.05 max=0.20\n"
        "units: type=numeric count=7 missing=1 mean=11.00 min=3.00 max=20.00\n"
    )


def test_column_named_twice_is_reported_once():
    assert ok("--column", "units", "--column", "units", SALES) == (
        "units: type=numeric count=7 missing=1 mean=11.00 min=3.00 max=20.00\n"
    )


def test_text_column_selected():
    assert ok("--column", "region", SALES) == "region: type=text count=8 missing=0\n"


@pytest.mark.parametrize("precision,expected", [
    ("0", "units: type=numeric count=7 missing=1 mean=11 min=3 max=20\n"
          "discount: type=numeric count=5 missing=3 mean=0 min=0 max=0\n"),
    ("3", "units: type=numeric count=7 missing=1 mean=11.000 min=3.000 max=20.000\n"
          "discount: type=numeric count=5 missing=3 mean=0.120 min=0.050 max=0.200\n"),
], ids=["precision-0", "precision-3"])
def test_precision(precision, expected):
    assert ok("--precision", precision, "--column", "units", "--column", "discount",
              SALES) == expected


def test_semicolon_delimiter_and_quoted_fields():
    assert ok("--delimiter", ";", DATA / "semicolon.csv") == (
        "id: type=numeric count=4 missing=0 mean=2.50 min=1.00 max=4.00\n"
        "temp_c: type=numeric count=4 missing=0 mean=-0.45 min=-3.50 max=2.20\n"
        "station: type=text count=4 missing=0\n"
    )


def test_tab_delimiter_escape_and_number_syntax():
    assert ok("--delimiter", "\\t", DATA / "scores.tsv") == (
        "name: type=text count=4 missing=0\n"
        "score: type=numeric count=3 missing=1 mean=86.50 min=79.00 max=92.50\n"
        "bonus: type=numeric count=4 missing=0 mean=2.19 min=-2.00 max=10.00\n"
    )


def test_literal_tab_delimiter():
    assert ok("--delimiter", "\t", "--column", "score", DATA / "scores.tsv") == (
        "score: type=numeric count=3 missing=1 mean=86.50 min=79.00 max=92.50\n"
    )


def test_missing_values_blank_lines_and_text_columns():
    assert ok(DATA / "messy.csv") == (
        "sku: type=text count=4 missing=0\n"
        "qty: type=numeric count=3 missing=1 mean=5.00 min=3.00 max=7.00\n"
        "weight_kg: type=text count=4 missing=0\n"
        "note: type=text count=3 missing=1\n"
    )


def test_header_only():
    assert ok(DATA / "header_only.csv") == (
        "a: type=numeric count=0 missing=0 mean=- min=- max=-\n"
        "b: type=numeric count=0 missing=0 mean=- min=- max=-\n"
        "c: type=numeric count=0 missing=0 mean=- min=- max=-\n"
    )


def test_json_output():
    data = json.loads(ok("--format", "json", "--precision", "0", SALES))
    assert list(data) == ["columns"]
    cols = data["columns"]
    assert [c["name"] for c in cols] == ["date", "region", "units", "unit_price", "discount"]
    for c in cols:
        assert set(c) == {"name", "type", "count", "missing", "mean", "min", "max"}
    assert cols[0] == {"name": "date", "type": "text", "count": 8, "missing": 0,
                       "mean": None, "min": None, "max": None}
    price = cols[3]
    assert (price["type"], price["count"], price["missing"]) == ("numeric", 8, 0)
    assert price["mean"] == pytest.approx(4.8375)  # not rounded by --precision
    assert price["min"] == pytest.approx(3.75)
    assert price["max"] == pytest.approx(5.49)
    disc = cols[4]
    assert (disc["count"], disc["missing"]) == (5, 3)
    assert disc["mean"] == pytest.approx(0.12)


def test_json_empty_numeric_column():
    data = json.loads(ok("--format", "json", "--column", "b", DATA / "header_only.csv"))
    assert data == {"columns": [{"name": "b", "type": "numeric", "count": 0, "missing": 0,
                                 "mean": None, "min": None, "max": None}]}


@pytest.mark.parametrize("args", [
    ["/app/data/does-not-exist.csv"],
    ["--column", "nope", str(SALES)],
    ["--delimiter", "ab", str(SALES)],
    ["--precision", "-1", str(SALES)],
    ["--precision", "11", str(SALES)],
    ["--format", "xml", str(SALES)],
    [str(DATA / "ragged.csv")],
    [str(DATA / "empty.csv")],
    [str(DATA / "dup_header.csv")],
], ids=["missing-file", "unknown-column", "bad-delimiter", "negative-precision",
        "large-precision", "bad-format", "ragged-row", "empty-file", "duplicate-header"])
def test_bad_input_exits_2(args):
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() != ""
