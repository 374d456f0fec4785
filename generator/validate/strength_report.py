"""The strength report (`.gen/validate/strength.json` and `strength.txt`) and its gate.

Per task:
- **fix coverage**: of the executable lines the fix added or changed, those a fix test ran
  (swe: a FAIL_TO_PASS test; terminal: any test), as covered / total; a line run only at
  import (module level) counts, and is shown as such. Per line: which tests ran it.
- **mutation score**: killed / (killed + survived), timed-out mutants counted as killed and
  equivalent-suspects left out (they may be right fixes written differently); not-applicable
  mutants are listed, never scored.
- **survivors**: each as its diff, where the mutated line is, the tests that run that line and
  the test command that would have to fail.

The gate (gen.yaml `strength:`): a task below `min_fix_coverage` or `min_mutation_score` fails,
with the survivors named; a figure that cannot be measured is reported as such (and why), not
gated. `gen release` refuses a failed or unmeasured task unless `--allow weak-tests`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generator.spec.model import StrengthConfig
from generator.validate.strength import (
    EQUIVALENT,
    KILLED,
    NOT_APPLICABLE,
    SURVIVED,
    TIMED_OUT,
    MutantResult,
    StrengthResult,
    log_name,
)

__all__ = ["fix_coverage", "gate", "mutation_score", "report_json", "task_json", "text_lines"]

IMPORT = ""  # the coverage context of code run at import / collection, before any test


def fix_coverage(res: StrengthResult) -> tuple[int, int] | None:
    """(covered, executable) changed lines; None when coverage was not measured."""
    if res.coverage_reason is not None or not res.lines:
        return None
    fix = set(res.fix_tests)
    covered = total = 0
    for lines in res.lines.values():
        for tests in lines.values():
            total += 1
            if any(t == IMPORT or not fix or log_name(t) in fix for t in tests):
                covered += 1
    return covered, total


def mutation_score(res: StrengthResult) -> float | None:
    killed = sum(1 for m in res.mutants if m.status in (KILLED, TIMED_OUT))
    survived = sum(1 for m in res.mutants if m.status == SURVIVED)
    return None if killed + survived == 0 else killed / (killed + survived)


def _counts(res: StrengthResult) -> dict[str, int]:
    out = dict.fromkeys((KILLED, SURVIVED, TIMED_OUT, EQUIVALENT, NOT_APPLICABLE), 0)
    for m in res.mutants:
        out[m.status] += 1
    return out


def gate(res: StrengthResult, cfg: StrengthConfig | None) -> list[str]:
    """The task's strength problems: the harness failing, or a figure below its threshold."""
    problems = [f"strength: {p}" for p in res.problems]
    if cfg is None:
        return problems
    cov = fix_coverage(res)
    if cfg.min_fix_coverage is not None and cov is not None and cov[1] and \
            cov[0] / cov[1] < cfg.min_fix_coverage:
        missed = [f"{p}:{ln}" for p, lines in sorted(res.lines.items())
                  for ln, tests in sorted(lines.items())
                  if not any(t == IMPORT or not res.fix_tests or log_name(t) in res.fix_tests
                             for t in tests)]
        problems.append(f"strength: fix coverage {cov[0]}/{cov[1]} is below min_fix_coverage "
                        f"{cfg.min_fix_coverage:g} (not run by a fix test: "
                        f"{', '.join(missed[:5])})")
    score = mutation_score(res)
    if cfg.min_mutation_score is not None and score is not None and \
            score < cfg.min_mutation_score:
        surv = [m.mutant for m in res.mutants if m.status == SURVIVED]
        problems.append(f"strength: mutation score {score:.2f} is below min_mutation_score "
                        f"{cfg.min_mutation_score:g}: {len(surv)} surviving mutant(s) "
                        + ", ".join(f"{m.id} ({m.path}:{m.line} {m.description})"
                                    for m in surv[:5]))
    return problems


def _where(res: StrengthResult, m: MutantResult) -> dict[str, Any]:
    """What an author needs to kill a survivor: the tests that run its line, the command."""
    tests = res.lines.get(m.mutant.path, {}).get(m.mutant.line, [])
    fix = set(res.fix_tests)
    runs = [t or "(at import)" for t in tests]
    cd = f"cd {res.workdir} && " if res.workdir else ""
    return {"file": m.mutant.path, "line": m.mutant.line,
            "tests_running_line": runs[:20], "tests_running_line_count": len(runs),
            "fix_tests_running_line": sorted(t for t in tests if log_name(t) in fix),
            "must_fail": f"{cd}{res.test_command}",
            "graded": "FAIL_TO_PASS + PASS_TO_PASS" if res.kind == "swe" else "every test"}


def task_json(res: StrengthResult, cfg: StrengthConfig | None) -> dict[str, Any]:
    cov = fix_coverage(res)
    score = mutation_score(res)
    problems = gate(res, cfg)
    survivors = [{**m.to_json(), "where": _where(res, m)}
                 for m in res.mutants if m.status == SURVIVED]
    return {
        "ok": not problems, "problems": problems, "kind": res.kind,
        "fix_coverage": None if cov is None else {
            "covered": cov[0], "total": cov[1],
            "fraction": round(cov[0] / cov[1], 4) if cov[1] else None,
            "by": "FAIL_TO_PASS" if res.kind == "swe" else "all tests"},
        "coverage_unmeasured": res.coverage_reason,
        "coverage_version": res.coverage_version,
        "lines": {p: {str(ln): [t or "(at import)" for t in tests]
                      for ln, tests in lines.items()} for p, lines in sorted(res.lines.items())},
        "not_python": res.not_python,
        "mutation_score": None if score is None else round(score, 4),
        "mutants": {"generated": res.generated, "run": len(res.mutants), **_counts(res)},
        "survivors": survivors,
        "mutant_results": [m.to_json() for m in res.mutants],
        "notes": res.notes, "seconds": round(res.seconds, 3),
        "coverage_seconds": round(res.coverage_seconds, 3),
        "plain_seconds": round(res.plain_seconds, 3),
        "mutant_seconds": round(res.mutant_seconds, 3),
    }


def report_json(results: Sequence[tuple[StrengthResult, str]], cfg: StrengthConfig | None, *,
                seed: int, max_mutants: int | None, jobs: int,
                seconds: float) -> dict[str, Any]:
    """The whole report; `results` pairs each task's result with its image reference."""
    tasks = {r.task: {**task_json(r, cfg), "image": image} for r, image in results}
    return {
        "ok": all(t["ok"] for t in tasks.values()), "seed": seed, "max_mutants": max_mutants,
        "jobs": jobs, "seconds": round(seconds, 3),
        "thresholds": None if cfg is None else {"min_fix_coverage": cfg.min_fix_coverage,
                                                "min_mutation_score": cfg.min_mutation_score},
        "tasks": tasks,
    }


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line for line in text.rstrip("\n").splitlines()]


def text_lines(report: dict[str, Any], *, verbose: bool = False) -> list[str]:
    """The report for people: one block per task, every survivor with its diff, the changed
    lines no test runs (every changed line and its tests with `verbose`)."""
    out: list[str] = []
    for task, t in sorted(report["tasks"].items()):
        cov = t["fix_coverage"]
        cov_text = (f"{cov['covered']}/{cov['total']} changed lines run by {cov['by']}"
                    if cov else f"not measured ({t['coverage_unmeasured'] or 'no lines'})")
        score = t["mutation_score"]
        n = t["mutants"]
        score_text = "n/a (no mutant killed or survived)" if score is None else f"{score:.2f}"
        out.append(f"{'ok    ' if t['ok'] else 'FAILED'}  {task} [{t['kind']}] fix coverage: "
                   f"{cov_text}; mutation score: {score_text} ({n['killed']} killed, "
                   f"{n['timed_out']} timed out, {n['survived']} survived, "
                   f"{n['equivalent_suspect']} equivalent-suspect, {n['not_applicable']} not "
                   f"applicable; {n['run']} of {n['generated']} generated) ({t['seconds']:.1f}s)")
        out += [f"    - {p}" for p in t["problems"]]
        out += [f"    note: {x}" for x in t["notes"]]
        for path, lines in t["lines"].items():
            for ln, tests in lines.items():
                if tests and not verbose:
                    continue
                shown = ", ".join(tests[:3]) + (f" (+{len(tests) - 3})" if len(tests) > 3
                                                 else "")
                out.append(f"    line {path}:{ln}: {shown or 'run by no test'}")
        for s in t["survivors"]:
            w = s["where"]
            out.append(f"    survivor {s['id']} [{s['operator']}] {w['file']}:{w['line']}: "
                       f"{s['description']}")
            out += _indent(s["diff"], "        ")
            fix = w["fix_tests_running_line"]
            others = [x for x in w["tests_running_line"] if x not in fix]
            runs = ", ".join([*fix, *others][:3]) or "no test"
            out.append(f"      runs this line: {runs}"
                       + (f" (+{w['tests_running_line_count'] - 3})"
                          if w["tests_running_line_count"] > 3 else ""))
            if s["ungraded_tests_failing"]:
                out.append("      fails with this mutant but is not graded (listing it in "
                           "PASS_TO_PASS kills it): "
                           + ", ".join(s["ungraded_tests_failing"][:3]))
            out.append(f"      must fail ({w['graded']}), with the fix and this mutant: "
                       f"{w['must_fail']}")
        for m in t["mutant_results"]:
            if m["status"] == NOT_APPLICABLE:
                out.append(f"    not applicable {m['id']} {m['path']}:{m['line']}: {m['detail']}")
    return out
