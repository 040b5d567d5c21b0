"""No torn lines under threads: 8 threads x 20k records into one real stream.

The records go to the process's real stdout (a file here, as a container's
stdout is a pipe or file), Glean events and MozLog lines mixed, exactly as a
threaded WSGI worker writes them. Every line must parse and the count must be exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, validate_payload

THREADS = 8
PER_THREAD = 20_000

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import fxa_metrics as fm

    metrics_yaml, pings_yaml, threads, per_thread = sys.argv[1:5]
    threads, per_thread = int(threads), int(per_thread)
    fm.configure(
        service="fxa-auth-api",
        app_id="accounts_backend",
        app_version="1.0",
        channel="test",
        metrics_yaml=metrics_yaml,
        pings_yaml=pings_yaml,
        mozlog_handler="always",  # both sinks write to this process's real stdout
        strict=True,
    )
    start = threading.Barrier(threads)

    def work(t):
        start.wait()  # all threads contend from the first record
        with fm.bind(uid=f"{t:032x}", flow_id="x" * 200, user_agent="ua", ip_address="::1"):
            for i in range(per_thread):
                if i % 2:
                    fm.record("login.complete", extra={"reason": "r" * 400, "attempts": i})
                else:
                    fm.record(fm.Log("request.summary", {"t": t, "i": i, "pad": "p" * 300}))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    fm.reset()
    sys.stdout.flush()
    assert fm.stats().dropped == 0
    """
)


def test_threads_write_whole_lines_with_an_exact_count(tmp_path: Path) -> None:
    out_path = tmp_path / "stdout.log"
    began = time.monotonic()
    args = [str(EXAMPLE_METRICS), str(EXAMPLE_PINGS), str(THREADS), str(PER_THREAD)]
    with out_path.open("wb") as out:
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, *args],
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    elapsed = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr.decode()
    data = out_path.read_bytes()
    assert data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    assert len(lines) == THREADS * PER_THREAD
    kinds: Counter[str] = Counter()
    per_thread: Counter[int] = Counter()
    for i, raw in enumerate(lines):
        line = json.loads(raw)  # a torn or interleaved line fails here
        kinds[line["Type"]] += 1
        if line["Type"] == "request.summary":
            per_thread[line["Fields"]["t"]] += 1
        elif i % 997 == 0:
            # Spot-check payloads (validating all 80k would dominate the test's time).
            validate_payload(json.loads(line["Fields"]["payload"]))
    half = THREADS * PER_THREAD // 2
    assert kinds == {"glean-server-event": half, "request.summary": half}
    assert per_thread == dict.fromkeys(range(THREADS), PER_THREAD // 2)
    print(f"{THREADS * PER_THREAD} records in {elapsed:.1f} s")
