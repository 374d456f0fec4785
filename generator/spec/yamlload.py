"""Strict YAML loading for specs: only plain mappings, lists and scalars (no tags, anchors or merge
keys; duplicate keys refused), with line numbers found only when an error needs one; _Ctx names
the file, line and field of a bad value in one line."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import yaml

from generator.core.errors import SpecError
from generator.core.fsutil import read_text

__all__ = [
    "rel_path",
]


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR_TAG = "tag:yaml.org,2002:str"


_MAP_TAG = "tag:yaml.org,2002:map"


_SEQ_TAG = "tag:yaml.org,2002:seq"


class _SpecLoader(_Loader):  # type: ignore[misc]
    """The safe loader, with plain scalars' tags remembered per distinct short value.

    Resolving a tag runs PyYAML's resolver in Python for every node of every spec, and
    specs repeat the same short scalars (keys, package names) again and again. With no path
    resolver registered (checked on every node), a tag depends only on the node kind, the
    value and the implicit flags, and the path bookkeeping is a no-op.
    """

    _plain: ClassVar[dict[str, str]] = {}

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        if self.yaml_path_resolvers:
            super().descend_resolver(current_node, current_index)

    def ascend_resolver(self) -> None:
        if self.yaml_path_resolvers:
            super().ascend_resolver()

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        if kind is not yaml.ScalarNode:
            return _MAP_TAG if kind is yaml.MappingNode else _SEQ_TAG
        if not implicit[0]:
            return _STR_TAG  # quoted, or a block scalar
        tag = self._plain.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(value) <= 64:
                if len(self._plain) >= 8192:
                    self._plain.clear()
                self._plain[value] = tag
        return tag


class _Irregular(Exception):
    """A document the fast constructor leaves to PyYAML's (merge keys, odd keys, recursion)."""


def _load_yaml(text: str) -> Any:
    """`yaml.load(text, Loader=_Loader)`, with the common node kinds built directly.

    PyYAML's SafeConstructor spends more time dispatching than parsing on small specs.
    Plain strings, mappings and sequences are built here; every other tag (ints, bools,
    null, floats, timestamps...) goes through PyYAML's own constructor, and so does the
    whole document when it uses merge keys, non-scalar keys or recursive aliases. An alias
    is built once and shared, as PyYAML does.
    """
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        built: dict[int, Any] = {}
        busy: set[int] = set()

        def build(n: yaml.Node) -> Any:
            tag = n.tag
            if tag == _STR_TAG and isinstance(n, yaml.ScalarNode):
                return n.value
            key = id(n)
            if key in built:
                return built[key]
            if tag == _MAP_TAG and isinstance(n, yaml.MappingNode):
                if key in busy:
                    raise _Irregular
                busy.add(key)
                out: dict[Any, Any] = {}
                for k, v in n.value:
                    if not (isinstance(k, yaml.ScalarNode) and k.tag == _STR_TAG):
                        raise _Irregular  # merge keys, non-string keys: PyYAML's rules
                    out[k.value] = build(v)
                busy.discard(key)
            elif tag == _SEQ_TAG and isinstance(n, yaml.SequenceNode):
                if key in busy:
                    raise _Irregular
                busy.add(key)
                out_list = [build(x) for x in n.value]
                busy.discard(key)
                built[key] = out_list
                return out_list
            else:
                value = loader.construct_object(n, deep=True)
                built[key] = value
                return value
            built[key] = out
            return out

        try:
            return build(node)
        except _Irregular:
            return loader.construct_document(node)
    finally:
        loader.dispose()


def rel_path(path: Path, root: Path | None) -> str:
    """`path` as shown in messages: POSIX and relative to `root` when inside it."""
    if root is not None:
        p, r = os.fspath(path), os.fspath(root)
        if p.startswith(r) and p[len(r):len(r) + 1] == "/":
            return p[len(r) + 1:]
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _line_of(text: str, fpath: Sequence[str | int]) -> int | None:
    """1-based line of the node at `fpath` (key names / list indexes), or of its parent."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    line = None if node is None else node.start_mark.line + 1
    for part in fpath:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for knode, vnode in node.value:
                if knode.value == part:
                    line = knode.start_mark.line + 1
                    node = vnode
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


class _Ctx:
    """Carries the file being parsed so errors can name it, its line and the field."""

    def __init__(self, file: Path, text: str, root: Path | None) -> None:
        self.file = file
        self.text = text
        self.root = root

    @property
    def shown(self) -> str:  # only an error needs it
        return rel_path(self.file, self.root)

    def fail(self, fpath: Sequence[str | int], message: str, fix: str) -> SpecError:
        dotted = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in fpath)
        dotted = dotted.replace(".[", "[")
        return SpecError(
            message,
            file=self.shown,
            line=_line_of(self.text, fpath) if fpath else None,
            field=dotted or None,
            hint=fix,
        )


def _read_yaml(file: Path, root: Path | None, size: int | None = None) -> tuple[_Ctx, Any]:
    try:
        text = read_text(os.fspath(file), size)
    except (FileNotFoundError, IsADirectoryError):
        shown = rel_path(file, root)
        raise SpecError("file not found", file=shown, hint=f"create {shown}") from None
    except UnicodeDecodeError:
        raise SpecError("not UTF-8 text", file=rel_path(file, root),
                        hint="save the file as UTF-8") from None
    try:
        data = _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise SpecError(
            f"invalid YAML: {exc.problem}",
            file=rel_path(file, root),
            line=mark.line + 1 if mark else None,
            hint="fix the YAML syntax",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=rel_path(file, root),
                        hint="fix the YAML syntax") from None
    return _Ctx(file, text, root), data
