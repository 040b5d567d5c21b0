"""Middleware rows: one request through each framework, ours vs dockerflow's equivalent.

Driven in-process through the framework's WSGI or ASGI callable (no sockets:
the server's cost is the same on both sides and would only dilute the ratio),
one ``GET`` per call, the response body consumed and closed as a server does.

- WSGI (plain): ``fm.WSGIMiddleware(app)`` vs dockerflow's ASGI request-id and
  request-summary pair rewritten as WSGI (dockerflow ships no plain-WSGI one);
- Flask: ``app.wsgi_app = fm.WSGIMiddleware(app.wsgi_app)`` vs
  ``dockerflow.flask.Dockerflow(app)``;
- Starlette, FastAPI: ``fm.ASGIMiddleware`` vs dockerflow's
  ``RequestIdMiddleware`` + ``MozlogRequestSummaryLogger``;
- Django: ``fxa_metrics.DjangoMiddleware`` vs dockerflow's ``DockerflowMiddleware``.

Both sides write their ``request.summary`` line to stdout (fd 1 pointed at
``/dev/null``): ours in its own mode (formatted and written by fxa_metrics),
dockerflow's through its ``MozlogHandler`` on the ``request.summary`` logger. "statsd
on": ours has a statsd host (a listener in a child process); the baseline
gets the same ``url_request`` timing, tagged, from a raw ``StatsClient`` in a
small wrapper, since dockerflow sends no statsd.

Run: ``python -m bench.bench_middleware``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import statsd
from dockerflow.fastapi.middleware import MozlogRequestSummaryLogger, RequestIdMiddleware
from dockerflow.logging import MozlogHandler, get_or_generate_request_id, request_id_context

import fxa_metrics as fm

from . import _fxa
from ._fxa import IP, UA
from ._receivers import UdpListener
from ._timing import abba

PATH = "/v1/account/status"
SUMMARY = logging.getLogger("request.summary")


# ------------------------------------------------------------------ the apps


def _hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


class DockerflowWSGI:
    """dockerflow's ASGI ``RequestIdMiddleware`` + ``MozlogRequestSummaryLogger``, as WSGI."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        rid = get_or_generate_request_id({"x-request-id": environ.get("HTTP_X_REQUEST_ID", "")})
        request_id_context.set(rid)
        status = [500]

        def _start(line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(line[:3])
            return start_response(line, headers, exc_info)

        t0 = time.time()
        try:
            return self.app(environ, _start)
        finally:
            SUMMARY.info(
                "",
                extra={
                    "agent": environ.get("HTTP_USER_AGENT", ""),
                    "path": environ.get("PATH_INFO", ""),
                    "method": environ.get("REQUEST_METHOD", ""),
                    "code": status[0],
                    "lang": environ.get("HTTP_ACCEPT_LANGUAGE"),
                    "t": int((time.time() - t0) * 1000.0),
                    "rid": request_id_context.get(),
                },
            )


class StatsdWSGI:
    """The baseline's statsd: one tagged ``url_request`` timing per request, raw client."""

    def __init__(self, app: Callable[..., Any], client: statsd.StatsClient) -> None:
        self.app, self.client = app, client

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        t0 = time.perf_counter()
        status = ["500"]

        def _start(line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = line[:3]
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, _start)
        finally:
            name = f"url_request,method={environ['REQUEST_METHOD']},path={PATH},status={status[0]}"
            self.client.timing(name, (time.perf_counter() - t0) * 1000.0)


class StatsdASGI:
    """The same for ASGI."""

    def __init__(self, app: Callable[..., Any], client: statsd.StatsClient) -> None:
        self.app, self.client = app, client

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        status = [500]

        async def _send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            name = f"url_request,method={scope['method']},path={PATH},status={status[0]}"
            self.client.timing(name, (time.perf_counter() - t0) * 1000.0)


def _flask_apps() -> tuple[Any, Any]:
    import flask
    from dockerflow.flask import Dockerflow

    def status() -> str:
        return "ok"

    ours, base = flask.Flask("bench_ours"), flask.Flask("bench_dockerflow")
    for app in (ours, base):
        app.add_url_rule(PATH, "status", status)
    ours.wsgi_app = fm.WSGIMiddleware(ours.wsgi_app)  # type: ignore[method-assign]
    Dockerflow(base)
    return ours, base


async def _plain(request: Any) -> Any:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("ok")


def _starlette_apps() -> tuple[Any, Any]:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    routes = [Route(PATH, _plain)]
    ours = Starlette(routes=routes, middleware=[Middleware(fm.ASGIMiddleware)])
    base = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MozlogRequestSummaryLogger, logger=SUMMARY),
        ],
    )
    return ours, base


def _fastapi_apps() -> tuple[Any, Any]:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    async def status() -> PlainTextResponse:
        return PlainTextResponse("ok")

    ours, base = FastAPI(), FastAPI()
    for app in (ours, base):
        app.add_api_route(PATH, status, methods=["GET"])
    ours.add_middleware(fm.ASGIMiddleware)
    base.add_middleware(MozlogRequestSummaryLogger, logger=SUMMARY)
    base.add_middleware(RequestIdMiddleware)  # added last: outermost, as dockerflow's docs do
    return ours, base


def _django_view(request: Any) -> Any:
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
    urlpatterns[:] = [path(PATH.lstrip("/"), _django_view)]
    apps = []
    for mw in ("fxa_metrics.DjangoMiddleware", "dockerflow.django.middleware.DockerflowMiddleware"):
        settings.MIDDLEWARE = [mw]
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


ENVIRON = _environ()


def _start_response(status: str, headers: Any, exc_info: Any = None) -> None:
    return None


def wsgi_runner(app: Callable[..., Any]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            body = app(dict(ENVIRON), _start_response)
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


def asgi_runner(app: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> Callable[[int], None]:
    async def many(n: int) -> None:
        for _ in range(n):
            await app(dict(SCOPE), _receive, _send)

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    return run


# ------------------------------------------------------------------ rows


def _rows(
    apps: dict[str, tuple[Any, Any]],
    kinds: dict[str, str],
    client: statsd.StatsClient | None,
) -> list[dict[str, Any]]:
    loop = asyncio.new_event_loop()
    rows = []
    try:
        for name, (ours, base) in apps.items():
            if kinds[name] == "asgi":
                base = StatsdASGI(base, client) if client else base
                run_ours, run_base = asgi_runner(ours, loop), asgi_runner(base, loop)
            else:
                base = StatsdWSGI(base, client) if client else base
                run_ours, run_base = wsgi_runner(ours), wsgi_runner(base)
            rows.append(
                abba(
                    f"{name} middleware vs dockerflow's, statsd {'on' if client else 'off'}",
                    run_ours,
                    run_base,
                    target="(info)" if client else "<= 1.0",
                    ours_label=f"{name} app with fxa_metrics' middleware"
                    + (", statsd host set" if client else ""),
                    base_label=f"{name} app with dockerflow's equivalent"
                    + (", + raw StatsClient.timing" if client else ""),
                )
            )
    finally:
        loop.close()
    return rows


def run() -> list[dict[str, Any]]:
    apps = {
        "WSGI (plain)": (fm.WSGIMiddleware(_hello), DockerflowWSGI(_hello)),
        "Flask": _flask_apps(),
        "Starlette (ASGI)": _starlette_apps(),
        "FastAPI (ASGI)": _fastapi_apps(),
        "Django": _django_apps(),
    }
    kinds = {name: "asgi" if "ASGI" in name else "wsgi" for name in apps}
    # dockerflow's handler on request.summary, to sys.stdout (fd 1 is /dev/null
    # while timing). Ours writes its own lines ("own" mode), which this
    # handler never sees, so each side writes exactly its own line.
    SUMMARY.addHandler(MozlogHandler(stream=sys.stdout, name="fxa-auth-api"))
    SUMMARY.propagate = False
    SUMMARY.setLevel(logging.INFO)
    rows: list[dict[str, Any]] = []
    with _fxa.stdout_to_devnull(), UdpListener() as rx:
        for statsd_on in (False, True):
            client = statsd.StatsClient(rx.host, rx.port) if statsd_on else None
            target = {"statsd_host": rx.host, "statsd_port": rx.port} if statsd_on else {}
            _fxa.configure(metrics_yaml=(), mozlog_handler="own", **target)
            try:
                rows += _rows(apps, kinds, client)
                _fxa.check_clean(f"middleware, statsd {'on' if statsd_on else 'off'}")
            finally:
                fm.reset()
                if client is not None:
                    client.close()
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
