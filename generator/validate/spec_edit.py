"""Writing derived FAIL_TO_PASS / PASS_TO_PASS lists into a task's spec: only those lists' values
change (block style, the existing indentation); every other byte is kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

from generator.core import yamltext
from generator.core.fsutil import atomic_write
from generator.spec.model import SPEC_FILE, SweTask

__all__ = [
    "replace_spec_lists", "write_derived",
]


def _top_key_nodes(text: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(node, yaml.MappingNode):
        raise ValueError("the spec is not a mapping")
    return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def replace_spec_lists(text: str, lists: Mapping[str, Sequence[str]]) -> str:
    """`text` with only the given top-level list values replaced (block style, the existing
    indentation); every other byte is kept. A missing key is appended at the end."""
    for key, items in lists.items():
        nodes = _top_key_nodes(text)
        rendered = [yamltext.item(i) for i in items]
        if key not in nodes:
            block = f"{key}: []\n" if not items else \
                f"{key}:\n" + "".join(f"  - {r}\n" for r in rendered)
            text = (text if text.endswith("\n") or not text else text + "\n") + block
            continue
        knode, vnode = nodes[key]
        colon = text.index(":", knode.end_mark.index)
        if isinstance(vnode, yaml.SequenceNode) and vnode.value:
            end = vnode.value[-1].end_mark.index
            first = vnode.value[0].start_mark
            line_start = text.rfind("\n", 0, first.index) + 1
            dash = text.rfind("-", line_start, first.index)
            indent = " " * (dash - line_start) if not vnode.flow_style and dash >= 0 else "  "
            if vnode.flow_style:
                end = vnode.end_mark.index
        else:
            end = vnode.end_mark.index
            indent = "  "
        new = "".join(f"\n{indent}- {r}" for r in rendered) if items else " []"
        text = text[:colon + 1] + new + text[end:]
    return text


def write_derived(task: SweTask, f2p: Sequence[str], p2p: Sequence[str]) -> bool:
    """Write FAIL_TO_PASS / PASS_TO_PASS into the task's spec (atomically); False when the spec
    already says exactly that."""
    path = task.path / SPEC_FILE
    old = path.read_text(encoding="utf-8")
    new = replace_spec_lists(old, {"FAIL_TO_PASS": list(f2p), "PASS_TO_PASS": list(p2p)})
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    before, after = yaml.load(old, Loader=loader), yaml.load(new, Loader=loader)
    assert after.get("FAIL_TO_PASS") == list(f2p) and (after.get("PASS_TO_PASS") or []
                                                          ) == list(p2p), "derive edit failed"
    for k in ("FAIL_TO_PASS", "PASS_TO_PASS"):
        before.pop(k, None)
        after.pop(k, None)
    assert before == after, "derive edit changed other fields"
    if new == old:
        return False
    atomic_write(path, new.encode("utf-8"), mode=path.stat().st_mode & 0o777)
    return True
