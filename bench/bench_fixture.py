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

Per-test overhead = (suite time - bare suite time) / 500. The suites run
interleaved, ``REPEATS`` rounds, and each figure is the median. The one-time
parse of FxA's definitions (once per session, shared by every capture) is in
the ``ours`` suite time, so it is in the overhead too. Target: ours <= 2x
MetricsMock's.

    python -m bench.bench_fixture
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
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


def _write(base: Path) -> dict[str, Path]:
    out = {}
    for name, (header, body) in SUITES.items():
        d = base / name
        d.mkdir()
        (d / "pytest.ini").write_text("[pytest]\n")
        text = "import pytest\nimport fxa_metrics as fm\n" + header
        text += "".join(body.format(i=i) for i in range(N))
        (d / f"test_{name}.py").write_text(text)
        out[name] = d
    return out


def _run(d: Path) -> float:
    start = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=d,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if r.returncode != 0 or f"{N} passed" not in r.stdout:
        raise RuntimeError(f"suite {d.name} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return elapsed


def run(repeats: int = REPEATS) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        dirs = _write(Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in dirs}
        for _ in range(repeats):
            for name, d in dirs.items():  # interleaved: load bursts hit every suite alike
                times[name].append(_run(d))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    rows = []
    for label, ours, theirs in (
        ("idle", "ours", "markus"),
        ("recording one record and asserting it", "ours_recording", "markus_recording"),
    ):
        ours_us = (med[ours] - med["bare"]) / N * 1e6
        theirs_us = (med[theirs] - med["bare"]) / N * 1e6
        rows.append(
            {
                "name": f"pytest fixture overhead per test, {label}: fxa_metrics_capture "
                f"(FxA definitions) vs markus metricsmock, {N} tests in one run",
                "ours_us": round(ours_us, 1),
                "baseline_us": round(theirs_us, 1),
                "ratio": round(ours_us / theirs_us, 2) if theirs_us > 0 else float("inf"),
                "goal": f"<= {TARGET}",
                "suites_s": {name: round(t, 2) for name, t in med.items()},
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
