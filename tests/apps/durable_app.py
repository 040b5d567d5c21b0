"""A bare WSGI service that records one Glean event per request and logs nothing else.

For the durability test: with no MozLog line after it (whose handler would
flush stdout), a Glean line is only as durable as fxa_metrics' own write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import fxa_metrics as fm

ROOT = Path(__file__).resolve().parents[2]

fm.configure(
    service="fxa-durable",
    app_id="accounts_backend_dev",
    app_version="1.0.0",
    channel="development",
    metrics_yaml=ROOT / "metrics.yaml",
    pings_yaml=ROOT / "pings.yaml",
    mozlog_handler="never",
    strict=False,
)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    seq = int(environ["PATH_INFO"].rsplit("/", 1)[-1])
    fm.record("login.complete", extra={"reason": "password", "attempts": seq})
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
