"""Every Python example in docs/integrations.md and docs/health.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

BLOCK = re.compile(r"```python\n(.*?)```", re.S)
DOCS = ["docs/integrations.md", "docs/health.md"]
EXAMPLES = [
    pytest.param(code, id=f"{doc}#{i}")
    for doc in DOCS
    for i, code in enumerate(BLOCK.findall((ROOT / doc).read_text()))
]


@pytest.mark.parametrize("code", EXAMPLES)
def test_doc_example_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<doc>", "exec"), {"__name__": "doc_example"})


def test_the_quickstart_flask_setup_runs() -> None:
    text = (ROOT / "docs/quickstart.md").read_text()
    [block] = [b for b in BLOCK.findall(text) if "init_app" in b]
    exec(compile(block, "<quickstart>", "exec"), {"__name__": "doc_example"})
