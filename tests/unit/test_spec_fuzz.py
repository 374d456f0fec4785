"""Property: whatever YAML a user writes, spec parsing either succeeds or raises one SpecError
naming the spec file - it never crashes with another exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.core.errors import SpecError
from generator.spec.config import load_dataset_config
from generator.spec.model import Defaults
from generator.spec.project import load_task
from tests.helpers import (
    GEN_YAML,
    SWE_FILES,
    TERMINAL_FILES,
    build_file_tree,
    swe_spec,
    terminal_spec,
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)

TERMINAL_KEYS = ["kind", "instruction", "difficulty", "category", "tags", "author", "timeouts",
                 "resources", "environment", "files", "tests", "solution", "record_asciinema",
                 "bogus"]
SWE_KEYS = ["problem_statement", "repo", "version", "source", "base_commit", "patch",
            "test_patch", "FAIL_TO_PASS", "PASS_TO_PASS", "test_command", "log_parser",
            "eval_type", "hints", "environment_setup_commit", "environment"]


def _check(task_dir: Path, spec: Any) -> None:
    (task_dir / "task.spec.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    try:
        load_task(task_dir, Defaults(base_image="reg/img:1"), task_dir.parent.parent)
    except SpecError as exc:
        line = exc.one_line()
        assert "\n" not in line
        assert line.startswith("tasks/t1/task.spec.yaml")
        assert "(fix:" in line


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(TERMINAL_KEYS), value=values)
def test_terminal_field_fuzz(tmp_path: Path, key: str, value: Any) -> None:
    task_dir = tmp_path / "tasks" / "t1"
    if not task_dir.exists():
        build_file_tree(task_dir, TERMINAL_FILES)
    spec = terminal_spec()
    spec[key] = value
    _check(task_dir, spec)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(SWE_KEYS), value=values)
def test_swe_field_fuzz(tmp_path: Path, key: str, value: Any) -> None:
    task_dir = tmp_path / "tasks" / "t1"
    if not task_dir.exists():
        build_file_tree(task_dir, SWE_FILES)
    spec = swe_spec()
    spec[key] = value
    _check(task_dir, spec)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["name", "version", "source_date_epoch", "platforms", "registry",
                            "engine", "templates", "defaults", "extra"]), value=values)
def test_gen_yaml_fuzz(tmp_path: Path, key: str, value: Any) -> None:
    cfg = dict(GEN_YAML)
    cfg[key] = value
    (tmp_path / "gen.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    try:
        load_dataset_config(tmp_path)
    except SpecError as exc:
        assert exc.one_line().startswith("gen.yaml") and "(fix:" in exc.one_line()


@pytest.mark.parametrize("text", ["", "null\n", "42\n", "- a\n", "{kind: terminal}\n", "\t\x00"])
def test_degenerate_files(tmp_path: Path, text: str) -> None:
    task_dir = tmp_path / "tasks" / "t1"
    build_file_tree(task_dir, TERMINAL_FILES)
    (task_dir / "task.spec.yaml").write_text(text)
    with pytest.raises(SpecError):
        load_task(task_dir, Defaults(base_image="reg/img:1"), tmp_path)


# --- the fast YAML constructor builds exactly what PyYAML's SafeLoader builds -------------

yaml_keys = st.one_of(st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
yaml_docs = st.recursive(scalars | st.dates() | st.binary(max_size=4), lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(yaml_keys, inner, max_size=3)), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(yaml_docs, st.sampled_from([None, True, False]))
def test_fast_yaml_matches_pyyaml(doc: Any, flow: bool | None) -> None:
    from generator.spec.yamlload import _load_yaml

    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    # repr, not ==: 1 == True and 1 == 1.0, but a wrong type is a wrong spec
    assert repr(_load_yaml(text)) == repr(yaml.load(text, Loader=yaml.SafeLoader))


@pytest.mark.parametrize("text", [
    "base: &b {x: 1, y: [a, b]}\nother:\n  <<: *b\n  y: c\n",  # merge key
    "a: &a [1, 2]\nb: *a\nc: {k: *a}\n",  # shared alias
    "a: &a\n  - *a\n",  # recursive alias
    "? [1, 2]\n: x\n",  # unhashable key: PyYAML's error
    "1: one\ntrue: yes\n~: null\n2001-12-14: date\n",  # non-string keys
    "s: !!str 12\nb: !!binary aGk=\nset: !!set {a, b}\nomap: !!omap [a: 1]\n",
    "",
    "--- plain\n",
])
def test_fast_yaml_irregular_documents(text: str) -> None:
    from generator.spec.yamlload import _load_yaml

    try:
        want = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        with pytest.raises(type(exc)):
            _load_yaml(text)
        return
    got = _load_yaml(text)
    assert repr(got) == repr(want)


plain_tokens = st.sampled_from([
    "yes", "No", "on", "OFF", "true", "False", "TRUE", "y", "n", "~", "null", "Null", "",
    "0", "-1", "+7", "0x1f", "0o17", "017", "1_000", "1e3", "1.5", ".5", ".inf", "-.Inf",
    ".nan", "190:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "=", "<<x", "a b",
    "python3", "tmux", "3.11", "v1.0", "- x",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), plain_tokens), max_size=8))
def test_plain_scalars_resolve_as_pyyaml(pairs: list[tuple[str, str]]) -> None:
    """Unquoted scalars (the remembered tags) resolve as PyYAML's own resolver says,
    also when the same value comes back in a later document."""
    from generator.spec.yamlload import _load_yaml

    text = "".join(f"{k}{i}: {v}\n" for i, (k, v) in enumerate(pairs))
    for doc in (text, "items:\n" + "".join(f"  - {v}\n" for _, v in pairs)):
        try:
            want = yaml.load(doc, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue
        assert repr(_load_yaml(doc)) == repr(want)
