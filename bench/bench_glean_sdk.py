"""glean-sdk counter row: ``record()`` of a glean-sdk counter against glean-sdk's own ``add()``.

Both sides add to a counter of the same started SDK, in interleaved ABBA
rounds by the calling thread's CPU time (bench/_timing.py): what a request
pays. Ours is what a caller writes, ``fm.record("svc.requests")``: the facade,
the definitions check, the consent gate (the service switch) and the sink,
then the SDK's ``add``. The baseline is the SDK's generated-style metric
object, ``CounterMetricType(...).add(1)``.

Each ``add`` on either side is queued for the SDK's own thread, which writes it
to disk (~50-70 µs of system time each, on another core). That work is the
same on both sides and is *not* counted (it is not on the caller's thread);
the backlog it leaves competes for the cores with both sides alike.

Run: ``python -m bench.bench_glean_sdk`` (``python -m bench`` for every route).
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import fxa_metrics as fm
from fxa_metrics import _facade

from . import _fxa
from ._timing import abba, loop

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "glean_sdk"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_started(timeout: float = 60.0) -> None:
    """Wait for the SDK to start (on its own thread): a row must not time the pre-start queue."""
    rt = _facade.get_runtime()
    assert rt is not None
    (sink,) = rt.sinks["glean_sdk"]
    fm.record("svc.requests")  # starts the SDK
    deadline = time.monotonic() + timeout
    while getattr(sink, "_appliers", None) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if getattr(sink, "_appliers", None) is None:
        raise AssertionError(f"glean-sdk did not start within {timeout:.0f} s")


def run() -> list[dict[str, Any]]:
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
            _wait_started()
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
            rows = [
                abba(
                    "glean-sdk counter: record(name) vs the SDK's counter.add()",
                    loop(lambda: record("svc.requests")),
                    loop(lambda: raw.add(1)),
                    target="<= 1.2",
                    ours_label='fm.record("svc.requests") of a started glean-sdk counter',
                    base_label="glean-sdk CounterMetricType(...).add(1)",
                )
            ]
            _fxa.check_clean("glean-sdk counter")
        finally:
            fm.reset(1.0)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
