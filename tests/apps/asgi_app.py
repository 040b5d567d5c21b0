"""A Starlette service instrumented with fxa_metrics, for the uvicorn end-to-end test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import fxa_metrics as fm

ROOT = Path(__file__).resolve().parents[2]

fm.configure(
    service="fxa-e2e-asgi",
    app_id="accounts_backend_dev",
    app_version="1.0.0",
    channel="development",
    metrics_yaml=ROOT / "metrics.yaml",
    pings_yaml=ROOT / "pings.yaml",
    mozlog_handler="always",
    **({"statsd_host": "127.0.0.1", "statsd_port": int(os.environ["E2E_STATSD_PORT"])}
       if os.environ.get("E2E_STATSD_PORT") else {}),
)  # fmt: skip


async def login(request: Any) -> PlainTextResponse:
    with fm.bind(
        uid=request.path_params["uid"], metrics_opt_out=request.headers.get("x-opt-out") == "1"
    ):
        fm.record("login.complete", extra={"reason": "passkey"})
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/v1/account/{uid}/login", login, methods=["POST"])])
app.add_middleware(fm.ASGIMiddleware)
