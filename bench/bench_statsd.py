"""statsd rows: ``record(Timing(...))`` vs raw ``StatsClient.timing``, listener out of process.

Both sides send to one UDP listener in a child process (bench/_receivers.py),
so receiving costs the measuring process nothing. Ours includes building the
``Timing`` record, as a caller does. The two-tag row is for information: the
baseline there is handed the already-encoded name, ours checks and encodes
the tags.

Run: ``python -m bench.bench_statsd``.
"""

from __future__ import annotations

import os
from typing import Any

import statsd

import fxa_metrics as fm

from . import _fxa
from ._receivers import UdpListener
from ._timing import abba, loop


def run() -> list[dict[str, Any]]:
    rows = []
    with UdpListener() as rx, open(os.devnull, "w") as devnull:
        client = statsd.StatsClient(rx.host, rx.port, prefix="fxa-auth-server")
        _fxa.configure(
            metrics_yaml=(),
            glean_stream=devnull,
            statsd_host=rx.host,
            statsd_port=rx.port,
            statsd_prefix="fxa-auth-server.",
        )
        record, timing = fm.record, fm.Timing
        tags = {"method": "POST", "code": 200}
        try:
            rows.append(
                abba(
                    "statsd timing vs raw StatsClient.timing, listener out of process",
                    loop(lambda: record(timing("url_request", 12.5))),
                    loop(lambda: client.timing("url_request", 12.5)),
                    target="<= 1.15",
                    ours_label='fm.record(fm.Timing("url_request", 12.5)), prefix set',
                    base_label='statsd.StatsClient.timing("url_request", 12.5), same listener',
                )
            )
            rows.append(
                abba(
                    "statsd timing, 2 tags vs raw timing of the encoded name",
                    loop(lambda: record(timing("url_request", 12.5, tags=tags))),
                    loop(lambda: client.timing("url_request,code=200,method=POST", 12.5)),
                    target="(info)",
                    ours_label="the same with tags={method, code} (checked, sorted, encoded)",
                    base_label="raw timing of the already-encoded tagged name",
                )
            )
            _fxa.check_clean("statsd")
        finally:
            fm.reset()
            client.close()
    for r in rows:
        r["listener_received"] = rx.received
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
