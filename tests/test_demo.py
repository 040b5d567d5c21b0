"""``fxa-metrics demo`` runs end to end and shows what each sink received."""

from __future__ import annotations

import subprocess
import sys

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS, ROOT


def test_packaged_example_definitions_are_the_root_ones() -> None:
    # The demo ships its definitions inside the package; the root files are the
    # same example for readers and tests. They must never drift apart.
    pkg = ROOT / "src" / "fxa_metrics" / "example"
    assert (pkg / "metrics.yaml").read_text() == EXAMPLE_METRICS.read_text()
    assert (pkg / "pings.yaml").read_text() == EXAMPLE_PINGS.read_text()


def test_demo_runs_and_reports_every_sink() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "fxa_metrics", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Glean receiver" in out
    assert "ping=events" in out
    assert "ping=accounts-activity" in out
    assert "ping=server-deletion-request" in out
    assert "MozLog receiver (the service's log stream): 6 line(s)" in out
    # A real UDP socket got the timings of every request and the batched counters.
    assert "statsd receiver (UDP 127.0.0.1:" in out
    assert out.count("fxa-example-api.url_request,method=") == 6
    # Route templates, never the raw path and never the fixed "_unmatched_" value.
    assert "path=/v1/account/login," in out
    assert "_unmatched_" not in out
    assert "fxa-example-api.account.email_changed:1|c" in out
    # A real HTTP endpoint got the crash, scrubbed.
    assert "Sentry receiver (HTTP http://127.0.0.1:" in out
    assert "RuntimeError: mailer failed for [Filtered] from [Filtered]" in out
    assert "alice@example.com" not in out.split("-- Sentry receiver")[1]
    # The opted-out user's login and the misspelt extra were withheld and counted.
    assert "{'consent': 1, 'invalid_extra': 1}" in out
