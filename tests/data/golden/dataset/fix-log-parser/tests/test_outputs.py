"""Checks /app/parse_logs.py against the specification in the task instruction."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path("/app/parse_logs.py")
SAMPLE = Path("/app/sample.log")
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(log, *args):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, str(log)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


SAMPLE_TOP3 = """\
Total requests: 15
Total bytes: 72046
Unique clients: 6
Status codes:
  200: 9
  201: 1
  304: 2
  401: 1
  404: 1
  500: 1
Top 3 paths:
  /index.html: 4
  /api/items: 3
  /admin: 2
Malformed lines: 1
"""

SAMPLE_TOP5 = """\
Total requests: 15
Total bytes: 72046
Unique clients: 6
Status codes:
  200: 9
  201: 1
  304: 2
  401: 1
  404: 1
  500: 1
Top 5 paths:
  /index.html: 4
  /api/items: 3
  /admin: 2
  /static/app.css: 2
  /static/app.js: 2
Malformed lines: 1
"""

TIES_HEAD = """\
Total requests: 10
Total bytes: 900
Unique clients: 5
Status codes:
  200: 9
  204: 1
"""

TIES_RANKED = ["  /beta: 3", "  /alpha: 2", "  /mid: 2", "  /zeta: 2", "  /omega: 1"]

QUOTES_TOP3 = """\
Total requests: 6
Total bytes: 136432
Unique clients: 5
Status codes:
  200: 4
  206: 2
Top 3 paths:
  /search: 3
  /download/file.zip: 2
  /: 1
Malformed lines: 0
"""

MIXED_TOP3 = """\
Total requests: 7
Total bytes: 2209
Unique clients: 4
Status codes:
  200: 3
  204: 1
  304: 2
  502: 1
Top 3 paths:
  /api/users: 2
  /health: 2
  /images/logo.png: 2
Malformed lines: 3
"""


def test_script_exists():
    assert SCRIPT.is_file()
    assert SAMPLE.is_file()


def test_sample_log_default_summary():
    assert run(SAMPLE) == SAMPLE_TOP3


def test_default_top_is_three():
    assert run(SAMPLE) == run(SAMPLE, "--top", "3")


def test_sample_log_top_five():
    assert run(SAMPLE, "--top", "5") == SAMPLE_TOP5


def test_dash_byte_count_is_zero_not_malformed():
    out = run(FIXTURES / "mixed.log", "--top", "3")
    assert "Total bytes: 2209\n" in out
    assert "  304: 2\n" in out
    assert "  204: 1\n" in out
    assert out.endswith("Malformed lines: 3\n")


def test_escaped_quotes_in_quoted_fields():
    assert run(FIXTURES / "quotes.log", "--top", "3") == QUOTES_TOP3


def test_mixed_formats_blank_and_malformed_lines():
    assert run(FIXTURES / "mixed.log", "--top", "3") == MIXED_TOP3


@pytest.mark.parametrize("top", [1, 2, 4])
def test_top_n_lists_exactly_n_paths(top):
    expected = TIES_HEAD + f"Top {top} paths:\n" + "".join(
        line + "\n" for line in TIES_RANKED[:top]) + "Malformed lines: 0\n"
    assert run(FIXTURES / "ties.log", "--top", str(top)) == expected


def test_top_n_larger_than_number_of_paths():
    expected = TIES_HEAD + "Top 10 paths:\n" + "".join(
        line + "\n" for line in TIES_RANKED) + "Malformed lines: 0\n"
    assert run(FIXTURES / "ties.log", "--top", "10") == expected


def test_ties_are_broken_alphabetically():
    out = run(FIXTURES / "ties.log", "--top", "4")
    listed = [line for line in out.splitlines() if line.startswith("  /")]
    assert listed == ["  /beta: 3", "  /alpha: 2", "  /mid: 2", "  /zeta: 2"]
