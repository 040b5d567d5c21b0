"""Start-up rows, each measurement in a fresh interpreter: what every process (and test) pays.

- ``import fxa_metrics``: the import alone, timed inside the child (its own
  start-up excluded), by the child's CPU time (a loaded machine inflates
  wall time, not CPU time); the wall time and an empty interpreter's start
  are kept for information;
- ``configure()`` with FxA's definitions vs glean_parser parsing the same
  YAML (``parse_objects``, consumed as fxa_metrics consumes it): both timed
  after their imports, in alternating children, one ratio per pair.

Run: ``python -m bench.bench_startup``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from ._fxa import METRICS, PINGS, ROOT
from ._timing import row

ROUNDS = 7

_IMPORT = """
import json, sys, time
c, w = time.process_time_ns(), time.perf_counter_ns()
import fxa_metrics
c, w = time.process_time_ns() - c, time.perf_counter_ns() - w
print(json.dumps({"cpu_ms": c / 1e6, "wall_ms": w / 1e6, "asyncio": "asyncio" in sys.modules,
                  "modules": len(sys.modules)}))
"""

_CONFIGURE = f"""
import json, os, time
import fxa_metrics as fm, glean_parser.parser
with open(os.devnull, "w") as devnull:
    c = time.process_time_ns()
    fm.configure(service="fxa-auth-api", app_id="accounts_backend", app_version="1.0.0",
                 channel="production", metrics_yaml={str(METRICS)!r}, pings_yaml={str(PINGS)!r},
                 glean_stream=devnull, mozlog_handler="never")
    c = time.process_time_ns() - c
print(json.dumps({{"cpu_ms": c / 1e6}}))
"""

_PARSE = f"""
import json, pathlib, time, warnings
import fxa_metrics, glean_parser.parser as parser
paths = [pathlib.Path({str(METRICS)!r}), pathlib.Path({str(PINGS)!r})]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    c = time.process_time_ns()
    result = parser.parse_objects(paths, {{"do_not_disable_expired": True}})
    errors = list(result)
    tree = result.value
    c = time.process_time_ns() - c
assert not errors and tree
print(json.dumps({{"cpu_ms": c / 1e6}}))
"""


def _child(code: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _empty_start_ms() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=300)
    return (time.perf_counter() - t0) * 1000.0


def _import_row() -> dict[str, Any]:
    runs = [_child(_IMPORT) for _ in range(ROUNDS)]
    cpu = [r["cpu_ms"] for r in runs]
    empty = [_empty_start_ms() for _ in range(ROUNDS)]
    return row(
        "import fxa_metrics (ms of CPU, fresh interpreter)",
        cpu,
        target="<= 40",
        ours=statistics.median(cpu),
        base=None,
        unit="ms",
        ours_label="import fxa_metrics, timed inside a fresh interpreter",
        base_label="(absolute target)",
        wall_ms_median=statistics.median(r["wall_ms"] for r in runs),
        empty_interpreter_wall_ms_median=statistics.median(empty),
        imports_asyncio=any(r["asyncio"] for r in runs),
        modules_after_import=runs[0]["modules"],
    )


def _configure_row() -> dict[str, Any]:
    ours: list[float] = []
    base: list[float] = []
    for i in range(ROUNDS):
        pair = (_CONFIGURE, _PARSE) if i % 2 == 0 else (_PARSE, _CONFIGURE)
        got = {code: _child(code)["cpu_ms"] for code in pair}
        ours.append(got[_CONFIGURE])
        base.append(got[_PARSE])
    return row(
        "configure() with FxA's definitions vs glean_parser parsing them",
        [o / b for o, b in zip(ours, base, strict=True)],
        target="<= 0.25",
        ours=statistics.median(ours),
        base=statistics.median(base),
        unit="ms",
        ours_label="fm.configure(FxA metrics + pings YAML), after import",
        base_label="glean_parser.parser.parse_objects(same files), consumed, after import",
        ours_min=min(ours),
        base_min=min(base),
    )


def run() -> list[dict[str, Any]]:
    return [_import_row(), _configure_row()]


if __name__ == "__main__":
    for r in run():
        print(r)
