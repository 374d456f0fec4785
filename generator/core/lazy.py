"""Lazy package exports: a stage package's `__init__` names its public functions without importing
its modules until one is used, so `import generator.lock.lockfiles` does not pull in the whole
lock stage (and the stages' packages cannot form import cycles through their `__init__`s)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def resolve(package: str, exports: Mapping[str, str], name: str) -> Any:
    """The attribute `name` of `package`, imported from its submodule `exports[name]`."""
    module = exports.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{package}.{module}"), name)
