"""A Starlette service for the uvicorn privacy test (tests/test_privacy_servers.py)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import fxa_metrics as fm

from .privacy_probe import configure, probe

configure("fxa-privacy-asgi")


async def probe_view(request: Request) -> PlainTextResponse:
    probe(
        dict(request.headers),
        request.url.path,
        request.url.query,
        request.path_params["thing"],
    )
    return PlainTextResponse("unreachable")


app = Starlette(routes=[Route("/v1/probe/{thing}", probe_view, methods=["POST"])])
app.add_middleware(fm.ASGIMiddleware, trust_forwarded=True)
