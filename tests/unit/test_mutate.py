"""Mutants of a fix's changed lines: exactly the expected ones on a hand-checked example, and on
random modules only changed lines differ, the line count is kept, each compiles, the diff
applies (in Python and with git), ids are unique and everything is deterministic."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.core import proc
from generator.validate.mutate import (
    OPERATORS,
    FileChange,
    Mutant,
    apply_diff,
    changed_lines,
    changed_lines_from_patch,
    generate,
    select,
)

INFLECTION = '''import re


def humanize(word: str) -> str:
    """Doc."""
    word = word.lstrip('_')
    word = re.sub(r"_id$", "", word)
    word = word.replace('_', ' ')
    return word
'''
RE_SUB_LINE = 7


def _git(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd), GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")
    result = proc.run(["git", *args], what=f"git {args[0]} in a test repo", cwd=cwd, env=env)
    return str(result.stdout)


def _differing(a: str, b: str) -> list[int]:
    la, lb = a.split("\n"), b.split("\n")
    assert len(la) == len(lb)
    return [k + 1 for k in range(len(la)) if la[k] != lb[k]]


# --------------------------------------------------------------------------- the inflection fix

def test_inflection_fix_mutants_are_exactly_these() -> None:
    assert INFLECTION.splitlines()[RE_SUB_LINE - 1] == '    word = re.sub(r"_id$", "", word)'
    change = FileChange("inflection/__init__.py", INFLECTION, frozenset({RE_SUB_LINE}))
    mutants, notes = generate([change])
    assert notes == []
    assert len(mutants) == 7
    assert {(m.operator, m.mutated) for m in mutants} == {
        ("constant", "word = re.sub('', \"\", word)"),
        ("constant", "word = re.sub('XX_id$XX', \"\", word)"),
        ("constant", "word = re.sub(r\"_id$\", 'XX', word)"),
        ("args", "word = re.sub('', '_id$', word)"),
        ("args", "word = re.sub('_id$', word, '')"),
        ("remove", "pass"),
        ("return", "return None"),
    }
    assert [(m.line, m.col, m.operator) for m in mutants] == [
        (7, 4, "remove"), (7, 4, "return"), (7, 11, "args"), (7, 11, "args"),
        (7, 18, "constant"), (7, 18, "constant"), (7, 27, "constant")]
    assert [m.description for m in mutants] == [
        "statement removed (pass)", "returns early (return None)",
        "arguments 1 and 2 swapped", "arguments 2 and 3 swapped",
        "'_id$' -> ''", "'_id$' -> 'XX_id$XX'", "'' -> 'XX'"]
    for m in mutants:
        assert m.path == "inflection/__init__.py"
        assert m.original == 'word = re.sub(r"_id$", "", word)'
        assert m.id.startswith("m") and len(m.id) == 11
        assert _differing(INFLECTION, m.text) == [RE_SUB_LINE]
        assert m.text.split("\n")[RE_SUB_LINE - 1] == "    " + m.mutated
    remove = mutants[0]
    assert remove.diff == (
        "diff --git a/inflection/__init__.py b/inflection/__init__.py\n"
        "--- a/inflection/__init__.py\n"
        "+++ b/inflection/__init__.py\n"
        "@@ -4,6 +4,6 @@\n"
        " def humanize(word: str) -> str:\n"
        '     """Doc."""\n'
        "     word = word.lstrip('_')\n"
        '-    word = re.sub(r"_id$", "", word)\n'
        "+    pass\n"
        "     word = word.replace('_', ' ')\n"
        "     return word\n")
    # the ids are stable: the same inputs give the same ids, another path other ids
    again, _ = generate([change])
    assert [m.id for m in again] == [m.id for m in mutants]
    moved, _ = generate([FileChange("other.py", INFLECTION, frozenset({RE_SUB_LINE}))])
    assert not {m.id for m in moved} & {m.id for m in mutants}


def test_the_diffs_apply_with_git_and_patch(tmp_path: Path) -> None:
    change = FileChange("inflection/__init__.py", INFLECTION, frozenset({RE_SUB_LINE}))
    mutants, _ = generate([change])
    _git(["init", "-q"], tmp_path)
    target = tmp_path / "inflection" / "__init__.py"
    target.parent.mkdir()
    target.write_text(INFLECTION, encoding="utf-8")
    for m in mutants:
        patch = tmp_path / f"{m.id}.diff"
        patch.write_text(m.diff, encoding="utf-8")
        _git(["apply", "--check", str(patch)], tmp_path)
    first = mutants[2]
    _git(["apply", str(tmp_path / f"{first.id}.diff")], tmp_path)
    assert target.read_text(encoding="utf-8") == first.text
    target.write_text(INFLECTION, encoding="utf-8")
    proc.run(["patch", "-s", "-p1", "-i", str(tmp_path / f"{first.id}.diff")],
             what="apply a mutant with patch", cwd=tmp_path)
    assert target.read_text(encoding="utf-8") == first.text


def test_unusual_paths_apply_with_git_and_patch(tmp_path: Path) -> None:
    path = "sp ace/\u00e9 x.py"  # git quotes it and puts a tab after it, as GNU patch needs
    after = "def f(a):\n    return a == 1\n"
    mutants, _ = generate([FileChange(path, after, frozenset({2}))])
    assert mutants[0].diff.startswith('diff --git "a/sp ace/\\303\\251 x.py" '
                                      '"b/sp ace/\\303\\251 x.py"\n--- "a/sp ace/')
    assert changed_lines_from_patch(mutants[0].diff) == {path: frozenset({2})}
    _git(["init", "-q"], tmp_path)
    (tmp_path / "sp ace").mkdir()
    for m in mutants:
        (tmp_path / path).write_text(after, encoding="utf-8")
        (tmp_path / "p.diff").write_text(m.diff, encoding="utf-8")
        _git(["apply", "--check", "p.diff"], tmp_path)
        proc.run(["patch", "-s", "-p1", "-i", "p.diff"], what="apply a mutant with patch",
                 cwd=tmp_path)
        assert (tmp_path / path).read_text(encoding="utf-8") == m.text


def test_a_last_line_without_newline_diffs_and_applies(tmp_path: Path) -> None:
    after = "def f(x):\n    return x + 1"
    mutants, _ = generate([FileChange("m.py", after, frozenset({2}))])
    assert {m.mutated for m in mutants} >= {"return x - 1", "return x + 2", "pass"}
    for m in mutants:
        assert m.diff.endswith("\\ No newline at end of file\n")
        assert apply_diff(after, m.diff) == m.text
        assert not m.text.endswith("\n")
    _git(["init", "-q"], tmp_path)
    (tmp_path / "m.py").write_text(after, encoding="utf-8")
    (tmp_path / "p.diff").write_text(mutants[0].diff, encoding="utf-8")
    _git(["apply", "p.diff"], tmp_path)
    assert (tmp_path / "m.py").read_text(encoding="utf-8") == mutants[0].text


# --------------------------------------------------------------------------- operators

def _mutated(source: str, changed: set[int] | None = None) -> set[tuple[str, str]]:
    lines = frozenset(changed or range(1, source.count("\n") + 2))
    return {(m.operator, m.mutated) for m in generate([FileChange("x.py", source, lines)])[0]}


def test_each_operator() -> None:
    got = _mutated("def f(a, b):\n    if a == b and not a:\n        a += 2 ** b\n"
                   "    while a in b: break\n    return [v for v in b if v] or a is b\n")
    expected = {
        ("compare", "if a != b and not a:"), ("boolop", "if a == b or not a:"),
        ("boolop", "if a == b and a:"), ("branch", "if True:"), ("branch", "if False:"),
        ("binop", "a -= 2 ** b"), ("binop", "a += 2 * b"), ("constant", "a += 3 ** b"),
        ("constant", "a += 1 ** b"), ("remove", "pass"),
        ("compare", "while a not in b: break"), ("branch", "while True: break"),
        ("branch", "while False: break"), ("remove", "while a in b: pass"),
        ("boolop", "return [v for v in b if v] and a is b"),
        ("compare", "return [v for v in b if v] or a is not b"),
        ("branch", "return [v for v in b if True] or a is b"),
        ("branch", "return [v for v in b if False] or a is b"),
    }
    assert expected <= got
    assert ("return", "return None") not in got  # `return` is never replaced by itself
    assert {op for op, _ in got} == set(OPERATORS) - {"args", "return"}
    assert ("return", "return None") in _mutated("def f(a):\n    a = 1\n    return a\n", {2})
    assert _mutated("def g(a):\n    a = 1\n    yield a\n", {2}) == {
        ("remove", "pass"), ("constant", "a = 2"), ("constant", "a = 0")}


def test_constants() -> None:
    got = _mutated("v = (True, b'q', '', 2.5, None, ..., 1j)\n")
    assert {m for op, m in got if op == "constant"} == {
        "v = (False, b'q', '', 2.5, None, ..., 1j)",
        "v = (True, b'', '', 2.5, None, ..., 1j)",
        "v = (True, b'XXqXX', '', 2.5, None, ..., 1j)",
        "v = (True, b'q', 'XX', 2.5, None, ..., 1j)",
        "v = (True, b'q', '', 3.5, None, ..., 1j)",
        "v = (True, b'q', '', 1.5, None, ..., 1j)"}
    mutants, _ = generate([FileChange("c.py", f"s = '{'a' * 60}'\n", frozenset({1}))])
    assert mutants[1].description == "'aaaaaaaaaaaa...aaaaaaaaaaaaa' -> ''"


def test_precedence_is_kept_with_parentheses() -> None:
    got = _mutated("x = not (a or b) and c\ny = 0 ** 2\nz = a / b ** 2\n")
    assert ("boolop", "x = (a or b) and c") in got
    assert ("constant", "y = (-1) ** 2") in got
    assert ("binop", "z = a / (b * 2)") in got


def test_skipped_nodes() -> None:
    """Docstrings, annotations and f-string innards are never mutated (the default value of an
    annotated argument is)."""
    source = ('"""Module doc."""\n'
              "def f(x: int = 1) -> 'int':\n"
              '    "doc"\n'
              "    y: list[int] = [x]\n"
              '    return f"{x == 1}" + "s"\n')
    mutants, _ = generate([FileChange("x.py", source, frozenset(range(1, 6)))])
    assert [(m.line, m.operator, m.mutated) for m in mutants] == [
        (2, "constant", "def f(x: int = 2) -> 'int':"),
        (2, "constant", "def f(x: int = 0) -> 'int':"),
        (4, "remove", "pass"),
        (4, "return", "return None"),
        (5, "remove", "pass"),
        (5, "binop", "return f'{x == 1}' - 's'"),
        (5, "constant", "return f\"{x == 1}\" + ''"),
        (5, "constant", "return f\"{x == 1}\" + 'XXsXX'"),
    ]


def test_unicode_columns_and_statements_sharing_a_line() -> None:
    source = "s = 'é€'; t = 1 == 2  # ünïcode\n"
    mutants, _ = generate([FileChange("u.py", source, frozenset({1}))])
    by_text = {m.mutated: m for m in mutants}
    m = by_text["s = 'é€'; t = 1 != 2  # ünïcode"]
    assert m.col == 14 and m.operator == "compare"
    assert "s = 'é€'; pass  # ünïcode" in by_text
    assert "s = ''; t = 1 == 2  # ünïcode" in by_text


def test_duplicates_are_dropped_keeping_the_first() -> None:
    mutants, _ = generate([FileChange("d.py", "y = not not x\n", frozenset({1}))])
    assert [(m.operator, m.col, m.mutated) for m in mutants] == [
        ("remove", 0, "pass"), ("boolop", 4, "y = not x")]


def test_only_changed_lines_and_notes() -> None:
    source = "a = 1\nb = 2\n"
    assert _mutated(source, {2}) == {("constant", "b = 3"), ("constant", "b = 1"),
                                     ("remove", "pass")}
    mutants, notes = generate([
        FileChange("README.md", "x = 1\n", frozenset({1})),
        FileChange("bad.py", "x = 1\ndef (:\n", frozenset({1})),
        FileChange("empty.py", "import os\n\n# c\n", frozenset({1, 2, 3})),
        FileChange("none.py", "x = 1\n", frozenset()),
        FileChange("ok.py", "x = 1\nwhile x:\n    pass\n", frozenset({2})),
    ])
    assert notes == [
        "README.md: not Python source: no mutants",
        "bad.py: not Python (SyntaxError at line 2): no mutants",
        "empty.py: none of the 3 changed lines holds a mutable expression or statement",
        "none.py: no added or changed lines: no mutants",
    ]
    assert {m.mutated for m in mutants} == {"while True:", "while False:"}
    assert {m.path for m in mutants} == {"ok.py"}


def test_multi_line_nodes_are_left_alone() -> None:
    source = "x = f(1,\n      2)\ny = (a ==\n     b)\n"
    assert _mutated(source, {1}) == {("constant", "x = f(2,"), ("constant", "x = f(0,")}


def test_select_is_a_seeded_ordered_sample() -> None:
    mutants, _ = generate([FileChange("x.py", INFLECTION, frozenset(range(1, 10)))])
    assert len(mutants) > 10
    assert select(mutants, seed=1, max_mutants=None) == mutants
    assert select(mutants, seed=1, max_mutants=len(mutants) + 5) == mutants
    some = select(mutants, seed=7, max_mutants=5)
    assert some == select(mutants, seed=7, max_mutants=5) and len(some) == 5
    assert [mutants.index(m) for m in some] == sorted(mutants.index(m) for m in some)
    assert select(mutants, seed=1, max_mutants=0) == []
    with pytest.raises(ValueError):
        select(mutants, seed=1, max_mutants=-1)


def test_apply_diff_names_the_hunk_that_does_not_match() -> None:
    mutants, _ = generate([FileChange("x.py", INFLECTION, frozenset({RE_SUB_LINE}))])
    with pytest.raises(ValueError, match="hunk 1"):
        apply_diff(INFLECTION.replace("lstrip('_')", "lstrip('-')"), mutants[0].diff)
    with pytest.raises(ValueError, match="hunk 1"):
        apply_diff("x = 1\n", mutants[0].diff)


# --------------------------------------------------------------------------- changed lines

def test_changed_lines() -> None:
    assert changed_lines(None, "a\nb\n") == {1, 2}
    assert changed_lines(None, "") == frozenset()
    assert changed_lines("a\nb\nc\n", "a\nB\nc\n") == {2}
    assert changed_lines("a\nc\n", "a\nb\nb2\nc\n") == {2, 3}
    assert changed_lines("a\nb\nc\n", "a\nc\n") == frozenset()
    assert changed_lines("a\nb", "a\nb\n") == {2}  # the newline was added to the last line
    assert changed_lines("a\n", "a\n") == frozenset()


def test_changed_lines_from_a_real_git_diff(tmp_path: Path) -> None:
    _git(["init", "-q"], tmp_path)
    old_a = [f"line {k}" for k in range(1, 21)]
    (tmp_path / "a.py").write_text("\n".join(old_a) + "\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "gone.py").write_text("bye\n", encoding="utf-8")
    _git(["add", "-A"], tmp_path)
    _git(["commit", "-q", "-m", "before"], tmp_path)
    new_a = list(old_a)
    new_a[1] = "line 2 changed"        # hunk 1: line 2
    new_a.insert(15, "inserted")       # hunk 2: lines 16 and 17
    new_a.insert(16, "inserted too")
    del new_a[19]
    (tmp_path / "a.py").write_text("\n".join(new_a) + "\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("one\nthree\n", encoding="utf-8")  # deletions only
    (tmp_path / "gone.py").unlink()
    (tmp_path / "new.py").write_text("x = 1\ny = 2", encoding="utf-8")  # no final newline
    _git(["add", "-A"], tmp_path)
    patch = _git(["diff", "--cached", "--no-color", "--no-ext-diff", "-M"], tmp_path)
    assert patch.count("@@ -") == 5 and "\\ No newline at end of file" in patch
    assert changed_lines_from_patch(patch) == {
        "a.py": frozenset({2, 16, 17}), "b.py": frozenset(), "new.py": frozenset({1, 2})}
    for name, lines in changed_lines_from_patch(patch).items():
        after = (tmp_path / name).read_text(encoding="utf-8")
        before = _git(["show", f"HEAD:{name}"], tmp_path) if name != "new.py" else None
        assert changed_lines(before, after) == lines


def test_changed_lines_from_patch_headers() -> None:
    patch = ("diff --git a/old name.py b/new name.py\n"
             "similarity index 90%\nrename from old name.py\nrename to new name.py\n"
             "--- a/old name.py\n+++ b/new name.py\n"
             "@@ -1,2 +1,2 @@\n x = 1\n--- y\n+-- y\n"
             'diff --git "a/\\303\\251.py" "b/\\303\\251.py"\n'
             'new file mode 100644\n--- /dev/null\n+++ "b/\\303\\251.py"\n'
             "@@ -0,0 +1 @@\n+z = 3\n\\ No newline at end of file\n"
             "diff --git a/mode.sh b/mode.sh\nold mode 100644\nnew mode 100755\n"
             "diff --git a/del.py b/del.py\ndeleted file mode 100644\n--- a/del.py\n"
             "+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n")
    assert changed_lines_from_patch(patch) == {
        "new name.py": frozenset({2}), "é.py": frozenset({1}), "mode.sh": frozenset()}


# --------------------------------------------------------------------------- properties

_ATOMS = ["x", "y", "n", "0", "1", "2.5", "'s'", "''", "b'q'", "True", "None", "x[0]", "'é'"]
_TEMPLATES = [
    "x = {a} + {b}",
    "if {a} == {b}:\n    y = {c}",
    "if {a} == {b}:\n    pass\nelif not {c}:\n    n -= 1",
    "while {a} < {b} and not {c}:\n    x += 1\n    break",
    "return {a} if {b} else {c}",
    "z = f({a}, {b}, {c})",
    "w = [v for v in range({a}) if v % 2]",
    "s = {a} * {b} ** 2 // 3",
    "assert {a} is not None, 'msg'",
    "print(f\"{{x}} {{y!r:>4}}\", {a} // 2)",
    "q: int = {a} - 1",
    "raise ValueError('bad' + str({a}))",
    "t = (1, 2.5, b'xy', '', None, True)",
    "if {a} in (1, 2): pass",
    "yield {a}",
    "a = 1; b = a or {b}",
    "s = 'é' + 'ü'; u = {a} <= 3  # ç",
    "m = -{a} ** 2",
    "for i in range({a}, {b}):\n    continue",
    "# a comment",
    "del x[{a}]",
    "r = lambda k=3: k >= {a}",
    "n %= {a} or 7",
    "d = {{{a}: {b}}}",
]

_statement = st.builds(lambda t, a, b, c: t.format(a=a, b=b, c=c),
                       st.sampled_from(_TEMPLATES), st.sampled_from(_ATOMS),
                       st.sampled_from(_ATOMS), st.sampled_from(_ATOMS))
_function = st.lists(_statement, min_size=1, max_size=5)


@st.composite
def _modules(draw: st.DrawFn) -> FileChange:
    parts = ["import re", ""]
    for k, body in enumerate(draw(st.lists(_function, min_size=1, max_size=3))):
        parts.append(f"def f{k}(x, y, n=0):")
        parts += ["    " + ln for stmt in body for ln in stmt.split("\n")]
    parts.append("TOP = f0(1, 2, 3) if 1 > 2 else 'z'")
    eol = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    after = eol.join(parts) + draw(st.sampled_from([eol, ""]))
    n = len(parts)
    changed = draw(st.sets(st.integers(1, n), max_size=n))
    return FileChange("pkg/mod.py", after, frozenset(changed))


def _check_mutant(change: FileChange, m: Mutant) -> None:
    a, b = change.after.split("\n"), m.text.split("\n")
    assert len(a) == len(b)
    assert len(change.after.splitlines()) == len(m.text.splitlines())
    differ = [k + 1 for k in range(len(a)) if a[k] != b[k]]
    assert differ == [m.line] and m.line in change.changed
    assert m.operator in OPERATORS
    assert m.text.split("\n")[m.line - 1].strip() == m.mutated
    assert change.after.split("\n")[m.line - 1].strip() == m.original
    assert apply_diff(change.after, m.diff) == m.text
    assert m.diff.startswith(f"diff --git a/{m.path} b/{m.path}\n--- a/{m.path}\n"
                             f"+++ b/{m.path}\n@@ ")
    assert m.diff.endswith("\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        compile(m.text, m.path, "exec", dont_inherit=True)


@settings(max_examples=80, deadline=None)
@given(change=_modules(), seed=st.integers(0, 2**32), cap=st.none() | st.integers(0, 30))
def test_mutants_of_random_modules(change: FileChange, seed: int, cap: int | None) -> None:
    mutants, notes = generate([change])
    again, notes_again = generate([change])
    assert mutants == again and notes == notes_again
    assert len({m.id for m in mutants}) == len(mutants)
    assert len({m.text for m in mutants}) == len(mutants)
    assert all(m.text != change.after for m in mutants)
    keys = [(m.line, m.col, OPERATORS.index(m.operator)) for m in mutants]
    assert keys == sorted(keys)
    for m in mutants:
        _check_mutant(change, m)
    chosen = select(mutants, seed=seed, max_mutants=cap)
    assert chosen == select(mutants, seed=seed, max_mutants=cap)
    assert len(chosen) == (len(mutants) if cap is None else min(cap, len(mutants)))
    positions = [mutants.index(m) for m in chosen]
    assert positions == sorted(set(positions))
    if not mutants:
        assert len(notes) == 1 and notes[0].startswith("pkg/mod.py: ")
