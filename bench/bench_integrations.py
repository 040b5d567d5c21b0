"""Integration rows: one request through each framework integration against the bare app.

Driven in-process through the framework's WSGI or ASGI callable, as
bench/bench_middleware.py does (no sockets: the server's cost is the same on
both sides and would only dilute the ratio), one ``GET`` per call, the
response body consumed and closed as a server does, with the same tiny view
returning "ok" on a route with a parameter (``/v1/account/<uid>/status``).

- Flask: ``fxa_metrics.flask.init_app(app)`` vs the same app without;
- Starlette: ``fxa_metrics.fastapi.init_app(app)`` vs the same app without;
- Django: ``MIDDLEWARE = ["fxa_metrics.django.MetricsMiddleware"]`` vs none.

"Ours" is the whole integration: request context, route template, health
paths, ``url_request`` to a statsd listener in a child process
(bench/_receivers.py), and the ``request.summary`` line written to stdout
(fd 1 pointed at ``/dev/null``, fxa_metrics' own mode). The extra µs per
request (``ours - baseline``) is the integration's cost; the ratio depends on
how fast the framework itself is, so the rows are information only (the
integration against dockerflow's equivalent is in bench_middleware.py).

Run: ``python -m bench.bench_integrations`` (``python -m bench`` for every route).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import fxa_metrics as fm

from . import _fxa
from ._fxa import IP, UA, UID
from ._receivers import UdpListener
from ._timing import Runner, abba

PATH = f"/v1/account/{UID}/status"


# ------------------------------------------------------------------ the apps


def _flask(instrumented: bool) -> Any:
    import flask

    import fxa_metrics.flask

    app = flask.Flask("bench_ours" if instrumented else "bench_bare", static_folder=None)
    app.add_url_rule("/v1/account/<uid>/status", "status", lambda uid: "ok")
    if instrumented:
        fxa_metrics.flask.init_app(app)
    return app.wsgi_app


async def _plain(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("ok")


def _starlette(instrumented: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route

    import fxa_metrics.fastapi

    app = Starlette(routes=[Route("/v1/account/{uid}/status", _plain)])
    if instrumented:
        fxa_metrics.fastapi.init_app(app)
    return app


def _django_view(request: Any, uid: str) -> Any:
    from django.http import HttpResponse

    return HttpResponse("ok")


urlpatterns: list[Any] = []  # Django's ROOT_URLCONF is this module


def _django_apps() -> tuple[Any, Any]:
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.urls import path

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="bench-only",
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        LOGGING_CONFIG=None,
        USE_TZ=True,
    )
    django.setup()
    urlpatterns[:] = [path("v1/account/<str:uid>/status", _django_view)]
    apps = []
    for mw in (["fxa_metrics.django.MetricsMiddleware"], []):
        settings.MIDDLEWARE = mw
        apps.append(WSGIHandler())  # loads settings.MIDDLEWARE now
    return apps[0], apps[1]


# ------------------------------------------------------------------ driving


def _environ() -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(
        path=PATH,
        headers={"User-Agent": UA, "Accept-Language": "en-US,en;q=0.5"},
        environ_base={"REMOTE_ADDR": IP},
    ).get_environ()


def _start_response(status: str, headers: Any, exc_info: Any = None) -> None:
    return None


def wsgi_runner(app: Callable[..., Any]) -> Runner:
    environ = _environ()

    def run(n: int) -> None:
        for _ in range(n):
            body = app(dict(environ), _start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return run


SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": PATH,
    "raw_path": PATH.encode(),
    "root_path": "",
    "query_string": b"",
    "headers": [
        (b"host", b"localhost"),
        (b"user-agent", UA.encode()),
        (b"accept-language", b"en-US,en;q=0.5"),
    ],
    "client": (IP, 50000),
    "server": ("localhost", 80),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


def asgi_runner(app: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Runner:
    async def many(n: int) -> None:
        for _ in range(n):
            await app(dict(SCOPE), _receive, _send)

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    return run


# ------------------------------------------------------------------ rows


def _row(framework: str, module: str, ours: Runner, base: Runner) -> dict[str, Any]:
    return abba(
        f"{framework} request: {module} vs the bare app",
        ours,
        base,
        target="(info)",
        ours_label=f"{framework} app instrumented by {module} (statsd host set)",
        base_label=f"the same {framework} app, uninstrumented",
    )


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with _fxa.stdout_to_devnull(), UdpListener() as rx:
        _fxa.configure(
            metrics_yaml=(), mozlog_handler="own", statsd_host=rx.host, statsd_port=rx.port
        )
        try:
            rows.append(
                _row(
                    "Flask",
                    "fxa_metrics.flask",
                    wsgi_runner(_flask(True)),
                    wsgi_runner(_flask(False)),
                )
            )
            loop = asyncio.new_event_loop()
            try:
                rows.append(
                    _row(
                        "Starlette",
                        "fxa_metrics.fastapi",
                        asgi_runner(_starlette(True), loop),
                        asgi_runner(_starlette(False), loop),
                    )
                )
            finally:
                loop.close()
            ours, bare = _django_apps()
            rows.append(_row("Django", "fxa_metrics.django", wsgi_runner(ours), wsgi_runner(bare)))
            _fxa.check_clean("integrations")
        finally:
            fm.reset()
    if rx.received <= 0:
        raise AssertionError("integrations: no statsd datagram reached the listener")
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
