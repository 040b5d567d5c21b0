"""Bench: ``record()`` of a glean-sdk counter against glean-sdk's own ``counter.add()``.

Both sides add to a counter of the same started SDK, in one run, interleaved
(bench/_timing.py). Ours is what a caller writes, ``fm.record("svc.requests")``:
the facade, the definitions check, the consent gate (the service switch) and
the sink, then the SDK's ``add``. The baseline is the SDK's generated-style
metric object, ``CounterMetricType(...).add(1)``. Goal: ratio <= 1.2.

Each ``add`` is queued for the SDK's own thread, which writes it to disk
(~50-70 µs of system time each, on another core): keep ``n`` modest, or
the backlog, not the calls, dominates the run.

    python -m bench.bench_glean_sdk
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fxa_metrics as fm
from fxa_metrics import _facade

from ._timing import compare


def _thread_cpu_us(fn: Callable[[], Any], n: int) -> float:
    start = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - start) / n / 1000.0


def compare_cpu(
    name: str, ours: Callable[[], Any], baseline: Callable[[], Any], n: int, rounds: int
) -> dict[str, Any]:
    """The caller's own CPU time per call, rounds interleaved: what a request pays.

    Wall time also carries the SDK's writer thread, which competes for the
    same cores with whichever side runs next; the calling thread's CPU time
    does not.
    """
    a = [0.0] * rounds
    b = [0.0] * rounds
    for i in range(rounds):
        if i % 2:
            b[i] = _thread_cpu_us(baseline, n)
            a[i] = _thread_cpu_us(ours, n)
        else:
            a[i] = _thread_cpu_us(ours, n)
            b[i] = _thread_cpu_us(baseline, n)
    ours_us, base_us = statistics.median(a), statistics.median(b)
    return {
        "name": name,
        "ours_us": round(ours_us, 2),
        "baseline_us": round(base_us, 2),
        "ratio": round(ours_us / base_us, 3),
        "goal": GOAL,
    }


GOAL = "<= 1.2"
DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "glean_sdk"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(n: int = 2000, rounds: int = 9) -> list[dict[str, Any]]:
    from glean.metrics import CommonMetricData, CounterMetricType, Lifetime

    # The SDK may still be writing its backlog when we leave (close() is bounded).
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as base:
        fm.configure(
            service="fxa-bench",
            app_id="accounts_backend",
            app_version="1.0.0",
            channel="test",
            metrics_yaml=DATA / "all-types-metrics.yaml",
            pings_yaml=DATA / "all-types-pings.yaml",
            glean_sdk_data_dir=base,
            # Nothing is uploaded during the run: no submission until reset().
            glean_sdk_server_endpoint=f"http://127.0.0.1:{_closed_port()}",
            glean_sdk_ping_interval=3600.0,
        )
        try:
            rt = _facade.get_runtime()
            assert rt is not None
            (sink,) = rt.sinks["glean_sdk"]
            fm.record("svc.requests")
            deadline = time.monotonic() + 60
            while getattr(sink, "_appliers", None) is None and time.monotonic() < deadline:
                time.sleep(0.01)  # the SDK starts on its own thread
            raw = CounterMetricType(
                CommonMetricData(
                    category="svc",
                    name="jobs",
                    send_in_pings=["service-stats"],
                    lifetime=Lifetime.PING,
                    disabled=False,
                )
            )
            record = fm.record
            row = compare(
                "glean-sdk counter: record(name) vs the SDK's counter.add()",
                lambda: record("svc.requests"),
                lambda: raw.add(1),
                goal=GOAL,
                n=n,
                rounds=rounds,
                ours_label='fm.record("svc.requests")',
                baseline_label="CounterMetricType(...).add(1)",
            )
            cpu = compare_cpu(
                "glean-sdk counter, caller's thread CPU: record(name) vs counter.add()",
                lambda: record("svc.requests"),
                lambda: raw.add(1),
                n,
                rounds,
            )
            assert fm.stats().dropped == 0
        finally:
            fm.reset(1.0)
    return [row, cpu]


if __name__ == "__main__":
    for row in run():
        print(row)
