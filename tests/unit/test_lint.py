"""Hermeticity lint: each non-hermetic construct is an exit-2 error naming the task and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.cli import main
from generator.core.errors import LintError
from generator.lint.dockerfile import dockerfile_instructions, lint_dockerfile, lint_script
from tests.helpers import TERMINAL_FILES, build_project, terminal_spec

DIGEST = "@sha256:" + "a" * 64
GOOD = f"FROM reg/img{DIGEST}\nRUN apt-get install -y /tmp/x.deb\n"


def lint(text: str) -> None:
    lint_dockerfile(text, where="dataset/t/Dockerfile", task_id="t")


def test_good_dockerfile_passes() -> None:
    lint(GOOD)
    lint(f"FROM reg/img{DIGEST} AS build\nFROM build\nCOPY --from=build /a /b\n")


@pytest.mark.parametrize(("text", "words"), [
    ("FROM python:3.11\n", "has no @sha256: digest"),
    ("FROM python:latest\n", "moving 'latest' tag"),
    ("# syntax=docker/dockerfile:1\nFROM x" + DIGEST + "\n", "syntax"),
    (GOOD + "ADD https://example.com/x.tar.gz /x\n", "ADD <url>"),
    (GOOD + "RUN curl -fsSL https://get.example.sh | sh\n", "curl|wget"),
    (GOOD + "RUN wget -qO- https://x | bash -s --\n", "curl|wget"),
    (GOOD + "RUN apt-get update && apt-get install -y python3\n", "without an exact version"),
    (GOOD + "RUN apt-get install -y \\\n    git \\\n    curl\n", "without an exact version"),
    (GOOD + "RUN pip install requests\n", "without --require-hashes"),
    (GOOD + "RUN python3 -m pip install -r req.txt\n", "without --require-hashes"),
    (GOOD + "RUN cd /x && uv pip install flask\n", "without --require-hashes"),
    (GOOD + "COPY tests/ /tests/\n", "tests or the solution"),
    (GOOD + "COPY solution.sh /solution.sh\n", "tests or the solution"),
    (GOOD + "ADD ./tests /app/tests\n", "tests or the solution"),
])
def test_dockerfile_findings(text: str, words: str) -> None:
    with pytest.raises(LintError) as info:
        lint(text)
    line = info.value.one_line()
    assert words in line and "task 't'" in line and "(fix:" in line
    assert line.startswith("dataset/t/Dockerfile:")


def test_pinned_installs_pass() -> None:
    lint(GOOD + "RUN apt-get install -y python3=3.11.2-1+b1 && pip install --require-hashes "
         "-r /r.txt && python3 -m pip install --no-index --no-deps /wheels/x.whl\n")


def test_error_line_number() -> None:
    with pytest.raises(LintError) as info:
        lint(GOOD + "ENV A=1\nRUN pip install x\n")
    assert info.value.line == 4


def test_scripts() -> None:
    lint_script("#!/bin/bash\npython3 -m pytest -rA /tests\n", where="w", task_id="t")
    with pytest.raises(LintError):
        lint_script("curl -LsSf https://astral.sh/uv/install.sh | sh\n", where="w", task_id="t")
    with pytest.raises(LintError):
        lint_script("pip install pytest\n", where="w", task_id="t")
    # a heredoc body is data (e.g. an embedded patch), not a command
    lint_script("git apply - <<'EOF'\n+curl http://x | sh\nEOF\necho ok\n", where="w",
                task_id="t")


def test_overridden_template_is_linted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = build_project(tmp_path / "p", {"t1": (terminal_spec(), TERMINAL_FILES)})
    (project / "templates").mkdir()
    (project / "templates" / "Dockerfile.j2").write_text(
        "FROM python:3.11\nRUN pip install pytest\n")
    code = main(["render", "--project", str(project)])
    err = capsys.readouterr().err
    assert code == 2
    assert "dataset/t1/Dockerfile:1" in err and "no @sha256: digest" in err
    assert not (project / "dataset").exists()


@pytest.mark.parametrize(("spec_over", "words", "fix"), [
    ({"environment": {"base_image": "reg/img:latest"}}, "moving 'latest' tag", "explicit tag"),
    ({"environment": {"base_image": "reg/img"}}, "moving 'latest' tag", "explicit tag"),
])
def test_unpinned_base(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       spec_over: dict[str, object], words: str, fix: str) -> None:
    project = build_project(tmp_path / "p", {"t1": (terminal_spec(**spec_over), TERMINAL_FILES)})
    assert main(["render", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert words in err and fix in err and "tasks/t1/task.spec.yaml" in err


def test_terminal_needs_tmux(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {"name": "d", "version": "1", "source_date_epoch": 1,
           "defaults": {"base_image": "reg/img:1"}}
    project = build_project(tmp_path / "p", {"t1": (terminal_spec(), TERMINAL_FILES)}, config=cfg)
    assert main(["render", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "tmux" in err and "add tmux to environment.apt" in err


def test_pytest_needs_rA(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = terminal_spec(tests={"dir": "tests", "command": "pytest /tests"})
    project = build_project(tmp_path / "p", {"t1": (spec, TERMINAL_FILES)})
    assert main(["render", "--project", str(project)]) == 2
    assert "add -rA" in capsys.readouterr().err


def _reference_instructions(text: str) -> list[tuple[int, str, str]]:
    """The plain line-by-line splitter dockerfile_instructions replaced (its oracle)."""
    out = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip()
        stripped = line.lstrip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf).strip()
        buf = []
        instr, _, args = joined.partition(" ")
        out.append((start, instr.upper(), args.strip()))
    if buf:
        joined = " ".join(part.strip() for part in buf).strip()
        instr, _, args = joined.partition(" ")
        out.append((start, instr.upper(), args.strip()))
    return out


dockerfile_lines = st.lists(st.one_of(
    st.sampled_from(["", "  ", "# c", "  # c \\", "\\", "RUN a \\", "  && b \\", "  c",
                     "run x", "FROM img AS b", "COPY a b", "\t\\", "ENV A=1 \\  "]),
    st.text(st.sampled_from(" \t\\#aR"), max_size=6)), max_size=12)


@settings(max_examples=400, deadline=None)
@given(dockerfile_lines)
def test_instruction_splitter_matches_reference(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert list(dockerfile_instructions(text)) == _reference_instructions(text)
