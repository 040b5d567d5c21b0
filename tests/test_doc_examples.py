"""Every code example in README.md and docs/*.md runs, as written.

- a ``python`` block runs as a script in a fresh interpreter (an interpreter
  session, ``>>>``, as a doctest);
- a ``python`` block preceded by ``<!-- pytest -->`` is a test module: it runs
  under pytest (the installed plugin and all) and every test in it must pass;
- a ``sh`` block runs under ``bash -e`` with the virtualenv's ``fxa-metrics``
  on PATH;
- a block preceded by ``<!-- no-run: REASON -->`` is skipped, with its reason.

Each runs in a scratch directory holding copies of the example metrics.yaml
and pings.yaml, which the examples refer to.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(?P<kind>no-run|pytest)\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")
# Examples that cannot run standalone are marked; keep them few.
MAX_NO_RUN = 13


class Block(NamedTuple):
    doc: Path
    line: int
    lang: str
    code: str
    mark: str | None
    reason: str | None

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def _blocks(doc: Path) -> list[Block]:
    lines = doc.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or not m.group("lang"):
            i += 1
            if m:  # a plain ``` block (a diagram): skip to its end
                while i < len(lines) and not _FENCE.match(lines[i]):
                    i += 1
                i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not _FENCE.match(lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        prev = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        mark = _MARK.match(prev)
        out.append(
            Block(
                doc,
                start + 1,
                m.group("lang"),
                textwrap.dedent("\n".join(body)) + "\n",
                mark.group("kind") if mark else None,
                mark.group("reason") if mark else None,
            )
        )
    return out


BLOCKS = [b for doc in DOCS for b in _blocks(doc) if b.lang in ("python", "sh")]


def _scratch(tmp_path: Path) -> dict[str, str]:
    shutil.copy(EXAMPLE_METRICS, tmp_path / "metrics.yaml")
    shutil.copy(EXAMPLE_PINGS, tmp_path / "pings.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FXA_METRICS_", "STATSD_"))}
    env.pop("SENTRY_DSN", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_examples_were_found() -> None:
    assert len(BLOCKS) >= 15
    assert any(b.mark == "pytest" for b in BLOCKS)


def test_few_examples_are_exempt_and_each_says_why() -> None:
    exempt = [b for b in BLOCKS if b.mark == "no-run"]
    assert len(exempt) <= MAX_NO_RUN, [b.id for b in exempt]
    assert all(b.reason for b in exempt), [b.id for b in exempt if not b.reason]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_example_runs(block: Block, tmp_path: Path) -> None:
    if block.mark == "no-run":
        pytest.skip(f"marked no-run: {block.reason}")
    env = _scratch(tmp_path)
    if block.mark == "pytest":
        (tmp_path / "test_example.py").write_text(block.code)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    elif block.lang == "python" and block.code.lstrip().startswith(">>>"):
        # An interpreter session: run as a doctest, every output checked.
        (tmp_path / "session.txt").write_text(block.code)
        check = "import doctest, sys; sys.exit(doctest.testfile('session.txt').failed > 0)"
        cmd = [sys.executable, "-c", check]
    elif block.lang == "python":
        (tmp_path / "example.py").write_text(block.code)
        cmd = [sys.executable, "example.py"]
    else:
        cmd = ["bash", "-e", "-c", block.code]
    r = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, f"{block.id} failed:\n{block.code}\n{r.stdout}\n{r.stderr}"
    if block.mark == "pytest":
        assert re.search(r"\b\d+ passed\b", r.stdout), r.stdout
