"""The one YAML writer for values gen puts into YAML text it writes itself (rendered task.yaml and
compose files, exports, spec edits), so every value round-trips exactly whatever it holds.

JSON's string syntax is valid YAML, but a YAML reader treats some characters JSON leaves raw as
line breaks or rejects them: NEL (U+0085) and U+2028/U+2029 are line breaks to YAML 1.1
(PyYAML folds NEL into a space), C1 controls, DEL, the BOM and the non-characters are not
printable. Those are written as `\\uXXXX` escapes, which every YAML reader decodes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import yaml

__all__ = ["block", "flow", "item", "quoted", "scalar"]

# json.dumps(s, ensure_ascii=False) without building a JSONEncoder per call
_json_str: Callable[[str], str] = json.encoder.encode_basestring
_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_BLOCK_SAFE = re.compile(
    r"^[^\t\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]*\Z")


def _escape(text: str) -> str:
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def quoted(value: Any) -> str:
    """`str(value)` as a YAML double-quoted scalar that round-trips exactly."""
    return _escape(_json_str(str(value)))


def scalar(value: Any) -> str:
    """Any JSON value (string, number, bool, null, list, mapping) as a YAML flow scalar: also a
    JSON text that str.splitlines() keeps on one line (JSON Lines files use it)."""
    return _escape(json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict)))


def flow(values: Iterable[Any]) -> str:
    """A flow sequence of quoted strings: `["a", "b"]`."""
    return "[" + ", ".join(quoted(v) for v in values) + "]"


def block(text: str, indent: int = 2) -> str:
    """A YAML literal block scalar for `text` (exact round-trip), or a quoted string where a
    block cannot hold it (tabs, CR, unsafe characters, leading blanks, trailing spaces)."""
    if not text or not _BLOCK_SAFE.match(text) or text[0] in " \n" or text.strip() != text.rstrip():
        return quoted(text)
    if " \n" in text or text.endswith(" "):  # a line with trailing spaces
        return quoted(text)
    stripped = text.rstrip("\n")
    trailing = len(text) - len(stripped)
    chomp = {0: "-", 1: ""}.get(trailing, "+")
    pad = " " * indent
    body = "\n".join(pad + line if line else "" for line in stripped.split("\n"))
    extra = "\n" * max(trailing - 1, 0) if chomp == "+" else ""
    return f"|{chomp}\n{body}{extra}"


def item(text: str) -> str:
    """A list item as a person writes it in a spec: plain (`x.py::a`) or single-quoted
    (`'[weird]'`) as PyYAML would write it, quoted() when it holds a character that a line-based
    reader would split on (PyYAML itself writes U+2028 raw)."""
    if _UNSAFE.search(text) is not None:
        return quoted(text)
    dumped = yaml.safe_dump([text], default_flow_style=False, width=1 << 30, allow_unicode=True)
    line = dumped.rstrip("\n")
    if not line.startswith("- ") or "\n" in line:
        return quoted(text)
    return line[2:]
