"""The Jinja environment render uses: templates layered (the project's templates/ over gen's own),
strict (an undefined name is an error), with the YAML and shell filters; TemplateSet loads each
kind's templates once."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from generator.core import yamltext
from generator.core.errors import InputError
from generator.core.fsutil import walk_files
from generator.spec.model import Task

__all__ = [
    "FILE_MODE",
    "OUTPUTS",
    "PACKAGE_TEMPLATES",
    "SCRIPT_MODE",
    "TemplateSet",
    "heredoc_delimiter",
    "make_environment",
]


PACKAGE_TEMPLATES = Path(__file__).parent.parent / "templates"


SCRIPT_MODE = 0o755


FILE_MODE = 0o644


# The files every task gets, by kind: (output name, template name, mode)
OUTPUTS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "terminal": (
        ("Dockerfile", "Dockerfile", FILE_MODE),
        ("docker-compose.yaml", "docker-compose.yaml", FILE_MODE),
        ("task.yaml", "task.yaml", FILE_MODE),
        ("run-tests.sh", "run-tests.sh", SCRIPT_MODE),
        ("solution.sh", "solution.sh", SCRIPT_MODE),
        ("README.md", "README.md", FILE_MODE),
    ),
    "swe": (
        ("Dockerfile", "Dockerfile", FILE_MODE),
        ("docker-compose.yaml", "docker-compose.yaml", FILE_MODE),
        ("task.yaml", "task.yaml", FILE_MODE),
        ("run-tests.sh", "run-tests.sh", SCRIPT_MODE),
        ("solution.sh", "solution.sh", SCRIPT_MODE),
        ("eval.sh", "eval.sh", SCRIPT_MODE),
        ("README.md", "README.md", FILE_MODE),
    ),
}


def _docker_quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]+", value):
        return value
    return json.dumps(value)


def heredoc_delimiter(text: str) -> str:
    """A heredoc delimiter that does not occur in `text` (content-derived, so deterministic)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    for i in range(0, 56, 8):
        token = f"GEN_EOF_{digest[i:i + 8]}"
        if token not in text:
            return token
    raise ValueError("cannot find a heredoc delimiter")  # pragma: no cover


class _LayeredLoader(jinja2.BaseLoader):
    """Looks a template up layer by layer (task, dataset, gen's defaults).

    A name of the form `kind::name` means "`kind/name.j2`, else `name.j2`", tried within each
    layer before the next, so a dataset's generic `Dockerfile.j2` beats gen's
    `terminal/Dockerfile.j2`. Plain names (e.g. `_macros.j2` imports) are looked up as-is.
    """

    def __init__(self, layers: Sequence[Path]) -> None:
        self.layers = list(layers)

    def get_source(self, environment: jinja2.Environment, template: str
                   ) -> tuple[str, str, Callable[[], bool]]:
        if "::" in template:
            kind, name = template.split("::", 1)
            candidates = [f"{kind}/{name}.j2", f"{name}.j2"]
        else:
            candidates = [template]
        for layer in self.layers:
            for cand in candidates:
                path = layer / cand
                if path.is_file():
                    text = path.read_text(encoding="utf-8")
                    return text, str(path), lambda: True
        raise jinja2.TemplateNotFound(template)


_DICT_ATTRS = frozenset(dir(dict))


class _Environment(jinja2.Environment):
    """A Jinja environment that also remembers the templates TemplateSet.get looked up."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded: dict[str, jinja2.Template] = {}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`obj.attribute` in a template, as Jinja answers it, without its exception for
        every dict key: a plain dict has no attribute but its methods (it has no instance
        dict), so for any other name Jinja's attribute lookup always fails over to the item."""
        if type(obj) is dict and attribute not in _DICT_ATTRS:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        try:  # from here on, jinja2.Environment.getattr (inlined: called for every a.b)
            return getattr(obj, attribute)
        except AttributeError:
            pass
        try:
            return obj[attribute]
        except (TypeError, LookupError, AttributeError):
            return self.undefined(obj=obj, name=attribute)


def make_environment(search_path: Sequence[Path]) -> jinja2.Environment:
    env = _Environment(
        loader=_LayeredLoader(search_path),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters["yaml_str"] = yamltext.quoted
    env.filters["yaml_flow"] = yamltext.flow
    env.filters["yaml_block"] = yamltext.block
    env.filters["shquote"] = shlex.quote
    env.filters["docker_quote"] = _docker_quote
    env.globals["heredoc"] = heredoc_delimiter
    return env


class TemplateSet:
    """Template lookup: task `templates/`, then the dataset's `templates/`, then gen's own.

    Within each layer `<kind>/<name>.j2` wins over `<name>.j2`; a layer wins over the next.
    """

    def __init__(self, project_templates: Path | None) -> None:
        self._project = project_templates if project_templates and project_templates.is_dir() \
            else None
        self._envs: dict[Path | None, jinja2.Environment] = {}

    def env_for(self, task_dir: Path, has_override: bool | None = None) -> jinja2.Environment:
        """The environment for a task; `has_override`: whether it has a templates/ dir
        (looked up when not given)."""
        if has_override is None:
            has_override = (task_dir / "templates").is_dir()
        key = task_dir / "templates" if has_override else None
        env = self._envs.get(key)
        if env is None:
            path = [p for p in (key, self._project) if p is not None] + [PACKAGE_TEMPLATES]
            env = make_environment(path)
            if key is not None:  # one task's own templates: not kept past the task
                return env
            self._envs[key] = env
        return env

    def get(self, task: Task, name: str, env: jinja2.Environment | None = None
            ) -> jinja2.Template:
        env = env or self.env_for(task.path)
        key = f"{task.kind}::{name}"
        loaded = env.loaded if isinstance(env, _Environment) else {}
        got = loaded.get(key)
        if got is not None:
            return got
        try:
            got = loaded[key] = env.get_template(key)
            return got
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"template syntax error: {exc.message}", file=exc.filename,
                             line=exc.lineno, hint="fix the template") from None
        except jinja2.TemplateNotFound:
            raise InputError(f"no template for '{name}'", file=f"templates/{name}.j2",
                             hint="restore the default template or add an override") from None

    def fingerprint(self) -> str:
        """Digest of every template file that could be used (for the render cache)."""
        h = hashlib.sha256()
        for root in (self._project, PACKAGE_TEMPLATES):
            if root is None:
                continue
            for f in walk_files(root):
                h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()
