"""Mutation testing of a bug fix: AST-level mutants of the lines the gold patch added or changed.

A task's tests should fail when its fix is broken. `generate` breaks the fix on purpose: given
the post-fix text of each changed Python file (`FileChange.after`) and the post-fix line numbers
the fix added or changed (`changed_lines_from_patch`, `changed_lines`), it makes one mutant per
small change of those lines; a test suite that still passes on a mutant did not notice it.

Operators (`OPERATORS`), each applied to a node whose every line is a changed line:

- compare:  each operator of a comparison: == <-> !=, < -> <=, <= -> <, > -> >=, >= -> >,
  in <-> not in, is <-> is not;
- boolop:   and <-> or; `not x` -> `x`;
- constant: a number n -> n+1 and n-1 (not bools); True <-> False; a non-empty string or bytes
  s -> '' and 'XX' s 'XX'; '' -> 'XX' (not docstrings or other bare constant statements, nor
  constants inside f-strings or annotations);
- binop:    + <-> -, * <-> /, // -> /, % -> *, ** -> *, in expressions and augmented assignments;
- remove:   a simple statement (expression, assignment, return, raise, assert, del, break,
  continue) -> `pass`;
- branch:   the condition of an if, while, conditional expression or comprehension `if` ->
  True and -> False;
- args:     two adjacent positional arguments of a call (no *args) swapped;
- return:   a simple statement directly in a function body (not a generator) -> `return None`.

Guarantees, checked for every mutant (a failed check is a bug: AssertionError):

- only single-line nodes are mutated, and only the node's own span of its line is rewritten
  (columns are the parser's UTF-8 byte offsets, converted); every other byte of the file is
  kept, so the mutant has exactly the lines of `after` (counted as git counts them, at "\\n",
  and as str.splitlines counts them) and differs from it only on changed lines: coverage line
  numbers stay aligned;
- the mutant parses to exactly the intended tree (the original with the node replaced; the
  replacement parenthesised when its context needs it, else dropped), and compiles;
- no two mutants of a file have the same text, none equals `after`; ids are stable hashes;
- the order is stable (path, line, column, operator, variant) and `select` is seeded: the same
  inputs give the same mutants, the same ids, the same sample.

Replacements are rendered by ast.unparse (a comparison, boolean or arithmetic operation or call
is re-rendered whole: r"_id$" becomes '_id$'), constants by repr. Pure: no files, no programs;
`Mutant.diff` is a unified diff for `git apply` and `patch -p1`, `apply_diff` applies it too.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import random
import re
import reprlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["OPERATORS", "FileChange", "Mutant", "apply_diff", "changed_lines",
           "changed_lines_from_patch", "generate", "select"]

OPERATORS: tuple[str, ...] = ("compare", "boolop", "constant", "binop", "remove", "branch",
                              "args", "return")


@dataclass(frozen=True)
class FileChange:
    """One file the fix changed: its repo-relative posix path, its text after the fix, and the
    1-based line numbers of `after` that the fix added or changed."""

    path: str
    after: str
    changed: frozenset[int]


@dataclass(frozen=True)
class Mutant:
    """One mutant: `text` is `after` with one change on line `line` (1-based) at column `col`
    (0-based, in characters); `original` and `mutated` are that line before and after,
    stripped; `diff` turns `after` into `text` (git apply, patch -p1, apply_diff)."""

    id: str
    path: str
    line: int
    col: int
    operator: str
    description: str
    original: str
    mutated: str
    text: str
    diff: str


# --------------------------------------------------------------------------- lines and diffs

_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"',
            92: "\\\\"}
_NO_NEWLINE = "\\ No newline at end of file"
_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_HUNK_RE = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _lines(text: str) -> list[str]:
    """`text` as git sees its lines: split after each "\\n" (a last line may lack it)."""
    return _LINE_RE.findall(text)


def _has_break(s: str) -> bool:
    """Does `s` hold a character str.splitlines splits at ("\\n", "\\r", "\\f", "\\x1c", ...)?"""
    return s.splitlines() != ([s] if s else [])


def changed_lines(before: str | None, after: str) -> frozenset[int]:
    """Lines of `after` added or changed relative to `before` (difflib SequenceMatcher on lines,
    split at "\\n" as git does); before=None: every line."""
    b = _lines(after)
    if before is None:
        return frozenset(range(1, len(b) + 1))
    matcher = difflib.SequenceMatcher(None, _lines(before), b, autojunk=False)
    return frozenset(j + 1 for tag, _i1, _i2, j1, j2 in matcher.get_opcodes()
                     if tag in ("replace", "insert") for j in range(j1, j2))


def _unquote(name: str) -> str:
    """A path as git prints it in a header: C-quoted ("a/x\\ty", octal UTF-8 bytes) when
    unusual; some diffs put a tab and a timestamp after it."""
    if not name.startswith('"'):
        return name.split("\t", 1)[0]
    inner = name[1:name.rfind('"')] if name.count('"') > 1 else name[1:]
    raw = inner.encode("utf-8").decode("unicode_escape", "replace")
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def _git_header_path(rest: str) -> str:
    """The b/ path of a `diff --git a/X b/X` header (its remainder `rest`)."""
    if rest.endswith('"'):
        return _unquote(rest[rest.rfind(' "') + 1:]).removeprefix("b/")
    return rest[(len(rest) - 1) // 2 + 1:].removeprefix("b/")  # the same name twice


def _quote(name: str) -> str:
    """A path as git writes it in a header: C-quoted when it holds a control character, a
    quote, a backslash or a non-ASCII byte (octal)."""
    raw = name.encode("utf-8", "surrogateescape")
    if all(0x20 <= c < 0x7F and c not in (34, 92) for c in raw):
        return name
    return '"' + "".join(_ESCAPES.get(c) or (chr(c) if 0x20 <= c < 0x7F else f"\\{c:03o}")
                         for c in raw) + '"'


def changed_lines_from_patch(patch: str) -> dict[str, frozenset[int]]:
    """Per file (the b/ path) of a unified git diff: the post-image line numbers of added lines
    ('+' lines). Files deleted (+++ /dev/null) are left out; a file with only deletions maps to
    an empty set. Handles 'diff --git' headers, '\\ No newline at end of file', new files
    (--- /dev/null), multiple hunks and files."""
    result: dict[str, set[int]] = {}
    path: str | None = None
    deleted = False
    lines = patch.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        i += 1
        if line.startswith("diff --git "):
            if path is not None and not deleted:
                result.setdefault(path, set())
            path, deleted = _git_header_path(line[len("diff --git "):]), False
        elif line.startswith("deleted file mode"):
            deleted = True
        elif line.startswith(("rename to ", "copy to ")):
            path = _unquote(line.split(" to ", 1)[1])
        elif line.startswith("+++ "):
            name = _unquote(line[4:])
            if name == "/dev/null":
                deleted = True
            else:
                path, deleted = name.removeprefix("b/"), False
        elif (m := _HUNK_RE.match(line)) is not None:
            old_left, new_left = int(m.group(2) or 1), int(m.group(4) or 1)
            number = int(m.group(3))
            added = result.setdefault(path, set()) if path is not None and not deleted else set()
            while (old_left > 0 or new_left > 0) and i < len(lines):
                tag = lines[i][:1]
                if tag not in ("+", "-", " ", "", "\\"):
                    break
                i += 1
                if tag == "+":
                    added.add(number)
                if tag in ("+", " ", ""):
                    number += 1
                    new_left -= 1
                if tag in ("-", " ", ""):
                    old_left -= 1
    if path is not None and not deleted:
        result.setdefault(path, set())
    return {p: frozenset(s) for p, s in result.items()}


def _range(start: int, length: int) -> str:
    """A hunk header range as difflib and git write it (0-based `start`)."""
    return str(start + 1) if length == 1 else f"{start + 1 if length else start},{length}"


def _diff_line(tag: str, line: str) -> str:
    return tag + line if line.endswith("\n") else f"{tag}{line}\n{_NO_NEWLINE}\n"


def _diff(path: str, a: list[str], b: list[str], context: int = 3) -> str:
    """The unified diff between two line lists of equal length (lines changed in place; a
    changed line's '-' is followed by its '+')."""
    old, new, tab = _quote("a/" + path), _quote("b/" + path), "\t" if " " in path else ""
    out = [f"diff --git {old} {new}\n", f"--- {old}{tab}\n", f"+++ {new}{tab}\n"]
    groups: list[list[int]] = []
    for k in (k for k in range(len(a)) if a[k] != b[k]):
        if groups and k - groups[-1][-1] <= 2 * context:
            groups[-1].append(k)
        else:
            groups.append([k])
    for group in groups:
        lo, hi = max(0, group[0] - context), min(len(a), group[-1] + context + 1)
        out.append(f"@@ -{_range(lo, hi - lo)} +{_range(lo, hi - lo)} @@\n")
        for k in range(lo, hi):
            out += [_diff_line(" ", a[k])] if a[k] == b[k] \
                else [_diff_line("-", a[k]), _diff_line("+", b[k])]
    return "".join(out)


def apply_diff(text: str, diff: str) -> str:
    """Pure-Python application of a one-file unified diff (as Mutant.diff) to text; raises
    ValueError naming the hunk when a context/removed line does not match."""
    source, out = _lines(text), []
    rows = diff.split("\n")
    pos = i = number = files = 0
    while i < len(rows):
        row = rows[i]
        i += 1
        if row.startswith("diff --git ") and (files := files + 1) > 1:
            raise ValueError("the diff changes more than one file")
        m = _HUNK_RE.match(row)
        if m is None:
            continue  # a header line
        number += 1
        old_len, new_len = int(m.group(2) or 1), int(m.group(4) or 1)
        start = int(m.group(1)) - 1 if old_len else int(m.group(1))
        old, new, last = list[str](), list[str](), list[list[str]]()
        while i < len(rows) and (len(old) < old_len or len(new) < new_len
                                 or rows[i].startswith("\\")):
            body = rows[i]
            i += 1
            if body.startswith("\\"):  # no newline at the end of the line before
                for side in last:
                    side[-1] = side[-1][:-1]
                continue
            if body[:1] not in ("+", "-", " ", ""):
                raise ValueError(f"hunk {number} ({row}): unexpected line {body!r}")
            last = [old] if body[:1] == "-" else [new] if body[:1] == "+" else [old, new]
            for side in last:
                side.append(body[1:] + "\n")
        if len(old) != old_len or len(new) != new_len:
            raise ValueError(f"hunk {number} ({row}): truncated")
        found = source[start:start + old_len]
        if start < pos or found != old:
            raise ValueError(f"hunk {number} ({row}) does not apply at line {start + 1}: "
                             f"expected {old!r}, found {found!r}")
        out += source[pos:start] + new
        pos = start + old_len
    return "".join(out + source[pos:])


# --------------------------------------------------------------------------- candidates

_CMP: dict[type[ast.cmpop], tuple[str, type[ast.cmpop], str]] = {
    ast.Eq: ("==", ast.NotEq, "!="), ast.NotEq: ("!=", ast.Eq, "=="),
    ast.Lt: ("<", ast.LtE, "<="), ast.LtE: ("<=", ast.Lt, "<"),
    ast.Gt: (">", ast.GtE, ">="), ast.GtE: (">=", ast.Gt, ">"),
    ast.In: ("in", ast.NotIn, "not in"), ast.NotIn: ("not in", ast.In, "in"),
    ast.Is: ("is", ast.IsNot, "is not"), ast.IsNot: ("is not", ast.Is, "is"),
}
_BIN: dict[type[ast.operator], tuple[str, type[ast.operator], str]] = {
    ast.Add: ("+", ast.Sub, "-"), ast.Sub: ("-", ast.Add, "+"),
    ast.Mult: ("*", ast.Div, "/"), ast.Div: ("/", ast.Mult, "*"),
    ast.FloorDiv: ("//", ast.Div, "/"), ast.Mod: ("%", ast.Mult, "*"),
    ast.Pow: ("**", ast.Mult, "*"),
}
_REMOVABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Raise,
              ast.Assert, ast.Delete, ast.Break, ast.Continue)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_BRANCHES = {ast.If: "if-condition", ast.While: "while-condition",
             ast.IfExp: "conditional-expression condition",
             ast.comprehension: "comprehension condition"}


@dataclass(frozen=True)
class _Candidate:
    node: ast.AST      # the node replaced
    operator: str
    variant: int
    seq: int           # walk order: the last tie-breaker
    replacement: str   # its new source text
    statement: bool    # the replacement is a statement (else an expression)
    description: str


def _is_annotation(node: ast.AST, field: str) -> bool:
    return (isinstance(node, ast.arg) and field == "annotation") \
        or (isinstance(node, _FUNCTIONS) and field == "returns") \
        or (isinstance(node, ast.AnnAssign) and field == "annotation")


def _has_yield(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(node, (*_FUNCTIONS, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))
    return False


Parents = dict[int, tuple[ast.AST, str, int | None]]


def _index(tree: ast.AST) -> tuple[list[ast.AST], Parents, set[int]]:
    """Pre-order nodes, each node's place in its parent, the ids of nodes inside an f-string
    or an annotation (never mutated)."""
    order: list[ast.AST] = []
    parents: Parents = {}
    excluded: set[int] = set()
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, inside = stack.pop()
        order.append(node)
        if inside:
            excluded.add(id(node))
        children: list[tuple[ast.AST, bool]] = []
        for field, value in ast.iter_fields(node):
            hidden = inside or isinstance(node, ast.JoinedStr) or _is_annotation(node, field)
            items = value if isinstance(value, list) else [value]
            for k, item in enumerate(items):
                if isinstance(item, ast.AST):
                    parents[id(item)] = (node, field, k if isinstance(value, list) else None)
                    children.append((item, hidden))
        stack.extend(reversed(children))
    return order, parents, excluded


def _constant_variants(value: object) -> list[object]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, (int, float)):
        return [v for v in (value + 1, value - 1) if v != value]
    if isinstance(value, str):
        return ["", "XX" + value + "XX"] if value else ["XX"]
    if isinstance(value, bytes):
        return [b"", b"XX" + value + b"XX"] if value else [b"XX"]
    return []


def _candidates(order: list[ast.AST], excluded: set[int],
                changed: frozenset[int]) -> list[_Candidate]:
    bare = {id(n.value) for n in order if isinstance(n, ast.Expr)
            and isinstance(n.value, ast.Constant)}
    in_function: set[int] = set()
    for n in order:
        if isinstance(n, _FUNCTIONS) and not _has_yield(n):
            in_function.update(id(s) for s in n.body)
    found: list[_Candidate] = []

    def ok(node: ast.AST) -> bool:
        line = getattr(node, "lineno", None)
        return line is not None and line == getattr(node, "end_lineno", None) \
            and line in changed and id(node) not in excluded

    def add(node: ast.AST, op: str, variant: int, new: ast.AST | str, desc: str) -> None:
        text = new if isinstance(new, str) else ast.unparse(new)
        found.append(_Candidate(node, op, variant, len(found), text,
                                isinstance(node, ast.stmt), desc))

    for node in order:
        if isinstance(node, ast.Compare) and ok(node):
            for k, cop in enumerate(node.ops):
                old_sym, new_type, new_sym = _CMP[type(cop)]
                ops = [*node.ops[:k], new_type(), *node.ops[k + 1:]]
                add(node, "compare", k, ast.Compare(node.left, ops, node.comparators),
                    f"'{old_sym}' -> '{new_sym}'")
        elif isinstance(node, ast.BoolOp) and ok(node):
            swap, desc = (ast.Or(), "'and' -> 'or'") if isinstance(node.op, ast.And) \
                else (ast.And(), "'or' -> 'and'")
            add(node, "boolop", 0, ast.BoolOp(swap, node.values), desc)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and ok(node):
            add(node, "boolop", 0, node.operand, "'not' removed")
        elif isinstance(node, ast.Constant) and ok(node) and id(node) not in bare:
            for k, value in enumerate(_constant_variants(node.value)):
                add(node, "constant", k, repr(value),
                    f"{reprlib.repr(node.value)} -> {reprlib.repr(value)}")
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BIN \
                and ok(node):
            old_sym, bin_type, new_sym = _BIN[type(node.op)]
            if isinstance(node, ast.BinOp):
                add(node, "binop", 0, ast.BinOp(node.left, bin_type(), node.right),
                    f"'{old_sym}' -> '{new_sym}'")
            else:
                add(node, "binop", 0, ast.AugAssign(node.target, bin_type(), node.value),
                    f"'{old_sym}=' -> '{new_sym}='")
        if isinstance(node, ast.Call) and ok(node) and len(node.args) >= 2 \
                and not any(isinstance(a, ast.Starred) for a in node.args):
            for k in range(len(node.args) - 1):
                if ast.dump(node.args[k]) == ast.dump(node.args[k + 1]):
                    continue
                args = [*node.args[:k], node.args[k + 1], node.args[k], *node.args[k + 2:]]
                add(node, "args", k, ast.Call(node.func, args, node.keywords),
                    f"arguments {k + 1} and {k + 2} swapped")
        what = _BRANCHES.get(type(node), "")
        tests = node.ifs if isinstance(node, ast.comprehension) \
            else [node.test] if isinstance(node, (ast.If, ast.While, ast.IfExp)) else []
        for test in tests:
            if ok(test):
                add(test, "branch", 0, "True", f"{what} -> True")
                add(test, "branch", 1, "False", f"{what} -> False")
        if isinstance(node, _REMOVABLE) and ok(node) \
                and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) \
                and not (isinstance(node, ast.AnnAssign) and node.value is None):
            add(node, "remove", 0, "pass", "statement removed (pass)")
            if id(node) in in_function and not isinstance(node, ast.Return):
                add(node, "return", 0, "return None", "returns early (return None)")
    return found


# --------------------------------------------------------------------------- generate

def _char_col(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8"))


def _quiet_parse(text: str, path: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(text, path)


def _compiles(tree: ast.Module, path: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(tree, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _span(s: ast.stmt) -> tuple[int, int, int | None, int | None]:
    first = min([s.lineno, *(d.lineno for d in getattr(s, "decorator_list", []))])
    return first, s.col_offset, s.end_lineno, s.end_col_offset


def _put(parents: Parents, node: ast.AST, new: ast.AST) -> None:
    """Put `new` in the place of `node` in the tree (`node` itself: back)."""
    parent, field, k = parents[id(node)]
    if k is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[k] = new


class _Expect:
    """Does a mutant's tree equal the original with one node replaced? Top-level statements
    apart from the mutated line's must keep their spans (the text around them is the same
    bytes, so they parse the same); those on it must dump as the original with the node
    replaced."""

    def __init__(self, tree: ast.Module, parents: Parents, node: ast.AST, new: ast.AST) -> None:
        row = getattr(node, "lineno", 0)
        self.tree = tree
        self.touched = [k for k, s in enumerate(tree.body)
                        if _span(s)[0] <= row <= (s.end_lineno or 0)]
        _put(parents, node, new)
        try:
            self.dumps = [ast.dump(tree.body[k]) for k in self.touched]
        finally:
            _put(parents, node, node)

    def met(self, mutant: ast.Module) -> bool:
        if len(mutant.body) != len(self.tree.body):
            return False
        pairs = enumerate(zip(self.tree.body, mutant.body, strict=True))
        if any(_span(a) != _span(b) for k, (a, b) in pairs if k not in self.touched):
            return False
        return [ast.dump(mutant.body[k]) for k in self.touched] == self.dumps


def _mutant_id(path: str, line: int, col: int, operator: str, mutated: str) -> str:
    key = "\0".join((path, str(line), str(col), operator, mutated))
    return "m" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]


def _check(change: FileChange, text: str) -> None:
    """The guarantees every mutant keeps (a failure is a bug in this module)."""
    a, b = _lines(change.after), _lines(text)
    if len(a) != len(b) or len(text.splitlines()) != len(change.after.splitlines()):
        raise AssertionError(f"{change.path}: a mutant changed the number of lines")
    stray = [k + 1 for k in range(len(a)) if a[k] != b[k] and k + 1 not in change.changed]
    if stray:
        raise AssertionError(f"{change.path}: a mutant changed unchanged line(s) {stray}")


def _file_mutants(change: FileChange, notes: list[str]) -> list[Mutant]:
    path, after = change.path, change.after
    if not path.endswith(".py"):
        notes.append(f"{path}: not Python source: no mutants")
        return []
    try:
        tree = _quiet_parse(after, path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        what = f"SyntaxError at line {exc.lineno}" if isinstance(exc, SyntaxError) \
            else type(exc).__name__
        notes.append(f"{path}: not Python ({what}): no mutants")
        return []
    if "\r" in after.replace("\r\n", ""):
        notes.append(f"{path}: lone carriage returns (the parser and git number its lines "
                     "differently): no mutants")
        return []
    lines = _lines(after)
    changed = frozenset(n for n in change.changed if 1 <= n <= len(lines))
    if not changed:
        notes.append(f"{path}: no added or changed lines: no mutants")
        return []
    order, parents, excluded = _index(tree)
    candidates = _candidates(order, excluded, changed)
    if not candidates:
        notes.append(f"{path}: none of the {len(changed)} changed lines holds a mutable "
                     "expression or statement")
        return []
    rank = {op: k for k, op in enumerate(OPERATORS)}
    candidates.sort(key=lambda c: (getattr(c.node, "lineno", 0), getattr(c.node, "col_offset", 0),
                                   rank[c.operator], c.variant, c.seq))
    seen = {after}
    mutants: list[Mutant] = []
    for cand in candidates:
        node, repl = cand.node, cand.replacement
        row = getattr(node, "lineno", 0) - 1
        line = lines[row]
        col = _char_col(line, getattr(node, "col_offset", 0))
        end = _char_col(line, getattr(node, "end_col_offset", 0))
        if _has_break(line[col:end]) or _has_break(repl):
            continue
        try:
            new = ast.parse(repl).body[0] if cand.statement else ast.parse(repl, mode="eval").body
        except SyntaxError:
            continue
        expect: _Expect | None = None
        for replacement in [repl] if cand.statement else [repl, f"({repl})"]:
            mutated_line = line[:col] + replacement + line[end:]
            text = "".join([*lines[:row], mutated_line, *lines[row + 1:]])
            if text in seen:
                break
            try:
                mutant_tree = _quiet_parse(text, path)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            expect = expect or _Expect(tree, parents, node, new)
            if not expect.met(mutant_tree):
                continue
            seen.add(text)
            if not _compiles(mutant_tree, path):
                break
            _check(change, text)
            mutated = mutated_line.strip()
            mutants.append(Mutant(
                id=_mutant_id(path, row + 1, col, cand.operator, mutated), path=path,
                line=row + 1, col=col, operator=cand.operator, description=cand.description,
                original=line.strip(), mutated=mutated, text=text,
                diff=_diff(path, lines, _lines(text))))
            break
    if not mutants:
        notes.append(f"{path}: none of the {len(candidates)} candidate mutants of its "
                     f"{len(changed)} changed lines compiles")
    return mutants


def generate(changes: Sequence[FileChange]) -> tuple[list[Mutant], list[str]]:
    """All mutants, in a stable order (path, line, col, operator, variant), deduplicated by
    resulting text, plus notes (e.g. "x.py: not Python (SyntaxError at line 3): no mutants" or
    "x.py: none of the N changed lines holds a mutable expression or statement"). A path given
    twice is a ValueError."""
    paths = [c.path for c in changes]
    if len(set(paths)) != len(paths):
        raise ValueError(f"a path is given twice: {sorted(p for p in paths if paths.count(p) > 1)}")
    mutants: list[Mutant] = []
    notes: list[str] = []
    for change in sorted(changes, key=lambda c: c.path):
        mutants += _file_mutants(change, notes)
    return mutants, notes


def select(mutants: Sequence[Mutant], *, seed: int, max_mutants: int | None) -> list[Mutant]:
    """All of them if max_mutants is None or >= len; else a seeded sample (random.Random(seed))
    of max_mutants, returned in generate's order. Same inputs, same output."""
    if max_mutants is None or max_mutants >= len(mutants):
        return list(mutants)
    if max_mutants < 0:
        raise ValueError(f"max_mutants must be >= 0, not {max_mutants}")
    chosen = sorted(random.Random(seed).sample(range(len(mutants)), max_mutants))
    return [mutants[k] for k in chosen]
