"""The docs cannot drift from the code: docs/commands.md is generated from gen's parsers and must
be current (every subcommand, every option, its help), every subcommand is in the README's
commands table, and every relative link in the docs points at a file (and heading) that exists.

After changing a parser, regenerate docs/commands.md:

    GEN_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/unit/test_docs.py
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
COMMANDS_MD = REPO / "docs" / "commands.md"
PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "BUILD.md",
         *sorted((REPO / "docs").glob("*.md"))]


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in sorted(action.choices.items()):
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(the option strings or the positional's name, its help) of every argument."""
    formatter = parser._get_formatter()
    out = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or \
                action.help == argparse.SUPPRESS:
            continue
        names = ", ".join(f"`{s}`" for s in action.option_strings) or \
            f"`{action.metavar or action.dest}`"
        text = formatter._expand_help(action) if action.help else ""
        out.append((names, " ".join(text.split()).replace("|", "\\|")))
    return out


def render_commands() -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps usage to the terminal: fix it
    try:
        root = build_parser()
        lines = ["# Every command and option", "",
                 "Generated from gen's argparse parsers by tests/unit/test_docs.py (see its",
                 "docstring to regenerate); the test fails when this page and the parsers differ.",
                 "Every command also takes `--project DIR`, `--json` and `-v` where listed.", ""]
        for path, sub in _subcommands(root):
            if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions) and \
                    not _options(sub):
                lines += [f"## gen {' '.join(path)}", "", (sub.description or "").strip(), ""]
                continue
            lines += [f"## gen {' '.join(path)}", ""]
            if sub.description:
                lines += [" ".join(sub.description.split()), ""]
            usage = sub.format_usage().strip().removeprefix("usage: ")
            lines += ["```", usage, "```", "", "| option | meaning |", "| --- | --- |"]
            lines += [f"| {n} | {h} |" for n, h in _options(sub)]
            lines.append("")
        return "\n".join(lines).rstrip("\n") + "\n"
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def test_commands_page_is_generated_from_the_parsers() -> None:
    want = render_commands()
    if os.environ.get("GEN_UPDATE_DOCS") == "1":
        COMMANDS_MD.write_text(want)
    assert COMMANDS_MD.read_text() == want, \
        "docs/commands.md differs from the parsers: regenerate it (see this file's docstring)"


def test_every_option_of_every_subcommand_is_documented() -> None:
    text = COMMANDS_MD.read_text()
    missing = []
    for path, sub in _subcommands(build_parser()):
        section = text.split(f"\n## gen {' '.join(path)}\n", 1)
        if len(section) != 2:
            missing.append(f"gen {' '.join(path)}")
            continue
        body = section[1].split("\n## ", 1)[0]
        for action in sub._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help") and f"`{opt}`" not in body:
                    missing.append(f"gen {' '.join(path)} {opt}")
    assert not missing, missing


def test_every_subcommand_is_in_the_readme_table() -> None:
    readme = (REPO / "README.md").read_text()
    top = sorted({path[0] for path, _ in _subcommands(build_parser())})
    absent = [c for c in top if f"`gen {c}" not in readme]
    assert not absent, absent


def _slug(heading: str) -> str:
    text = heading.strip().lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    out, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(_slug(line))
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            bad.append(target)
    assert not bad, bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_module_paths_named_in_the_docs_exist(page: Path) -> None:
    pattern = (r"(?<![\w./])((?:generator|scripts|bench"
               r"|tests/(?:unit|integration|consumers|validate|release|data))/[\w./-]*\w)")
    named = set(re.findall(pattern, page.read_text()))
    missing = sorted(p for p in named if not (REPO / p).exists() and "<" not in p)
    assert not missing, missing
