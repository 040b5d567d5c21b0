"""A FastAPI service instrumented with ``fxa_metrics.fastapi``, with an async consent lookup.

Run it: ``uvicorn examples.fastapi_app:app --host 127.0.0.1 --port 8000``.

The host's own middleware binds the user (as an authentication middleware
would) and, as docs/consent.md shows, awaits ``fm.resolve_consent()``.
``EXAMPLE_MIDDLEWARE_ORDER=metrics-inner`` adds fxa_metrics' middleware before
it (so it runs inside it); the default adds it last (outermost). Consented
events go out either way, and so they do from the sync endpoint, which runs
in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response

import fxa_metrics as fm
import fxa_metrics.fastapi

from ._setup import VERSION_JSON, opted_out_async, setup

setup("fxa-example-fastapi", consent_lookup_uid=opted_out_async)

app = FastAPI()


@app.post("/v1/account/{uid}/login")
async def login(uid: str) -> dict[str, str]:
    fm.record("login.complete", extra={"reason": "passkey"})
    return {"status": "ok"}


@app.post("/v1/account/{uid}/login-sync")
def login_sync(uid: str) -> dict[str, str]:
    # A plain def endpoint: FastAPI runs it in a worker thread.
    fm.record("login.complete", extra={"reason": "password"})
    return {"status": "ok"}


@app.get("/v1/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("the example view crashed")


async def bind_user(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Response:
    # The user from the path here; a real service takes it from its auth token.
    parts = request.url.path.split("/")
    uid = parts[3] if len(parts) > 3 and parts[2] == "account" else None
    with fm.bind(uid=uid):
        await fm.resolve_consent()
        response: Response = await call_next(request)
        return response


if os.environ.get("EXAMPLE_MIDDLEWARE_ORDER") == "metrics-inner":
    fxa_metrics.fastapi.init_app(app, version_path=VERSION_JSON)
    app.middleware("http")(bind_user)
else:
    app.middleware("http")(bind_user)
    fxa_metrics.fastapi.init_app(app, version_path=VERSION_JSON)
