"""One tag prefix: every run tag the code location sets reads `hpo-assets/...` (it had two, with `_` and `-`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hpo_assets

TAG = re.compile(r"^hpo[-_]assets/[a-z][a-z-]*$")  # a tag key, not a path (paths hold a dot or a second /)


def test_every_tag_key_has_the_one_prefix() -> None:
    found: dict[str, list[str]] = {}
    for path in Path(hpo_assets.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and TAG.match(node.value):
                found.setdefault(node.value, []).append(path.name)
    assert {"hpo-assets/profile", "hpo-assets/host", "hpo-assets/pid"} <= set(found)
    assert [key for key in found if not key.startswith("hpo-assets/")] == []
