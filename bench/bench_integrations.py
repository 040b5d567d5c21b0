"""Bench: per-request overhead of each framework integration against the bare app.

One run, in process, no network: each request is one call of the app
(Flask's ``wsgi_app``, Django's ``WSGIHandler``, Starlette's ASGI app in one
event loop) with the same tiny view that returns "ok". "ours" is the app
instrumented by ``fxa_metrics.flask``/``.fastapi``/``.django`` (request
context, route template, ``url_request`` to a live UDP listener,
``request.summary`` through stdlib logging); "baseline" the same app without.
The extra µs per request (``ours - baseline``) is the integration's cost; the
ratio depends on how fast the framework itself is. Rounds alternate.

    python -m bench.bench_integrations
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
from collections.abc import Callable
from typing import Any

from werkzeug.test import create_environ

import fxa_metrics as fm
from fxa_metrics._recv_udp import UdpReceiver

from ._timing import per_call_us

N = 500
ROUNDS = 10


def _start_response(status: str, headers: Any, exc_info: Any = None) -> None:
    pass


def _wsgi_call(app: Callable[..., Any], path: str) -> Callable[[], None]:
    environ = create_environ(path)

    def call() -> None:
        body = app(dict(environ), _start_response)
        b"".join(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return call


def _flask(instrumented: bool) -> Callable[..., Any]:
    import flask

    import fxa_metrics.flask

    app = flask.Flask("bench", static_folder=None)
    app.add_url_rule("/v1/account/<uid>/status", "status", lambda uid: "ok")
    if instrumented:
        fxa_metrics.flask.init_app(app)
    return app.wsgi_app


def _starlette(instrumented: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    import fxa_metrics.fastapi

    async def status(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/v1/account/{uid}/status", status)])
    if instrumented:
        fxa_metrics.fastapi.init_app(app)
    return app


def _asgi_call(app: Any, loop: asyncio.AbstractEventLoop, path: str) -> Callable[[], None]:
    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"user-agent", b"bench")], "root_path": "",
        "scheme": "http", "server": ("bench", 80), "client": ("127.0.0.1", 1),
        "http_version": "1.1", "asgi": {"version": "3.0"},
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    return lambda: loop.run_until_complete(app(dict(scope), receive, send))


def _django() -> tuple[Any, Any]:
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    if not settings.configured:
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY="bench", ROOT_URLCONF=__name__
        )
        django.setup()
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[]):
        bare = WSGIHandler()
    with override_settings(
        ROOT_URLCONF=__name__, MIDDLEWARE=["fxa_metrics.django.MetricsMiddleware"]
    ):
        ours = WSGIHandler()
    return ours, bare


def _django_view(request: Any, uid: str) -> Any:
    from django.http import HttpResponse

    return HttpResponse("ok")


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("v1/account/<str:uid>/status", _django_view)]


def __getattr__(name: str) -> Any:
    # Django reads ROOT_URLCONF's urlpatterns lazily: built on first use, so
    # importing this module does not import Django.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def _row(name: str, ours: Callable[[], None], bare: Callable[[], None]) -> dict[str, Any]:
    for fn in (ours, bare):  # warm up both
        per_call_us(fn, N // 5)
    a: list[float] = []
    b: list[float] = []
    for i in range(ROUNDS):
        # Alternate which side goes first: on a shared machine the second of a
        # pair was measurably slower, whichever it was.
        if i % 2:
            b.append(per_call_us(bare, N))
            a.append(per_call_us(ours, N))
        else:
            a.append(per_call_us(ours, N))
            b.append(per_call_us(bare, N))
    ours_us, bare_us = statistics.median(a), statistics.median(b)
    return {
        "name": f"{name} (+{ours_us - bare_us:.1f} µs/request)",
        "ours_us": round(ours_us, 2),
        "baseline_us": round(bare_us, 2),
        "ratio": round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 3),
        "goal": "info",
    }


def run() -> list[dict[str, Any]]:
    path = "/v1/account/0123456789abcdef0123456789abcdef/status"
    with UdpReceiver(keep=False) as rx:
        fm.configure(
            service="fxa-bench",
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="production",
            metrics_yaml=(),
            glean_stream=io.StringIO(),
            mozlog_handler="always",
            mozlog_stream=io.StringIO(),
            statsd_host=rx.host,
            statsd_port=rx.port,
        )
        try:
            rows = [
                _row(
                    "Flask request: fxa_metrics.flask vs bare",
                    _wsgi_call(_flask(True), path),
                    _wsgi_call(_flask(False), path),
                )
            ]
            loop = asyncio.new_event_loop()
            try:
                rows.append(
                    _row(
                        "Starlette request: fxa_metrics.fastapi vs bare",
                        _asgi_call(_starlette(True), loop, path),
                        _asgi_call(_starlette(False), loop, path),
                    )
                )
            finally:
                loop.close()
            ours, bare = _django()
            rows.append(
                _row(
                    "Django request: fxa_metrics.django vs bare",
                    _wsgi_call(ours, path),
                    _wsgi_call(bare, path),
                )
            )
        finally:
            fm.reset()
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
