"""Bench: the pytest fixture's per-test overhead against markus' ``MetricsMock``.

Each side is a generated suite of 500 tests run by pytest in one process (a
real ``python -m pytest`` run, plugins loaded as a user has them), wall time
from start to exit:

* ``bare``: 500 tests using no fixture (pytest's own cost per test);
* ``ours``: 500 tests taking ``fxa_metrics_capture`` with FxA's real
  definitions (tests/data/fxa-backend), idle, then each recording one event
  and asserting it;
* ``markus``: 500 tests taking markus' ``metricsmock`` fixture, idle, then
  each incrementing a counter and asserting it.

What is timed is each test's setup, call and teardown phases (pytest hook
wrappers in the generated conftest), in CPU time of the pytest process: on a
shared 2-core machine, wall time of whole runs swings by seconds with the
neighbours' load, and interpreter start-up is the same for every suite.
Per-test overhead = (phases per test - bare phases per test). Two rows each:
*all-in* (the 500 tests, so the first test's one-time costs, imports and the
one parse of FxA's definitions shared by every capture, are amortised over
500) and *steady* (the 499 after the first: what each further test costs).
The suites run interleaved, ``REPEATS`` rounds; each figure is the median.
Target: ours <= 2x MetricsMock's.

    python -m bench.bench_fixture
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FXA = ROOT / "tests" / "data" / "fxa-backend"
N = 500
REPEATS = 5
TARGET = 2.0

_MARK = (
    f"pytestmark = pytest.mark.fxa_metrics(metrics_yaml=r'{FXA / 'fxa-backend-metrics.yaml'}', "
    f"pings_yaml=r'{FXA / 'fxa-backend-pings.yaml'}', app_id='accounts_backend')\n"
)

SUITES: dict[str, tuple[str, str]] = {
    # name -> (module header, one test's body with {i})
    "bare": ("", "def test_{i}():\n    pass\n"),
    "markus": ("", "def test_{i}(metricsmock):\n    pass\n"),
    "ours": (_MARK, "def test_{i}(fxa_metrics_capture):\n    pass\n"),
    "markus_recording": (
        "import markus\nMETRICS = markus.get_metrics('fxa')\n",
        "def test_{i}(metricsmock):\n"
        "    METRICS.incr('login.attempt', tags=['result:ok'])\n"
        "    metricsmock.assert_incr_once('fxa.login.attempt', tags=['result:ok'])\n",
    ),
    "ours_recording": (
        _MARK,
        "def test_{i}(fxa_metrics_capture):\n"
        "    fm.record('account.password_reset')\n"
        "    fxa_metrics_capture.assert_event_once('account.password_reset')\n",
    ),
}


# Times every test's phases in CPU time of this process; written at session end.
CONFTEST = """
import json, time
import pytest

_per_test = {}


def _timed(item):
    start = time.process_time()
    yield
    _per_test[item.nodeid] = _per_test.get(item.nodeid, 0.0) + time.process_time() - start


pytest_runtest_setup = pytest.hookimpl(wrapper=True)(lambda item: (yield from _timed(item)))
pytest_runtest_call = pytest.hookimpl(wrapper=True)(lambda item: (yield from _timed(item)))
pytest_runtest_teardown = pytest.hookimpl(wrapper=True)(
    lambda item, nextitem: (yield from _timed(item))
)


def pytest_sessionfinish(session):
    with open("phases.json", "w") as f:
        json.dump(list(_per_test.values()), f)
"""


def _write(base: Path) -> dict[str, Path]:
    out = {}
    for name, (header, body) in SUITES.items():
        d = base / name
        d.mkdir()
        (d / "pytest.ini").write_text("[pytest]\n")
        (d / "conftest.py").write_text(CONFTEST)
        text = "import pytest\nimport fxa_metrics as fm\n" + header
        text += "".join(body.format(i=i) for i in range(N))
        (d / f"test_{name}.py").write_text(text)
        out[name] = d
    return out


def _run(d: Path) -> tuple[float, float]:
    """(all N tests' phases, the N - 1 after the first) in CPU seconds."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=d,
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0 or f"{N} passed" not in r.stdout:
        raise RuntimeError(f"suite {d.name} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    per_test: list[float] = json.loads((d / "phases.json").read_text())
    return sum(per_test), sum(per_test[1:])


def run(repeats: int = REPEATS) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        dirs = _write(Path(tmp))
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in dirs}
        for _ in range(repeats):
            for name, d in dirs.items():  # interleaved: load bursts hit every suite alike
                runs[name].append(_run(d))
    # All-in: the first test pays the session's one-time costs (imports, the one
    # parse of the definitions). Steady: every later test, what a suite tends to.
    allin = {k: statistics.median(a for a, _ in v) / N for k, v in runs.items()}
    steady = {k: statistics.median(s for _, s in v) / (N - 1) for k, v in runs.items()}
    rows = []
    for label, ours, theirs in (
        ("idle", "ours", "markus"),
        ("recording one record and asserting it", "ours_recording", "markus_recording"),
    ):
        for kind, per in (("all-in", allin), ("steady", steady)):
            ours_us = (per[ours] - per["bare"]) * 1e6
            theirs_us = (per[theirs] - per["bare"]) * 1e6
            rows.append(
                {
                    "name": f"pytest fixture overhead per test, {label}, {kind}: "
                    f"fxa_metrics_capture (FxA definitions) vs markus metricsmock, "
                    f"{N} tests in one run",
                    "ours_us": round(ours_us, 1),
                    "baseline_us": round(theirs_us, 1),
                    "ratio": round(ours_us / theirs_us, 2) if theirs_us > 0 else None,
                    "goal": f"<= {TARGET}",
                }
            )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
