"""Per-test results from test logs: pytest `-rA` (Terminal-Bench's parser) and SWE-bench's parsers.

Terminal tasks are graded the way Terminal-Bench grades them: its `PytestParser` reads pytest's
`short test summary info` block (`-rA` prints one `STATUS nodeid` line per test) and a task is
resolved when every parsed test passed (PASSED, XFAIL or SKIPPED).

SWE tasks are graded the way SWE-bench 5.x grades them: the part of the log between the eval
script's `>>>>> Start Test Output` / `>>>>> End Test Output` markers goes to the task's declared
`log_parser` (same rules as `swebench.harness.log_parsers`); a FAIL_TO_PASS / PASS_TO_PASS test
passed when its status is PASSED or XFAIL, and a test missing from the log counts as failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

__all__ = [
    "END_MARKER",
    "START_MARKER",
    "SWE_PARSERS",
    "TB_PASSING",
    "TB_STATUSES",
    "between_markers",
    "parse_swe_log",
    "parse_tb_pytest",
    "swe_failed",
    "swe_maintained",
    "swe_passed",
    "tb_passed",
]

START_MARKER = ">>>>> Start Test Output"
END_MARKER = ">>>>> End Test Output"

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SUMMARY_RE = re.compile(r"=+\s*short test summary info\s*=+", re.IGNORECASE)
_SKIP_COUNT_RE = re.compile(r"^\[\d+\]$")

# Terminal-Bench (terminal_bench/parsers/pytest_parser.py)
TB_STATUSES = ("PASSED", "FAILED", "SKIPPED", "XFAIL", "XPASS", "ERROR")
TB_PASSING = ("PASSED", "XFAIL", "SKIPPED")

# SWE-bench (swebench.harness.constants.TestStatus)
SWE_STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")


def _clean(text: str) -> str:
    return _ANSI_RE.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------------------
# Terminal-Bench: pytest -rA short test summary
# --------------------------------------------------------------------------------------


def _nodeid(text: str) -> str:
    """The test id of a summary line's rest: up to the first " - " (the message pytest appends
    to FAILED/ERROR/XFAIL lines) outside the brackets of parameters."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif depth == 0 and text.startswith(" - ", i):
            return text[:i].strip()
    return text.strip()


def parse_tb_pytest(log: str) -> dict[str, str] | None:
    """nodeid -> status from pytest's short test summary; None when there is no summary
    (Terminal-Bench then reports a parse error: the tests did not run to the end). Like
    Terminal-Bench's PytestParser, but the failure message is cut at its first " - " (outside
    parameter brackets), so a message holding " - " never leaks into the test id."""
    parts = _SUMMARY_RE.split(_clean(log), maxsplit=1)
    if len(parts) < 2:
        return None
    out: dict[str, str] = {}
    for raw in parts[1].splitlines():
        line = raw.strip()
        words = line.split(maxsplit=1)
        if len(words) < 2:
            continue
        status = words[0].strip(":")
        if status not in TB_STATUSES:
            continue
        name = _nodeid(words[1])
        if not name or (status == "SKIPPED" and _SKIP_COUNT_RE.match(name.split()[0])):
            continue  # `SKIPPED [2] file.py:3: reason` is a count, not a test
        out[name] = status
    return out


def tb_passed(status: str | None) -> bool:
    return status in TB_PASSING


# --------------------------------------------------------------------------------------
# SWE-bench log parsers (swebench/harness/log_parsers/python.py), same rules
# --------------------------------------------------------------------------------------


def between_markers(log: str) -> str:
    """The test output of an eval script: between the markers (after the start marker when the
    script was killed before the end marker; the whole log when there is no marker)."""
    text = _clean(log)
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if START_MARKER in ln), None)
    if start is None:
        return text
    end = next((i for i, ln in enumerate(lines) if i > start and END_MARKER in ln), len(lines))
    return "\n".join(lines[start + 1:end])


def _starts_with_status(line: str) -> bool:
    return any(line.startswith(s) for s in SWE_STATUSES)


def _is_skip_summary(status: str, name: str) -> bool:
    return status == "SKIPPED" and bool(_SKIP_COUNT_RE.match(name))


def _status_cases(log: str) -> Iterator[tuple[str, str]]:
    """(status, test name) of each `-rA` summary line, cut as SWE-bench's parsers cut them."""
    for line in log.split("\n"):
        if _starts_with_status(line):
            if line.startswith("FAILED"):
                line = line.replace(" - ", " ")
            case = line.split()
            if len(case) <= 1 or _is_skip_summary(case[0], case[1]):
                continue
            yield case[0], case[1]


def parse_log_pytest(log: str) -> dict[str, str]:
    return {name: status for status, name in _status_cases(log)}


def parse_log_pytest_options(log: str) -> dict[str, str]:
    option_re = re.compile(r"(.*?)\[(.*)\]")
    out: dict[str, str] = {}
    for status, name in _status_cases(log):
        m = option_re.search(name)
        if m:
            main, option = m.groups()
            if option.startswith("/") and not option.startswith("//") and "*" not in option:
                option = "/" + option.split("/")[-1]
            name = f"{main}[{option}]"
        out[name] = status
    return out


def parse_log_pytest_v2(log: str) -> dict[str, str]:
    escapes = "".join(chr(c) for c in range(1, 32))
    table = str.maketrans("", "", escapes)
    out: dict[str, str] = {}
    for raw in log.split("\n"):
        line = re.sub(r"\[(\d+)m", "", raw).translate(table)
        if _starts_with_status(line):
            if line.startswith("FAILED"):
                line = line.split(" - ", 1)[0]
            case = line.split()
            if len(case) >= 2 and not _is_skip_summary(case[0], case[1]):
                out[" ".join(case[1:])] = case[0]
        elif any(line.endswith(s) for s in SWE_STATUSES):
            case = line.split()
            if len(case) >= 2:
                out[" ".join(case[:-1])] = case[-1]
    return out


def parse_log_django(log: str) -> dict[str, str]:
    out: dict[str, str] = {}
    prev: str | None = None
    for raw in log.split("\n"):
        line = raw.strip()
        if "--version is equivalent to version" in line:
            out["--version is equivalent to version"] = "PASSED"
        if " ... " in line:
            prev = line.split(" ... ")[0]
        for suffix in (" ... ok", " ... OK", " ...  OK"):
            if line.endswith(suffix):
                if line.startswith("Applying sites.0002_alter_domain_unique...test_no_migrations"):
                    line = line.split("...", 1)[-1].strip()
                out[line.rsplit(suffix, 1)[0]] = "PASSED"
                break
        if " ... skipped" in line:
            out[line.split(" ... skipped")[0]] = "SKIPPED"
        if line.endswith(" ... FAIL"):
            out[line.split(" ... FAIL")[0]] = "FAILED"
        if line.startswith("FAIL:"):
            out[line.split()[1].strip()] = "FAILED"
        if line.endswith(" ... ERROR"):
            out[line.split(" ... ERROR")[0]] = "ERROR"
        if line.startswith("ERROR:"):
            out[line.split()[1].strip()] = "ERROR"
        if line.lstrip().startswith("ok") and prev is not None:
            out[prev] = "PASSED"
    patterns = [
        r"^(.*?)\s\.\.\.\sTesting\ against\ Django\ installed\ in\ ((?s:.*?))\ silenced\)\.\nok$",
        r"^(.*?)\s\.\.\.\sInternal\ Server\ Error:\ \/(.*)\/\nok$",
        r"^(.*?)\s\.\.\.\sSystem check identified no issues \(0 silenced\)\nok$",
    ]
    for pattern in patterns:
        for m in re.finditer(pattern, log, re.MULTILINE):
            out[m.group(1)] = "PASSED"
    return out


def parse_log_seaborn(log: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in log.split("\n"):
        parts = line.split()
        if len(parts) < 2:
            continue
        if line.startswith("FAILED"):
            out[parts[1]] = "FAILED"
        elif " PASSED " in line:
            if parts[1] == "PASSED":
                out[parts[0]] = "PASSED"
        elif line.startswith("PASSED"):
            out[parts[1]] = "PASSED"
    return out


def parse_log_sympy(log: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in re.findall(r"(_*) (.*)\.py:(.*) (_*)", log):
        out[f"{m[1]}.py:{m[2]}"] = "FAILED"
    for raw in log.split("\n"):
        line = raw.strip()
        if line.startswith("test_"):
            if line.endswith(" E"):
                out[line.split()[0]] = "ERROR"
            if line.endswith(" F"):
                out[line.split()[0]] = "FAILED"
            if line.endswith(" ok"):
                out[line.split()[0]] = "PASSED"
    return out


def parse_log_matplotlib(log: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in log.split("\n"):
        line = raw.replace("MouseButton.LEFT", "1").replace("MouseButton.RIGHT", "3")
        if _starts_with_status(line):
            if line.startswith("FAILED"):
                line = line.replace(" - ", " ")
            case = line.split()
            if len(case) <= 1 or _is_skip_summary(case[0], case[1]):
                continue
            out[case[1]] = case[0]
    return out


SWE_PARSERS: dict[str, Callable[[str], dict[str, str]]] = {
    "parse_log_pytest": parse_log_pytest,
    "parse_log_pytest_options": parse_log_pytest_options,
    "parse_log_pytest_v2": parse_log_pytest_v2,
    "parse_log_django": parse_log_django,
    "parse_log_sympy": parse_log_sympy,
    "parse_log_seaborn": parse_log_seaborn,
    "parse_log_matplotlib": parse_log_matplotlib,
}


def parse_swe_log(log: str, parser: str) -> dict[str, str]:
    """The test statuses SWE-bench would read from an eval script's log."""
    try:
        fn = SWE_PARSERS[parser]
    except KeyError:
        raise ValueError(f"unknown log parser '{parser}' (known: {', '.join(SWE_PARSERS)})"
                         ) from None
    return fn(between_markers(log))


def swe_passed(status: str | None) -> bool:
    """SWE-bench's `test_passed`: PASSED or XFAIL."""
    return status in ("PASSED", "XFAIL")


def swe_maintained(status: str | None) -> bool:
    """SWE-bench's PASS_TO_PASS rule: passed, or skipped (a skip is not a regression)."""
    return status in ("PASSED", "XFAIL", "SKIPPED")


def swe_failed(status: str | None) -> bool:
    """SWE-bench's `test_failed`: missing from the log, FAILED, ERROR or SKIPPED."""
    return status is None or status in ("FAILED", "ERROR", "SKIPPED")
