"""``make soak``: a million records through every sink, and the property suites at length.

Not part of ``make test`` (it takes minutes). Two parts:

1. Each sink in a fresh interpreter, without ``PYTHONUNBUFFERED``: N records
   (default 1,000,000; ``SOAK_N`` to change) through the Glean and MozLog
   lines (to ``/dev/null``), statsd (a real UDP receiver on 127.0.0.1),
   Sentry (a real HTTP receiver: most crashes overflow the SDK's queue, and
   every one is either received or counted), plus N distinct bad metric
   names. Each prints its RSS before and after, its time, and what was lost
   and counted.
2. The hypothesis suites with the ``soak`` profile (``HYPOTHESIS_PROFILE=soak``,
   see tests/conftest.py): every property test's example budget is raised.
   The number of examples that ran is printed, per test and in total.

``python -m bench.soak [--only sinks|hypothesis] [--sinks glean,statsd,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}

_CHILD = textwrap.dedent(
    """
    import io, json, os, sys, time
    import fxa_metrics as fm
    from fxa_metrics._recv_http import Receiver
    from fxa_metrics._recv_udp import UdpReceiver

    N = int(sys.argv[2])
    ROOT = sys.argv[3]

    def rss_kb():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def configure(**kw):
        settings = dict(
            service="fxa-soak", app_id="accounts_backend_dev", app_version="1.0.0",
            channel="development", metrics_yaml=ROOT + "/metrics.yaml",
            pings_yaml=ROOT + "/pings.yaml", mozlog_handler="always", strict=False,
        )
        settings.update(kw)
        fm.configure(**settings)

    def crash():
        try:
            raise ValueError("soak")
        except ValueError as e:
            fm.record(fm.Crash(e))

    def run(kind):
        extra = {}
        if kind == "glean":
            configure()
            one = lambda i: fm.record("login.complete", extra={"reason": "password", "attempts": i})
        elif kind == "mozlog":
            configure()
            one = lambda i: fm.record(fm.Log("soak.line", {"seq": i, "path": "/v1/x"}))
        elif kind == "statsd":
            rx = UdpReceiver(keep=False)
            configure(statsd_host=rx.host, statsd_port=rx.port)
            one = lambda i: fm.record(fm.Timing("soak.timing", 1.5, tags={"k": "v"}))
            extra["receiver"] = rx
        elif kind == "sentry":
            recv = Receiver()
            configure(sentry_dsn=recv.dsn())
            one = lambda i: crash()
            extra["receiver"] = recv
        elif kind == "bad_names":
            configure()
            one = lambda i: fm.record(f"no.such.metric{i}")
        else:
            raise SystemExit(f"unknown sink {kind}")
        for i in range(1000):  # warm up: caches and the first distinct names are kept
            one(-1 - i)
        before = rss_kb()
        start = time.perf_counter()
        for i in range(N):
            one(i)
        took = time.perf_counter() - start
        fm.flush(timeout=30.0)
        after = rss_kb()
        snap = fm.stats()
        out = {
            "sink": kind, "n": N, "seconds": round(took, 1),
            "us_per_record": round(took / N * 1e6, 2),
            "rss_before_kb": before, "rss_after_kb": after, "rss_growth_kb": after - before,
            "drops": snap.drops, "errors": snap.errors,
            "counters": len(snap.drops_by_metric),
        }
        if kind == "statsd":
            out["received"] = extra["receiver"].count
        if kind == "sentry":
            out["received_envelopes"] = len(extra["receiver"].envelopes())
        fm.reset(timeout=5.0)
        for r in extra.values():
            r.close()
        print(json.dumps(out), file=sys.stderr)

    # Lines go to /dev/null: a real fd, written as a service writes stdout.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    run(sys.argv[1])
    """
)

SINKS = ("glean", "mozlog", "statsd", "sentry", "bad_names")


def soak_sinks(n: int, sinks: tuple[str, ...] = SINKS) -> list[dict[str, Any]]:
    rows = []
    for kind in sinks:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, kind, str(n), str(ROOT)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=ENV,
            timeout=3600,
            check=False,
        )
        results = [ln for ln in proc.stderr.splitlines() if ln.startswith('{"sink"')]
        if proc.returncode != 0 or not results:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"soak of {kind} failed (exit {proc.returncode})")
        row = json.loads(results[-1])
        # Warning lines on stderr besides the result: bounded whatever N is.
        row["stderr_lines"] = len(proc.stderr.splitlines()) - 1
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


_PASSING = re.compile(r"(\d+) passing(?: examples?)?[,\s]")
_TEST = re.compile(r"^(tests/\S+::\S+):$")

HYPOTHESIS_SUITES = (
    "tests/test_hypothesis_record.py",
    "tests/test_statsd_props.py",
    "tests/test_scrub.py",
    "tests/test_mozlog.py",
    "tests/test_consent_machine.py",
    "tests/test_reliability_stats.py",
    "tests/test_reliability_facade.py",
)


def soak_hypothesis() -> dict[str, int]:
    suites = [s for s in HYPOTHESIS_SUITES if (ROOT / s).exists()]
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
        "--hypothesis-show-statistics", "-m", "hypothesis", *suites,
    ]  # fmt: skip
    env = {**ENV, "HYPOTHESIS_PROFILE": "soak"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    per_test: dict[str, int] = {}
    current = None
    for line in proc.stdout.splitlines():
        m = _TEST.match(line.strip())
        if m:
            current = m.group(1)
            continue
        m = _PASSING.search(line)
        if m and current is not None:
            per_test[current] = per_test.get(current, 0) + int(m.group(1))
    for name, count in sorted(per_test.items()):
        print(f"{count:>8}  {name}")
    print(f"{sum(per_test.values()):>8}  examples in total, {len(per_test)} property tests")
    print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "(no pytest output)")
    if proc.returncode != 0:
        print(proc.stdout[-5000:], file=sys.stderr)
        raise SystemExit("the hypothesis soak found a failure")
    return per_test


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--only", choices=("sinks", "hypothesis"))
    parser.add_argument("--sinks", default=",".join(SINKS), help="comma-separated subset")
    args = parser.parse_args()
    sinks = tuple(s for s in args.sinks.split(",") if s)
    unknown = set(sinks) - set(SINKS)
    if unknown:
        parser.error(f"unknown sinks {sorted(unknown)}; known: {', '.join(SINKS)}")
    n = int(os.environ.get("SOAK_N", "1000000"))
    if args.only in (None, "sinks"):
        print(f"== {n} records through each sink (fresh interpreter each)")
        soak_sinks(n, sinks)
    if args.only in (None, "hypothesis"):
        print("== hypothesis suites, soak profile")
        soak_hypothesis()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
