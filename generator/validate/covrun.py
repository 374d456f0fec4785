"""Runs inside a task's container (`gen validate --strength`): the task's pytest call under
coverage.py, with one coverage context per test, and prints what it saw as one line.

It is copied in at test time with coverage.py (the locked wheel, unpacked on the host) and
imports nothing else of gen; it needs Python >= 3.7 and the image's own pytest. Modes:

- `snapshot OUT ROOT...`: the text of every .py file under the roots (what the solution may
  change: the terminal task's work dir), written to OUT as JSON;
- `run CONFIG`: pytest with the config's arguments in its work dir; with `measure`, under
  coverage.py restricted to `include` (or to the .py files that differ from a snapshot),
  traced while the tests' code can run (conftests, collection, each test's setup to
  teardown: see _plugin), each test its own context (its node id; subprocesses inherit it
  through GEN_COV_CONTEXT and a sitecustomize in the coverage dir, so a CLI the tests run
  is measured too). Prints
  `GEN-STRENGTH-RESULT <base64 of zlib'd JSON>`: per test its outcome, per measured file its
  executed and missing lines, the tests that ran each line ("" = at import/collection) and
  its text.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

MARK = "GEN-STRENGTH-RESULT "
CONTEXT_ENV = "GEN_COV_CONTEXT"

SITECUSTOMIZE = '''\
import os
if os.environ.get("COVERAGE_PROCESS_START"):
    try:
        import coverage
        _gen_cov = coverage.process_startup()
        _gen_ctx = os.environ.get("GEN_COV_CONTEXT")
        if _gen_cov is not None and _gen_ctx:
            _gen_cov.switch_context(_gen_ctx)
    except Exception:
        pass
'''


def _py_files(roots: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for root in roots:
        if os.path.isfile(root) and root.endswith(".py"):
            paths = [root]
        else:
            paths = []
            for d, dirs, files in os.walk(root):
                dirs[:] = sorted(x for x in dirs if x not in ("__pycache__", ".git"))
                paths += [os.path.join(d, f) for f in sorted(files) if f.endswith(".py")]
        for p in paths:
            try:
                with open(p, encoding="utf-8") as fh:
                    out[p] = fh.read()
            except (OSError, UnicodeDecodeError):
                continue
    return out


def snapshot(out: str, roots: list[str]) -> int:
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(_py_files(roots), fh)
    return 0


def _plugin(pytest: Any, cov: Any) -> Any:
    """Per test: its coverage context, and its outcome (failed if any phase failed).

    Under coverage.py, tracing is on only while the tests' own code can run: the initial
    conftests' loading, collection (the test modules and what they import), and each test
    from its setup to its teardown. pytest's start-up, the reporting between tests and the
    summary are not traced (on CPython < 3.12 tracing slows every call it sees)."""

    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = pytest.hookimpl(
        hookwrapper=True, tryfirst=True)

    class Plugin:
        def __init__(self) -> None:
            self.outcomes: dict[str, str] = {}

        def _traced(self) -> Any:
            if cov is not None:
                cov.start()
            yield
            if cov is not None:
                cov.stop()

        @wrap
        def pytest_load_initial_conftests(self) -> Any:
            yield from self._traced()

        @wrap
        def pytest_collection(self) -> Any:
            yield from self._traced()

        @wrap
        def pytest_runtest_setup(self, item: Any) -> Any:
            os.environ[CONTEXT_ENV] = item.nodeid
            if cov is not None:
                cov.start()
                cov.switch_context(item.nodeid)
            yield

        @wrap
        def pytest_runtest_teardown(self, item: Any) -> Any:
            yield
            if cov is not None:
                cov.switch_context("")
                cov.stop()
            os.environ.pop(CONTEXT_ENV, None)

        def pytest_runtest_logreport(self, report: Any) -> None:
            have = self.outcomes.get(report.nodeid)
            if report.failed:
                self.outcomes[report.nodeid] = "failed"
            elif report.skipped and have is None:
                self.outcomes[report.nodeid] = "skipped"
            elif report.when == "call" and report.passed and have in (None, "passed"):
                self.outcomes[report.nodeid] = "passed"

    return Plugin()


def _rcfile(cfg: dict[str, Any], include: list[str]) -> str:
    data = os.path.join(cfg["data_dir"], ".coverage")
    path = os.path.join(cfg["data_dir"], "coveragerc")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"[run]\nparallel = true\ndata_file = {data}\n")
        fh.write("include =\n" + "".join(f"    {p}\n" for p in include))
    return path


def run(config_path: str) -> int:
    with open(config_path, encoding="utf-8") as fh:
        cfg: dict[str, Any] = json.load(fh)
    t_start = time.monotonic()
    os.makedirs(cfg["data_dir"], exist_ok=True)
    include = list(cfg.get("include") or [])
    before: dict[str, str] = {}
    if cfg.get("snapshot"):
        with open(cfg["snapshot"], encoding="utf-8") as fh:
            before = json.load(fh)
        now = _py_files(list(cfg.get("roots") or []))
        include = sorted(p for p, text in now.items() if before.get(p) != text)
    measure = bool(cfg.get("measure", True)) and bool(include)
    cov = None
    if measure:
        sys.path.insert(0, cfg["lib"])
        rc = _rcfile(cfg, include)
        os.environ["COVERAGE_PROCESS_START"] = rc
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [cfg["lib"]] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        coverage = importlib.import_module("coverage")
        # in memory: switching contexts flushes the data, once per test (subprocesses write
        # their own files, combined below)
        cov = coverage.Coverage(data_file=None, config_file=rc)
    os.chdir(cfg["workdir"])
    pytest = importlib.import_module("pytest")
    plugin = _plugin(pytest, cov)
    t0 = time.monotonic()
    code = pytest.main(list(cfg["pytest_args"]), plugins=[plugin]) \
        if cfg.get("run_tests", True) else 0
    test_seconds = time.monotonic() - t0
    files: dict[str, Any] = {}
    version = ""
    if cov is not None:
        coverage = importlib.import_module("coverage")
        version = coverage.__version__
        combined = coverage.Coverage(config_file=os.environ["COVERAGE_PROCESS_START"])
        if any(n.startswith(".coverage.") for n in os.listdir(cfg["data_dir"])):
            combined.combine([cfg["data_dir"]], keep=False)  # the tests' subprocesses
        data = combined.get_data()
        data.update(cov.get_data())
        wanted = cfg.get("lines") or {}
        for path in include:
            try:
                _, statements, _, missing, _ = combined.analysis2(path)
            except Exception as exc:  # not importable Python, never imported, ...
                files[path] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            executed = sorted(set(statements) - set(missing))
            only = set(wanted.get(path) or executed)
            contexts = {str(line): sorted(set(ids)) for line, ids in
                        (data.contexts_by_lineno(path) or {}).items() if line in only}
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            files[path] = {"executed": executed, "missing": sorted(missing),
                           "contexts": contexts, "text": text, "before": before.get(path),
                           "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    if cov is None:  # the fixed files' text only (the mutants are made from it)
        for path in include:
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as exc:
                files[path] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            files[path] = {"text": text, "before": before.get(path),
                           "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    result = {"exit_code": int(code), "outcomes": plugin.outcomes, "files": files,
              "measured": cov is not None, "coverage_version": version,
              "test_seconds": round(test_seconds, 4),
              "total_seconds": round(time.monotonic() - t_start, 4)}
    blob = base64.b64encode(zlib.compress(json.dumps(result, sort_keys=True).encode("utf-8")))
    sys.stdout.write("\n" + MARK + blob.decode("ascii") + "\n")
    sys.stdout.flush()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "snapshot":
        return snapshot(argv[1], argv[2:])
    if len(argv) == 2 and argv[0] == "run":
        return run(argv[1])
    sys.stderr.write("usage: covrun.py snapshot OUT ROOT... | run CONFIG\n")
    return 2


def parse_result(output: str) -> dict[str, Any] | None:
    """The runner's result from the step's output (host side); None when it printed none."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARK):
            got: dict[str, Any] = json.loads(zlib.decompress(base64.b64decode(line[len(MARK):])))
            return got
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
