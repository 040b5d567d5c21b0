"""docs/glean_sdk.md's examples run as written, each in a fresh interpreter (one SDK each)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tests.glean_sdk_support import run_child

DOC = ROOT / "docs" / "glean_sdk.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_doc_has_its_examples() -> None:
    assert len(BLOCKS) == 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_runs(index: int) -> None:
    pytest.importorskip("glean")
    code = BLOCKS[index] + '\nimport json\nprint(json.dumps({"ok": True}))\n'
    assert run_child(code, timeout=120) == {"ok": True}
