"""Bench: the cost of handling one front-end beacon (``BeaconEndpoint.handle``).

Ours: rate limit, parse, every check, and the 7 statsd stats of a real
Chromium beacon sent through ``record()`` in one ``statsd_batch`` (one
datagram), to a live UDP listener on 127.0.0.1.

Baseline: the least any receiver does for the same beacon: ``orjson.loads``
of the body and the same 7 already-formatted lines through a raw
``statsd`` pipeline (one datagram), with no checks at all. The ratio is the
price of the checks and the facade. A refused beacon (one bad mark) is the
second row: its baseline is the parse alone.

    python -m bench.bench_beacon
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import orjson
import statsd

import fxa_metrics as fm
from fxa_metrics._recv_udp import UdpReceiver

from ._timing import compare

BEACON: dict[str, Any] = {
    "v": 1,
    "page": "settings",
    "type": "navigate",
    "device": "desktop",
    "nav": {
        "redirectStart": 0,
        "redirectEnd": 0,
        "fetchStart": 4.3,
        "domainLookupStart": 4.3,
        "domainLookupEnd": 4.3,
        "connectStart": 4.3,
        "secureConnectionStart": 0,
        "connectEnd": 4.3,
        "requestStart": 20.5,
        "responseStart": 32.1,
        "responseEnd": 43.3,
        "domInteractive": 86.2,
        "domContentLoadedEventStart": 86.2,
        "domContentLoadedEventEnd": 86.3,
        "domComplete": 86.7,
        "loadEventStart": 86.7,
        "loadEventEnd": 87.7,
    },
    "paint": {"first-paint": 70.1, "first-contentful-paint": 70.1},
    "vitals": {"lcp": 120.5, "cls": 0.0123, "fcp": 70.1, "ttfb": 32.1},
}
TAGS = ",device_type=desktop,nav_type=navigate,page=settings"
STATS = [
    ("frontend.ttfb", 32.1),
    ("frontend.fcp", 70.1),
    ("frontend.lcp", 120.5),
    ("frontend.dom_interactive", 86.2),
    ("frontend.dom_content_loaded", 86.3),
    ("frontend.load", 87.7),
]


def run(n: int = 2000, rounds: int = 9) -> list[dict[str, Any]]:
    good = json.dumps(BEACON).encode()
    bad_beacon = json.loads(good)
    bad_beacon["nav"]["responseStart"] = 1.0
    bad = json.dumps(bad_beacon).encode()
    rows = []
    with UdpReceiver(keep=False) as rx:
        client = statsd.StatsClient(rx.host, rx.port, prefix="fxa-content-server")
        fm.configure(
            service="fxa-content-server",
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="production",
            metrics_yaml=(),
            glean_stream=io.StringIO(),
            mozlog_handler="never",
            strict=False,
            statsd_host=rx.host,
            statsd_port=rx.port,
            statsd_prefix="fxa-content-server",
        )
        # No rate limit in the way: the bench is one client sending many beacons.
        endpoint = fm.BeaconEndpoint(pages=["settings"], per_minute=1e12, burst=10**12)

        def raw() -> None:
            data = orjson.loads(good)
            pipe = client.pipeline()
            for name, value in STATS:
                pipe.timing(name + TAGS, value)
            pipe.gauge("frontend.cls" + TAGS, data["vitals"]["cls"])
            pipe.send()

        try:
            assert endpoint.handle(good, "text/plain", "192.0.2.1").status == 204
            rows.append(
                compare(
                    "beacon: handle one valid beacon vs orjson.loads + raw statsd pipeline",
                    lambda: endpoint.handle(good, "text/plain", "192.0.2.1"),
                    raw,
                    goal="info",
                    n=n,
                    rounds=rounds,
                )
            )
            assert endpoint.handle(bad, "text/plain", "192.0.2.1").status == 400
            rows.append(
                compare(
                    "beacon: refuse one bad beacon (400, counted) vs orjson.loads",
                    lambda: endpoint.handle(bad, "text/plain", "192.0.2.1"),
                    lambda: orjson.loads(bad),
                    goal="info",
                    n=n,
                    rounds=rounds,
                )
            )
            time.sleep(0.1)
        finally:
            fm.reset()
            client.close()
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
