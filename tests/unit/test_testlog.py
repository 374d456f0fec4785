"""Per-test statuses from pytest -rA logs (Terminal-Bench rules) and SWE-bench log parsers."""

from __future__ import annotations

import pytest

from generator.validate.testlog import (
    SWE_PARSERS,
    between_markers,
    parse_swe_log,
    parse_tb_pytest,
    swe_failed,
    swe_maintained,
    swe_passed,
    tb_passed,
)

PYTEST_RA = """\
============================= test session starts ==============================
collected 6 items

../tests/test_outputs.py .F.sxE                                          [100%]

==================================== ERRORS ====================================
_________________________ ERROR at setup of test_err ___________________________
E   fixture 'nope' not found
=================================== FAILURES ===================================
___________________________________ test_two ___________________________________
    def test_two():
>       assert 1 == 2 - 0
E       assert 1 == 2
=========================== short test summary info ============================
PASSED ../tests/test_outputs.py::test_one
PASSED ../tests/test_outputs.py::test_param[a - b]
SKIPPED [1] ../tests/test_outputs.py:12: not today
XFAIL ../tests/test_outputs.py::test_xf - known bug
FAILED ../tests/test_outputs.py::test_two - assert 1 == 2 - 0
ERROR ../tests/test_outputs.py::test_err - fixture 'nope' not found
============== 1 failed, 2 passed, 1 skipped, 1 xfailed, 1 error in 0.05s ==============
"""


def test_tb_parser_reads_the_short_summary() -> None:
    assert parse_tb_pytest(PYTEST_RA) == {
        "../tests/test_outputs.py::test_one": "PASSED",
        "../tests/test_outputs.py::test_param[a - b]": "PASSED",  # " - " inside params kept
        "../tests/test_outputs.py::test_xf": "XFAIL",
        "../tests/test_outputs.py::test_two": "FAILED",  # the message (with " - ") dropped
        "../tests/test_outputs.py::test_err": "ERROR",
    }  # and `SKIPPED [1] file:line: reason` is a count, not a test


def test_tb_parser_without_summary_is_none() -> None:
    assert parse_tb_pytest("bash: python3: command not found\n") is None
    assert parse_tb_pytest("") is None


def test_tb_parser_strips_ansi_and_crlf() -> None:
    log = "\x1b[1m===== short test summary info =====\x1b[0m\r\n\x1b[32mPASSED\x1b[0m t.py::a\r\n"
    assert parse_tb_pytest(log) == {"t.py::a": "PASSED"}


def test_tb_pass_rules() -> None:
    assert all(tb_passed(s) for s in ("PASSED", "XFAIL", "SKIPPED"))
    assert not any(tb_passed(s) for s in ("FAILED", "ERROR", "XPASS", None))


EVAL_LOG = """\
+ git apply --verbose -
Applied patch test_x.py cleanly.
+ : '>>>>> Start Test Output'
+ pytest -rA test_x.py
PASSED test_x.py::test_before_marker_is_ignored_not
=========================== short test summary info ============================
PASSED test_x.py::test_a
FAILED test_x.py::test_b - AssertionError: x - y
SKIPPED [2] test_x.py:3: unconditional skip
XFAIL test_x.py::test_c
+ : '>>>>> End Test Output'
PASSED test_x.py::after_end
"""


def test_swe_log_only_between_markers() -> None:
    got = parse_swe_log(EVAL_LOG, "parse_log_pytest")
    assert got == {"test_x.py::test_before_marker_is_ignored_not": "PASSED",
                   "test_x.py::test_a": "PASSED", "test_x.py::test_b": "FAILED",
                   "test_x.py::test_c": "XFAIL"}
    assert "test_x.py::after_end" not in got


def test_between_markers_when_killed_before_the_end() -> None:
    log = "noise\n+ : '>>>>> Start Test Output'\nPASSED a::b\n"
    assert between_markers(log).strip() == "PASSED a::b"
    assert between_markers("PASSED a::b\n") == "PASSED a::b\n"


def test_swe_parsers_match_swebench_rules() -> None:
    assert parse_swe_log("PASSED t.py::f[/usr/lib/x]\n", "parse_log_pytest_options") == {
        "t.py::f[/x]": "PASSED"}
    assert parse_swe_log("FAILED t.py::a b - msg\nt.py::c PASSED\n", "parse_log_pytest_v2") == {
        "t.py::a b": "FAILED", "t.py::c": "PASSED"}
    django = ("test_a (app.tests.T) ... ok\ntest_b (app.tests.T) ... FAIL\n"
              "test_c (app.tests.T) ... skipped 'x'\nERROR: test_d (app.tests.T)\n")
    assert parse_swe_log(django, "parse_log_django") == {
        "test_a (app.tests.T)": "PASSED", "test_b (app.tests.T)": "FAILED",
        "test_c (app.tests.T)": "SKIPPED", "test_d": "ERROR"}
    assert parse_swe_log("test_one ok\ntest_two F\ntest_three E\n", "parse_log_sympy") == {
        "test_one": "PASSED", "test_two": "FAILED", "test_three": "ERROR"}
    assert parse_swe_log("PASSED t.py::f[MouseButton.LEFT]\n", "parse_log_matplotlib") == {
        "t.py::f[1]": "PASSED"}
    assert parse_swe_log("t.py::x PASSED \nFAILED t.py::y\n", "parse_log_seaborn") == {
        "t.py::x": "PASSED", "t.py::y": "FAILED"}


def test_every_spec_log_parser_is_implemented() -> None:
    from generator.spec.model import LOG_PARSERS

    assert set(LOG_PARSERS) <= set(SWE_PARSERS)
    with pytest.raises(ValueError, match="unknown log parser"):
        parse_swe_log("", "parse_log_nope")


def test_swe_grading_rules() -> None:
    assert swe_passed("PASSED") and swe_passed("XFAIL") and not swe_passed("SKIPPED")
    assert swe_maintained("SKIPPED") and not swe_maintained("FAILED")
    assert swe_failed(None) and swe_failed("ERROR") and swe_failed("SKIPPED")
    assert not swe_failed("PASSED")
