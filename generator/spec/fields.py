"""Typed field readers over a spec mapping: _Map reads each field with its type, pattern and
choices checked, and refuses unknown keys with a did-you-mean; a bad value is one line naming
the file, line, field and fix."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from generator.spec.yamlload import _Ctx

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "a mapping"}


class _Map:
    """A mapping under validation: remembers which keys were read to reject the rest."""

    def __init__(self, ctx: _Ctx, data: Any, fpath: tuple[str | int, ...], what: str) -> None:
        if not isinstance(data, dict):
            raise ctx.fail(fpath, f"{what} must be a mapping, got {_kind(data)}",
                           f"write {what} as 'key: value' lines")
        self.ctx = ctx
        self.data: dict[Any, Any] = data
        self.fpath = fpath
        self.allowed: list[str] = []

    def _path(self, key: str) -> tuple[str | int, ...]:
        return (*self.fpath, key)

    def has(self, key: str) -> bool:
        self.allowed.append(key)
        return key in self.data and self.data[key] is not None

    def raw(self, key: str) -> Any:
        self.allowed.append(key)
        return self.data.get(key)

    def text(self, key: str, *, required: bool = False, default: str = "",
            pattern: re.Pattern[str] | None = None, choices: Sequence[str] | None = None,
            fix: str | None = None, nonempty: bool = False) -> str:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.ctx.fail(self.fpath, f"missing required field '{key}'",
                                    fix or f"add '{key}:' to {self.ctx.shown}")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.ctx.fail(self._path(key), f"must be a string, got {_kind(value)}",
                                fix or f"write '{key}' as a quoted string")
        if not isinstance(value, str):
            raise self.ctx.fail(self._path(key), f"must be a string, got {_kind(value)}",
                                f"quote the value: {key}: \"{value}\"")
        if choices is not None and value not in choices:
            raise self.ctx.fail(self._path(key), f"'{value}' is not one of {', '.join(choices)}",
                                fix or f"set '{key}' to one of {', '.join(choices)}")
        if pattern is not None and not pattern.match(value):
            raise self.ctx.fail(self._path(key), f"'{value}' does not match {pattern.pattern}",
                                fix or f"change '{key}' to match {pattern.pattern}")
        if nonempty and not value.strip():
            raise self.ctx.fail(self._path(key), "must not be empty",
                                fix or f"write a value for '{key}'")
        return value

    def number(self, key: str, *, default: float, minimum: float = 0.0,
               integer: bool = False) -> float:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            want = "an integer" if integer else "a number"
            raise self.ctx.fail(self._path(key), f"must be {want}, got {_kind(value)}",
                                f"write '{key}' as {want}, e.g. {key}: {int(default)}")
        number = float(value)
        if number <= minimum and not (minimum == 0.0 and integer and number == 0):
            raise self.ctx.fail(self._path(key), f"must be greater than {minimum:g}, got {value}",
                                f"set '{key}' to a positive value")
        return number

    def boolean(self, key: str, *, default: bool) -> bool:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.ctx.fail(self._path(key), f"must be true or false, got {_kind(value)}",
                                f"write '{key}: true' or '{key}: false'")
        return value

    def str_list(self, key: str, *, item_pattern: re.Pattern[str] | None = None,
                 what: str = "item", fix: str | None = None,
                 unique: bool = True) -> tuple[str, ...]:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return ()
        value = self.data[key]
        if not isinstance(value, list):
            raise self.ctx.fail(self._path(key), f"must be a list, got {_kind(value)}",
                                f"write '{key}' as a YAML list: {key}: [a, b]")
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str):
                raise self.ctx.fail((*self._path(key), i),
                                    f"{what} must be a string, got {_kind(item)}",
                                    f"quote item {i} of '{key}'")
            if item_pattern is not None and not item_pattern.match(item):
                raise self.ctx.fail((*self._path(key), i), f"invalid {what} '{item}'",
                                    fix or f"write {what}s like {item_pattern.pattern}")
            if unique and item in out:
                raise self.ctx.fail((*self._path(key), i), f"duplicate {what} '{item}'",
                                    f"remove the second '{item}' from '{key}'")
            out.append(item)
        return tuple(out)

    def str_map(self, key: str, *, key_pattern: re.Pattern[str]) -> tuple[tuple[str, str], ...]:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return ()
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.ctx.fail(self._path(key), f"must be a mapping, got {_kind(value)}",
                                f"write '{key}' as NAME: value lines")
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            if not isinstance(k, str) or not key_pattern.match(k):
                raise self.ctx.fail((*self._path(key), str(k)), f"invalid name '{k}'",
                                    f"use names matching {key_pattern.pattern}")
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise self.ctx.fail((*self._path(key), k), f"must be a string, got {_kind(v)}",
                                    f"quote the value of {k}")
            out.append((k, str(v)))
        return tuple(sorted(out))

    def sub(self, key: str, what: str) -> _Map | None:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return None
        return _Map(self.ctx, self.data[key], self._path(key), what)

    def done(self) -> None:
        """Reject keys that were never read: a typo must not pass silently."""
        for key in self.data:
            if key not in self.allowed:
                near = _closest(str(key), self.allowed)
                fix = f"did you mean '{near}'?" if near else (
                    f"remove it; allowed keys here: {', '.join(sorted(set(self.allowed)))}")
                raise self.ctx.fail((*self.fpath, str(key)), f"unknown key '{key}'", fix)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _closest(word: str, options: Sequence[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, list(dict.fromkeys(options)), n=1, cutoff=0.75)
    return found[0] if found else None


_PLAIN_REL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*\Z")


def _rel_path_check(m: _Map, key: str, value: str, fpath: tuple[str | int, ...]) -> str:
    if _PLAIN_REL_RE.match(value) and ".." not in value.split("/"):
        return value  # already normal: what PurePosixPath(value).as_posix() would give
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts or "\\" in value or not value.strip():
        raise m.ctx.fail(fpath, f"'{value}' must be a relative path inside the task directory",
                         f"write '{key}' relative to the task dir, without '..'")
    return p.as_posix()
