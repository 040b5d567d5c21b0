"""statsd request tags come from route templates only (issue 10's property, per integration).

10,000 random request paths against an app with N routes give at most N + 1
distinct ``path`` tag values: each value is one of the app's route templates
(spelt as a tag) or the one fixed ``_unmatched_``. So no identifier in a path
ever reaches statsd, and cardinality is bounded by the code, not the traffic.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Callable, Iterable
from typing import Any

import django
import flask
from django.conf import settings
from django.http import HttpResponse
from django.test import override_settings
from django.urls import path as django_path
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.test import create_environ

import fxa_metrics as fm
import fxa_metrics.fastapi
import fxa_metrics.flask
from fxa_metrics import testing
from fxa_metrics._middleware import UNMATCHED, path_tag

if not settings.configured:
    settings.configure(
        DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY="test-only", ROOT_URLCONF=__name__
    )
    django.setup()

PER_EXAMPLE, EXAMPLES = 500, 20  # 10,000 paths per integration
SEGMENT = st.text(string.ascii_letters + string.digits + "-_.@~", min_size=0, max_size=40)
PREFIXES = st.sampled_from(["", "/v1/account/", "/v1/account/x/devices/", "/static/", "/v1/"])
PATHS = st.builds(
    lambda prefix, segs: (prefix or "/") + "/".join(segs),
    PREFIXES,
    st.lists(SEGMENT, max_size=5),
)
BATCHES = st.lists(PATHS, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE)
SETTINGS = hsettings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def _tags(drive: Callable[[list[str]], None], paths: list[str]) -> set[str]:
    with testing.capture(metrics_yaml=(), strict=False) as cap:
        drive(paths)
        timings = [r for r in cap.records("statsd") if r.name == "url_request"]
    assert len(timings) == len(paths)
    return {dict(t.tags)["path"] for t in timings}


def _wsgi(app: Callable[..., Iterable[bytes]]) -> Callable[[list[str]], None]:
    def drive(paths: list[str]) -> None:
        for p in paths:
            body = app(create_environ(p), lambda status, headers, exc_info=None: None)
            b"".join(body)
            getattr(body, "close", lambda: None)()

    return drive


def _asgi(app: Any) -> Callable[[list[str]], None]:
    async def one(p: str) -> None:
        scope = {
            "type": "http", "method": "GET", "path": p, "raw_path": p.encode(),
            "query_string": b"", "headers": [], "root_path": "", "scheme": "http",
            "server": ("testserver", 80), "client": ("127.0.0.1", 1), "http_version": "1.1",
            "asgi": {"version": "3.0"},
        }  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(scope, receive, send)

    async def all_(paths: list[str]) -> None:
        for p in paths:
            await one(p)

    return lambda paths: asyncio.run(all_(paths))


# ------------------------------------------------------------------ the apps, N routes each

FLASK_RULES = ["/", "/v1/account/<uid>/login", "/v1/account/<uid>/devices/<int:n>",
               "/static/<path:rest>", "/v1/ping"]  # fmt: skip
STARLETTE_ROUTES = ["/", "/v1/account/{uid}/login", "/v1/account/{uid}/devices/{n:int}",
                    "/static/{rest:path}", "/v1/ping"]  # fmt: skip
DJANGO_ROUTES = ["", "v1/account/<str:uid>/login", "v1/account/<str:uid>/devices/<int:n>",
                 "static/<path:rest>", "v1/ping"]  # fmt: skip


def _flask_app() -> flask.Flask:
    app = flask.Flask("routes")
    for i, rule in enumerate(FLASK_RULES):
        app.add_url_rule(rule, f"view{i}", lambda **kw: "ok")
    fxa_metrics.flask.init_app(app)
    return app


def _starlette_app() -> Starlette:
    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route(r, ok) for r in STARLETTE_ROUTES])
    fxa_metrics.fastapi.init_app(app)
    return app


def _ok(request: Any, **kw: Any) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [django_path(r, _ok) for r in DJANGO_ROUTES]


def _allowed(templates: list[str]) -> set[str]:
    return {path_tag(t) for t in templates} | {UNMATCHED}


_seen: dict[str, set[str]] = {}


def _check(name: str, tags: set[str], allowed: set[str]) -> None:
    assert tags <= allowed, tags - allowed
    _seen.setdefault(name, set()).update(tags)
    # Over every example so far (up to 10,000 paths): at most N + 1 values.
    assert len(_seen[name]) <= len(allowed)


@SETTINGS
@given(BATCHES)
def test_flask_tags_are_url_rules_or_unmatched(paths: list[str]) -> None:
    _check("flask", _tags(_wsgi(_flask_app().wsgi_app), paths), _allowed(FLASK_RULES))


@SETTINGS
@given(BATCHES)
def test_starlette_tags_are_route_paths_or_unmatched(paths: list[str]) -> None:
    allowed = _allowed(STARLETTE_ROUTES)
    _check("starlette", _tags(_asgi(_starlette_app()), paths), allowed)


@SETTINGS
@given(BATCHES)
def test_django_tags_are_resolver_routes_or_unmatched(paths: list[str]) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    with override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["fxa_metrics.django.MetricsMiddleware"],
        ALLOWED_HOSTS=["*"],
    ):
        handler = WSGIHandler()
        tags = _tags(_wsgi(handler), paths)
    _check("django", tags, _allowed(["/" + r for r in DJANGO_ROUTES]))


def _plain(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


@SETTINGS
@given(BATCHES)
def test_generic_wsgi_with_routes_tags_templates_or_unmatched(paths: list[str]) -> None:
    app = fm.WSGIMiddleware(_plain, routes=STARLETTE_ROUTES)
    _check("wsgi-routes", _tags(_wsgi(app), paths), _allowed(STARLETTE_ROUTES))


@SETTINGS
@given(BATCHES)
def test_generic_wsgi_without_routes_has_one_value(paths: list[str]) -> None:
    assert _tags(_wsgi(fm.WSGIMiddleware(_plain)), paths) == {UNMATCHED}


@SETTINGS
@given(BATCHES)
def test_generic_asgi_with_routes_tags_templates_or_unmatched(paths: list[str]) -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = fm.ASGIMiddleware(plain, routes=FLASK_RULES)
    _check("asgi-routes", _tags(_asgi(app), paths), _allowed(FLASK_RULES))
