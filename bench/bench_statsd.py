"""Bench: ``record(Timing(...))`` against raw ``statsd.StatsClient.timing``.

Both send to the same live UDP listener on 127.0.0.1 (a thread draining the
socket), in one run. Repeats alternate ours and raw, so a burst of load on a
shared machine hits a pair alike; ``ours_us``/``baseline_us`` are medians of the
repeats (µs per call) and ``ratio`` is the median of the per-pair ratios. Ours
includes building the ``Timing`` record, as a caller does. Goal: ratio <= 1.3.

The second row (two tags) is for information: the baseline there is handed the
already-encoded tagged name, while ours checks and encodes the tags.

    python -m bench.bench_statsd
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import statsd

import fxa_metrics as fm
from fxa_metrics._recv_udp import UdpReceiver

GOAL = 1.3
LOOPS = 2000
REPEATS = 31


def _per_call_us(fn: Callable[[], None], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops * 1e6


def _compare(
    name: str,
    ours: Callable[[], None],
    raw: Callable[[], None],
    loops: int,
    repeats: int,
    goal: str = f"<= {GOAL}",
) -> dict[str, Any]:
    ours(), raw()  # warm up: resolve, cache the name checks, fault in the code paths
    ours_t, raw_t = [], []
    for i in range(repeats):
        # Alternate which goes first, so neither always runs on a warmer cache.
        if i % 2:
            raw_t.append(_per_call_us(raw, loops))
            ours_t.append(_per_call_us(ours, loops))
        else:
            ours_t.append(_per_call_us(ours, loops))
            raw_t.append(_per_call_us(raw, loops))
    return {
        "name": name,
        "ours_us": round(statistics.median(ours_t), 2),
        "baseline_us": round(statistics.median(raw_t), 2),
        "ratio": round(statistics.median(o / r for o, r in zip(ours_t, raw_t, strict=True)), 2),
        "goal": goal,
    }


def run(loops: int = LOOPS, repeats: int = REPEATS) -> list[dict[str, Any]]:
    rows = []
    with UdpReceiver(keep=False) as rx:
        client = statsd.StatsClient(rx.host, rx.port, prefix="fxa-auth-server")
        fm.configure(
            service="fxa-auth-server",
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="production",
            metrics_yaml=(),
            glean_stream=io.StringIO(),
            mozlog_handler="never",
            strict=False,
            statsd_host=rx.host,
            statsd_port=rx.port,
            statsd_prefix="fxa-auth-server.",
        )
        try:
            record, timing = fm.record, fm.Timing
            rows.append(
                _compare(
                    "statsd timing: record(Timing) vs StatsClient.timing",
                    lambda: record(timing("url_request", 12.5)),
                    lambda: client.timing("url_request", 12.5),
                    loops,
                    repeats,
                )
            )
            tags = {"method": "POST", "code": 200}
            rows.append(
                _compare(
                    "statsd timing, 2 tags: record(Timing) vs timing of the encoded name",
                    lambda: record(timing("url_request", 12.5, tags=tags)),
                    lambda: client.timing("url_request,code=200,method=POST", 12.5),
                    loops,
                    repeats,
                    goal="info",
                )
            )
            sent = 2 * (2 * loops * repeats + 2)  # + the warm-up calls
            deadline = time.monotonic() + 5.0
            while rx.count < sent and time.monotonic() < deadline:
                time.sleep(0.01)
            for row in rows:
                row["listener_received"] = f"{rx.count}/{sent} (whole run; UDP may drop)"
        finally:
            fm.reset()
            client.close()
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
