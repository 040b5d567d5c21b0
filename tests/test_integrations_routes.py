"""statsd request tags come from route templates only (issue 10's property, per integration).

10,000 random request paths against an app with N routes give at most N + 1
distinct ``path`` tag values: each value is one of the app's route templates
(spelt as a tag) or the one fixed ``_unmatched_``. So no identifier in a path
ever reaches statsd, and cardinality is bounded by the code, not the traffic.
"""

from __future__ import annotations

import asyncio
import functools
import random
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

# 10,000 paths per integration: 20 examples of 500. Hypothesis draws each
# example's seed; the paths come from it (drawing 500 paths one by one from
# hypothesis costs far more than the requests themselves).
PER_EXAMPLE, EXAMPLES = 500, 20
ALPHABET = string.ascii_letters + string.digits + "-_.@~"
PREFIXES = ["/", "/v1/account/", "/v1/account/x/devices/", "/static/", "/v1/"]
SHAPES = [
    lambda r: "".join(r.choice(ALPHABET) for _ in range(r.randrange(13))),
    lambda r: f"{r.getrandbits(128):032x}",  # a uid
    lambda r: f"user{r.randrange(10**6)}@example.com",
    lambda r: str(r.randrange(10**9)),
]


def _random_path(r: random.Random) -> str:
    segments = [r.choice(SHAPES)(r) for _ in range(r.randrange(5))]
    return r.choice(PREFIXES) + "/".join(segments)


def _batch(seed: int) -> list[str]:
    # A plain Random from the drawn seed: hypothesis' own Random draws each call
    # from the example's capped buffer, and 500 paths overrun it.
    r = random.Random(seed)
    return [_random_path(r) for _ in range(PER_EXAMPLE)]


BATCHES = st.integers(0, 2**64 - 1).map(_batch)
SETTINGS = hsettings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


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


@functools.cache
def _flask_app() -> flask.Flask:
    app = flask.Flask("routes", static_folder=None)  # only our N rules
    for i, rule in enumerate(FLASK_RULES):
        app.add_url_rule(rule, f"view{i}", lambda **kw: "ok")
    fxa_metrics.flask.init_app(app)
    return app


@functools.cache
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


def _property(drive: Callable[[list[str]], None], allowed: set[str]) -> None:
    """Drive 10,000 hypothesis paths through ``drive``; every tag allowed, at most N + 1 seen."""
    seen: set[str] = set()
    driven = [0]
    with testing.capture(metrics_yaml=(), strict=False) as cap:

        @SETTINGS
        @given(BATCHES)
        def each(paths: list[str]) -> None:
            cap.clear()
            drive(paths)
            timings = [r for r in cap.records("statsd") if r.name == "url_request"]
            assert len(timings) == len(paths)
            tags = {dict(t.tags)["path"] for t in timings}
            assert tags <= allowed, tags - allowed
            seen.update(tags)
            driven[0] += len(paths)

        each()
    assert driven[0] >= PER_EXAMPLE * EXAMPLES
    assert len(seen) <= len(allowed)  # N routes + 1


def test_flask_tags_are_url_rules_or_unmatched() -> None:
    _property(_wsgi(_flask_app().wsgi_app), _allowed(FLASK_RULES))


def test_starlette_tags_are_route_paths_or_unmatched() -> None:
    _property(_asgi(_starlette_app()), _allowed(STARLETTE_ROUTES))


def test_django_tags_are_resolver_routes_or_unmatched() -> None:
    from django.core.handlers.wsgi import WSGIHandler

    with override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["fxa_metrics.django.MetricsMiddleware"],
        ALLOWED_HOSTS=["*"],
    ):
        _property(_wsgi(WSGIHandler()), _allowed(["/" + r for r in DJANGO_ROUTES]))


def _plain(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def test_generic_wsgi_with_routes_tags_templates_or_unmatched() -> None:
    app = fm.WSGIMiddleware(_plain, routes=STARLETTE_ROUTES)
    _property(_wsgi(app), _allowed(STARLETTE_ROUTES))


def test_generic_wsgi_without_routes_has_one_value() -> None:
    _property(_wsgi(fm.WSGIMiddleware(_plain)), {UNMATCHED})


def test_generic_asgi_with_routes_tags_templates_or_unmatched() -> None:
    async def plain(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = fm.ASGIMiddleware(plain, routes=FLASK_RULES)
    _property(_asgi(app), _allowed(FLASK_RULES))
