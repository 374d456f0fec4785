"""core.yamltext, the one YAML writer: every value round-trips through a YAML reader, whatever
characters it holds (NEL, U+2028/U+2029, C1 controls, the BOM), and a line-based reader sees one
line per scalar."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from generator.core import yamltext

text_st = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                  min_size=1, max_size=200)
tricky = ["a\u2028b", "a\u2029b", "a\x85b", "\ufeffx", "a\x7fb", "a\x9fb", "\ufffe", "tab\there",
          "café", "new\nline", '"q"', "- dash", "#", "[weird]", "x.py::a[1-2]"]
json_st = st.recursive(st.none() | st.booleans() | st.integers() | text_st,
                       lambda inner: st.lists(inner, max_size=4), max_leaves=8)


def _load(line: str) -> Any:
    return yaml.safe_load(f"k: {line}\n")["k"]


@given(text_st)
def test_block_round_trips(text: str) -> None:
    assert yaml.safe_load("instruction: " + yamltext.block(text, 2) + "\n")["instruction"] == text


@given(text_st)
def test_quoted_round_trips_on_one_line(text: str) -> None:
    out = yamltext.quoted(text)
    assert len(out.splitlines()) == 1  # str.splitlines splits at U+2028, NEL, ...
    assert _load(out) == text


@given(json_st)
def test_scalar_round_trips(value: Any) -> None:
    out = yamltext.scalar(value)
    assert len(out.splitlines()) == 1
    assert _load(out) == value


@given(text_st)
def test_item_round_trips(text: str) -> None:
    out = yamltext.item(text)
    assert len(out.splitlines()) == 1
    assert yaml.safe_load(f"- {out}\n") == [text]


@pytest.mark.parametrize("text", tricky)
def test_the_characters_yaml_treats_as_breaks_are_escaped(text: str) -> None:
    for out in (yamltext.quoted(text), yamltext.scalar(text), yamltext.item(text),
                yamltext.flow([text])):
        assert not set(out) & {"\u2028", "\u2029", "\x85", "\ufeff", "\x7f", "\x9f", "\ufffe"}
    assert _load(yamltext.flow([text, "b"])) == [text, "b"]


def test_items_stay_as_a_person_writes_them() -> None:
    assert yamltext.item("x.py::a") == "x.py::a"
    assert yamltext.item("[weird]") == "'[weird]'"
    assert yamltext.item("a\u2028b") == '"a\\u2028b"'
