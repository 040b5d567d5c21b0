"""A pre-fork WSGI service recording glean-sdk metrics, for the gunicorn test.

Imported in each worker (no preload): each worker records its start once, and
each request once. The glean-sdk starts in the worker that records, after
fork, with its own data directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import fxa_metrics as fm

DATA = Path(__file__).resolve().parents[1] / "data" / "glean_sdk"

# Only under the gunicorn test: pytest's --doctest-modules imports this module too,
# and must not start an SDK in the test process.
if "E2E_GLEAN_SDK_DIR" in os.environ:
    fm.configure(
        service="fxa-e2e-glean-sdk",
        app_id="accounts_backend",
        app_version="1.0.0",
        channel="test",
        metrics_yaml=DATA / "all-types-metrics.yaml",
        pings_yaml=DATA / "all-types-pings.yaml",
        glean_sdk_data_dir=os.environ["E2E_GLEAN_SDK_DIR"],
        glean_sdk_server_endpoint=os.environ["E2E_GLEAN_SDK_ENDPOINT"],
        glean_sdk_ping_interval=3600.0,  # only the shutdown submission
        glean_sdk_shutdown_timeout=30.0,
    )
    fm.record("svc.requests")  # this worker started


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    fm.record("svc.status", label="ok")
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
