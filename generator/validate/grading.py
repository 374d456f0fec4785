"""Turning runs into verdicts: a terminal task's tests must fail before the solution and pass after
it, a swe task's FAIL_TO_PASS must fail before the gold patch and pass after it and its
PASS_TO_PASS pass in both, on every run (a test that changes outcome between runs is a flake);
derive_lists gives the lists the runs show."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.validate.runs import (
    MISSING,
    SWE_STATES,
    TERMINAL_STATES,
    RunResult,
    _State,
)
from generator.validate.testlog import (
    swe_failed,
    swe_maintained,
    swe_passed,
    tb_passed,
)

__all__ = [
    "TaskVerdict", "derive_lists", "find_flakes", "grade_swe", "grade_terminal",
]


@dataclass
class TaskVerdict:
    task: str
    kind: str
    image: str
    problems: list[str] = field(default_factory=list)
    checks: dict[str, list[str]] = field(default_factory=dict)  # check -> its problems
    runs: dict[str, list[RunResult]] = field(default_factory=dict)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    flaky: list[str] = field(default_factory=list)
    derived: dict[str, list[str]] | None = None
    spec_written: bool = False
    seconds: float = 0.0
    summary: dict[str, str] = field(default_factory=dict)  # state -> one line
    tamper: list[Any] | None = None  # tamper.AttackResult per attack (gen validate --tamper)
    strength: Any = None  # strength.StrengthResult (gen validate --strength)
    strength_skipped: str | None = None  # why --strength did not measure the task

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "image": self.image, "ok": self.ok,
            "problems": list(self.problems),
            "checks": {k: {"ok": not v, "problems": list(v)} for k, v in self.checks.items()},
            "states": {s: {"summary": self.summary.get(s, ""),
                           "runs": [r.to_json() for r in runs]}
                       for s, runs in self.runs.items()},
            "tests": self.tests, "flaky": list(self.flaky),
            "derived": self.derived, "spec_written": self.spec_written,
            "seconds": round(self.seconds, 3),
            "tamper": None if self.tamper is None else [a.to_json() for a in self.tamper],
        }


def _runs_text(indexes: Sequence[int]) -> str:
    return ("run " if len(indexes) == 1 else "runs ") + ", ".join(str(i) for i in indexes)


def find_flakes(state: str, runs: Sequence[RunResult]) -> dict[str, str]:
    """test -> why, for tests whose status differs between the runs of one state (runs that
    produced results only; a test missing from a run's results counts as MISSING)."""
    parsed = [r for r in runs if r.statuses is not None and not r.timed_out]
    if len(parsed) < 2:
        return {}
    names: list[str] = []
    for r in parsed:
        assert r.statuses is not None
        names += [n for n in r.statuses if n not in names]
    out: dict[str, str] = {}
    for name in names:
        seen: dict[str, list[int]] = {}
        for r in parsed:
            assert r.statuses is not None
            seen.setdefault(r.statuses.get(name, MISSING), []).append(r.index)
        if len(seen) > 1:
            parts = "; ".join(f"{st} in {_runs_text(ix)}" for st, ix in seen.items())
            out[name] = f"flaky: test {name} in state '{state}': {parts}"
    return out


def _statuses(runs: Sequence[RunResult], name: str) -> list[str]:
    return [MISSING if r.statuses is None else r.statuses.get(name, MISSING) for r in runs]


def _run_errors(v: TaskVerdict, state: _State, runs: Sequence[RunResult]) -> None:
    for r in runs:
        for e in r.errors:
            v.problems.append(f"state '{state.name}' run {r.index}: {e}")


def _no_results(state: _State, r: RunResult) -> str:
    tail = r.output_tail.splitlines()[-3:]
    killed = " (137: killed, e.g. by the memory limit)" if r.exit_code == 137 else ""
    return (f"state '{state.name}' run {r.index}: no test results in the output (exit code "
            f"{r.exit_code}{killed}); last lines: {' | '.join(tail) or '(none)'}")


def _network_hint(runs: Sequence[RunResult]) -> str:
    sig = next((r.network_error for r in runs if r.network_error), None)
    if sig is None:
        return ""
    return (f" (the output shows a network error: '{sig}'; tests run with the network off and "
            "must not need it)")


def grade_terminal(v: TaskVerdict, runs: Mapping[str, list[RunResult]]) -> None:
    unsolved, solved = TERMINAL_STATES
    flakes: dict[str, str] = {}
    for st in TERMINAL_STATES:
        _run_errors(v, st, [r for r in runs[st.name] if r.timed_out])
        flakes.update({k: m for k, m in find_flakes(st.name, runs[st.name]).items()
                       if k not in flakes})
    v.flaky = sorted(flakes)
    v.problems += [flakes[k] for k in v.flaky]
    # unsolved: the tests must detect the missing fix
    for r in runs[unsolved.name]:
        if r.timed_out or r.statuses is None or not r.statuses:
            continue
        if all(tb_passed(s) for s in r.statuses.values()) and not flakes:
            v.problems.append(
                f"state '{unsolved.name}' run {r.index}: the tests already pass without the "
                f"fix (all {len(r.statuses)} tests passed: expected at least one to fail)")
            break
    # solved: every test must pass
    for r in runs[solved.name]:
        if r.timed_out:
            continue
        if r.statuses is None or not r.statuses:
            v.problems.append(_no_results(solved, r) + _network_hint([r]))
            continue
        for e in r.errors:
            v.problems.append(f"state '{solved.name}' run {r.index}: {e}")
    bad: dict[str, list[int]] = {}
    for r in runs[solved.name]:
        for name, status in (r.statuses or {}).items():
            if not tb_passed(status) and name not in flakes:
                bad.setdefault(f"{name}\0{status}", []).append(r.index)
    for key, idx in bad.items():
        name, status = key.split("\0")
        v.problems.append(f"state '{solved.name}' {_runs_text(idx)}: test {name} fails even "
                          f"with the fix: expected PASSED, observed {status}"
                          + _network_hint(runs[solved.name]))
    # per-test table
    names: list[str] = []
    for st in TERMINAL_STATES:
        for r in runs[st.name]:
            names += [n for n in (r.statuses or {}) if n not in names]
    for name in names:
        before = _statuses(runs[unsolved.name], name)
        after = _statuses(runs[solved.name], name)
        role = ("fail_to_pass" if all(not tb_passed(s) for s in before)
                and all(tb_passed(s) for s in after) else
                "pass_to_pass" if all(tb_passed(s) for s in before + after) else "other")
        v.tests[name] = {"role": role, "expected": {unsolved.name: "any", solved.name: "pass"},
                         "observed": {unsolved.name: before, solved.name: after},
                         "flaky": name in flakes,
                         "ok": name not in flakes and all(tb_passed(s) for s in after)}
    for st in TERMINAL_STATES:
        v.summary[st.name] = _state_summary(runs[st.name], tb_passed)


def _state_summary(runs: Sequence[RunResult], passed: Callable[[str | None], bool]) -> str:
    parts = []
    for r in runs:
        if r.timed_out:
            parts.append("timeout")
        elif r.statuses is None:
            parts.append("no results")
        else:
            n_pass = sum(1 for s in r.statuses.values() if passed(s))
            parts.append(f"{n_pass}/{len(r.statuses)} pass")
    return ", ".join(parts)


def _grade_run_tests(v: TaskVerdict, runs: Mapping[str, list[RunResult]]) -> None:
    """swe tasks through run-tests.sh (what Terminal-Bench runs): not resolved with only the
    test patch, resolved (every listed test passes) with the gold patch."""
    before_state, gold_state = SWE_STATES
    for r in runs[before_state.name]:
        if r.tb_ran and r.tb_statuses and all(tb_passed(s) for s in r.tb_statuses.values()):
            v.problems.append(f"state '{before_state.name}' run {r.index}: run-tests.sh (the "
                              "Terminal-Bench entry point) passes without the fix: all "
                              f"{len(r.tb_statuses)} tests passed")
    for r in runs[gold_state.name]:
        if not r.tb_ran or r.timed_out:
            continue
        if not r.tb_statuses:
            v.problems.append(f"state '{gold_state.name}' run {r.index}: run-tests.sh (the "
                              "Terminal-Bench entry point) printed no pytest summary")
            continue
        bad = sorted(n for n, s in r.tb_statuses.items() if not tb_passed(s))
        if bad:
            v.problems.append(f"state '{gold_state.name}' run {r.index}: run-tests.sh (the "
                              f"Terminal-Bench entry point): test {bad[0]} expected PASSED, "
                              f"observed {r.tb_statuses[bad[0]]}"
                              + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))


def derive_lists(before: Mapping[str, str], after: Mapping[str, str]
                 ) -> tuple[list[str], list[str]]:
    """SWE-bench's rule: FAIL_TO_PASS = fails (or is missing) with only the test patch and
    passes with the gold patch; PASS_TO_PASS = passes in both. In the gold log's order."""
    f2p = [t for t, s in after.items() if swe_passed(s) and swe_failed(before.get(t))]
    p2p = [t for t, s in after.items() if swe_passed(s) and swe_passed(before.get(t))]
    return f2p, p2p


def grade_swe(v: TaskVerdict, runs: Mapping[str, list[RunResult]], *,
              f2p: Sequence[str], p2p: Sequence[str]) -> None:
    """Check the declared (or derived) FAIL_TO_PASS / PASS_TO_PASS against what was observed."""
    before_state, gold_state = SWE_STATES
    flakes: dict[str, str] = {}
    for st in SWE_STATES:
        _run_errors(v, st, runs[st.name])
        flakes.update({k: m for k, m in find_flakes(st.name, runs[st.name]).items()
                       if k not in flakes})
    v.flaky = sorted(flakes)
    v.problems += [flakes[k] for k in v.flaky]
    if not f2p:
        v.problems.append("FAIL_TO_PASS is empty: no test shows the fix works (fix: list the "
                          "tests, or run `gen validate --derive`)")
    expect = {
        before_state.name: [(t, "fail", swe_failed) for t in f2p]
        + [(t, "pass", swe_maintained) for t in p2p],
        gold_state.name: [(t, "pass", swe_passed) for t in f2p]
        + [(t, "pass", swe_maintained) for t in p2p],
    }
    for st in SWE_STATES:
        done = [r for r in runs[st.name] if not r.timed_out]
        for r in done:
            if r.statuses is not None and not r.statuses:
                v.problems.append(_no_results(st, r) + _network_hint([r]))
        for name, want, ok in expect[st.name]:
            if name in flakes:
                continue
            wrong: dict[str, list[int]] = {}
            for r in done:
                got = (r.statuses or {}).get(name)
                if not ok(got):
                    wrong.setdefault(got or MISSING, []).append(r.index)
            for got, idx in wrong.items():
                which = "FAIL_TO_PASS" if name in f2p else "PASS_TO_PASS"
                why = ""
                if st is before_state and which == "FAIL_TO_PASS":
                    why = " (the test passes without the fix)"
                elif st is gold_state and which == "FAIL_TO_PASS":
                    why = " (the test fails even with the fix)" + _network_hint(done)
                elif which == "PASS_TO_PASS":
                    why = _network_hint(done)
                v.problems.append(f"state '{st.name}' {_runs_text(idx)}: {which} test {name}: "
                                  f"expected {'FAILED' if want == 'fail' else 'PASSED'}, "
                                  f"observed {got}{why}")
    _grade_run_tests(v, runs)
    for name in [*f2p, *p2p]:
        before = _statuses(runs[before_state.name], name)
        after = _statuses(runs[gold_state.name], name)
        role = "FAIL_TO_PASS" if name in f2p else "PASS_TO_PASS"
        ok_b = all((swe_failed if role == "FAIL_TO_PASS" else swe_maintained)(
            None if s == MISSING else s) for s in before)
        ok_a = all((swe_passed if role == "FAIL_TO_PASS" else swe_maintained)(
            None if s == MISSING else s) for s in after)
        v.tests[name] = {"role": role,
                         "expected": {before_state.name: "fail" if role == "FAIL_TO_PASS"
                                      else "pass", gold_state.name: "pass"},
                         "observed": {before_state.name: before, gold_state.name: after},
                         "flaky": name in flakes, "ok": ok_b and ok_a and name not in flakes}
    for st in SWE_STATES:
        v.summary[st.name] = _state_summary(runs[st.name], swe_passed)
