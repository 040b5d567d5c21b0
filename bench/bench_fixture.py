"""Fixture rows: generated trivial tests with our pytest fixture vs with markus' MetricsMock.

Each test records one counter and asserts it, the smallest useful metrics
test. Two rows:

- 500 tests, ours with no Glean definitions (``metrics_yaml=()``): the same
  work as MetricsMock, which has no definitions;
- 30 tests, ours with FxA's definitions as ``metrics.yaml``/``pings.yaml`` in
  the working directory, as a host's suite has them (information: what each
  test pays today for loading them).
 Both suites run in their own fresh ``pytest`` process (ours with the
fxa_metrics plugin, the markus one without it: the plugin's import is part of
our cost), alternating, and the measure is the child's CPU time (user +
system, from ``os.wait4``), which a loaded machine inflates less than wall
time. The per-test figure is the whole session's CPU time over 500, start-up
included.

Run: ``python -m bench.bench_fixture``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._fxa import METRICS, PINGS
from ._timing import row

TESTS = 500
TESTS_FXA = 30
ROUNDS = 2

_OURS_HEAD = """
import fxa_metrics as fm
import pytest

pytestmark = pytest.mark.fxa_metrics(metrics_yaml=())
"""
_OURS_FXA_HEAD = """
import fxa_metrics as fm
import pytest

pytestmark = pytest.mark.fxa_metrics(metrics_yaml="metrics.yaml", pings_yaml="pings.yaml")
"""
_OURS_TEST = """
def test_{i}(fxa_metrics_capture):
    fm.record(fm.Counter("bench.hit"))
    fxa_metrics_capture.assert_incr("bench.hit")
"""

_MARKUS_HEAD = """
import markus
import pytest
from markus.testing import MetricsMock

metrics = markus.get_metrics("bench")


@pytest.fixture
def metricsmock():
    with MetricsMock() as mm:
        yield mm
"""
_MARKUS_TEST = """
def test_{i}(metricsmock):
    metrics.incr("hit")
    metricsmock.assert_incr("bench.hit")
"""


def _suite(root: Path, name: str, head: str, test: str, tests: int) -> Path:
    path = root / f"test_{name}.py"
    path.write_text(head + "".join(test.format(i=i) for i in range(tests)))
    return path


def _pytest_cpu_s(root: Path, path: Path, tests: int, *extra: str) -> float:
    """Run one suite in a fresh pytest; its CPU seconds (user + system)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    # Every run compiles (and assert-rewrites) its test file afresh, both sides
    # alike, so no warm-up run is needed.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    args = [sys.executable, "-m", "pytest", "-q", "-c", str(root / "pytest.ini")]
    args += ["-p", "no:cacheprovider", *extra, str(path)]
    proc = subprocess.Popen(
        args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or f"{tests} passed" not in out:
        raise AssertionError(f"{path.name} did not pass:\n{out[-3000:]}")
    return usage.ru_utime + usage.ru_stime


def _row(root: Path, label: str, ours_head: str, tests: int) -> dict[str, Any]:
    ours_path = _suite(root, f"ours_{tests}", ours_head, _OURS_TEST, tests)
    markus_path = _suite(root, f"markus_{tests}", _MARKUS_HEAD, _MARKUS_TEST, tests)

    def ours() -> float:
        return _pytest_cpu_s(root, ours_path, tests)

    def theirs() -> float:
        return _pytest_cpu_s(root, markus_path, tests, "-p", "no:fxa_metrics")

    o: list[float] = []
    b: list[float] = []
    for i in range(ROUNDS):
        if i % 2 == 0:
            o.append(ours())
            b.append(theirs())
        else:
            b.append(theirs())
            o.append(ours())
    return row(
        f"pytest fixture vs markus MetricsMock, {tests} trivial tests, {label} (CPU per test)",
        [x / y for x, y in zip(o, b, strict=True)],
        target="(info)",
        ours=statistics.median(o) / tests * 1000.0,
        base=statistics.median(b) / tests * 1000.0,
        unit="ms/test",
        ours_label=f"fxa_metrics_capture fixture, {label}: record a Counter, assert_incr",
        base_label="a MetricsMock fixture: markus incr, assert_incr",
    )


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        shutil.copy(METRICS, root / "metrics.yaml")
        shutil.copy(PINGS, root / "pings.yaml")
        return [
            _row(root, "no definitions", _OURS_HEAD, TESTS),
            _row(root, "FxA's definitions", _OURS_FXA_HEAD, TESTS_FXA),
        ]


if __name__ == "__main__":
    for r in run():
        print(r)
