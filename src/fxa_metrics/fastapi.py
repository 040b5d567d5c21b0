"""FastAPI and Starlette integration: ``fxa_metrics.fastapi.init_app(app)``.

Importing this module imports Starlette; ``import fxa_metrics`` never does.

It adds :class:`fxa_metrics.ASGIMiddleware` with the dockerflow health paths on.
The middleware sits inside Starlette's ``ServerErrorMiddleware``: a view's
unhandled exception passes through it on its way to the 500 response, whatever
``debug`` says, and goes to Sentry once, marked ``handled: false``; the
``request.summary`` is logged at ERROR. The statsd ``path`` tag is the matched
route's path (``/v1/account/{uid}/login``), or ``_unmatched_``.

Consent does not depend on middleware order: records whose consent waits on
an async lookup are held and settled before the request ends (docs/consent.md).

>>> from starlette.applications import Starlette
>>> from starlette.testclient import TestClient
>>> import fxa_metrics.fastapi
>>> app = Starlette()
>>> fxa_metrics.fastapi.init_app(app)
>>> TestClient(app).get("/__lbheartbeat__").status_code
200
"""

from __future__ import annotations

from typing import Any

import starlette.applications

from ._middleware import ASGIMiddleware

__all__ = ["init_app"]


def init_app(
    app: starlette.applications.Starlette,
    *,
    health: bool = True,
    version_path: str | None = None,
    trust_forwarded: bool = False,
) -> None:
    """Instrument a FastAPI or Starlette ``app`` (call before it starts serving)."""
    options: dict[str, Any] = {
        "health": health,
        "version_path": version_path,
        "trust_forwarded": trust_forwarded,
    }
    app.add_middleware(ASGIMiddleware, **options)
