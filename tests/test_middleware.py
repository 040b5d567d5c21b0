"""Decorator and middleware: bind, time, summarise, capture, and stay transparent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import testing

UID = "0123456789abcdef0123456789abcdef"
UA = "Mozilla/5.0 Firefox/140.0"


def summaries(cap: testing.Capture) -> list[dict[str, Any]]:
    return [dict(r.fields) for r in cap.records("mozlog") if r.type == "request.summary"]


def test_route_template_hides_identifiers() -> None:
    assert fm.route_template("/v1/account/a@b.example/x") == "/v1/account/_id_/x"
    assert fm.route_template(f"/v1/account/{UID}/devices/42") == "/v1/account/_id_/devices/_id_"
    assert fm.route_template("/v1/ip/203.0.113.7") == "/v1/ip/_id_"
    assert fm.route_template("/__heartbeat__") == "/__heartbeat__"


def test_instrument_sync_is_transparent(cap: testing.Capture) -> None:
    marker = object()

    @fm.instrument("/v1/thing", method="POST")
    def handler(x: int) -> object:
        """Docstring kept."""
        fm.record("login.complete", extra={"reason": "password"})
        return marker

    assert handler(1) is marker
    assert handler.__doc__ == "Docstring kept."
    [summary] = summaries(cap)
    assert summary["path"] == "/v1/thing"
    assert summary["method"] == "POST"
    assert summary["code"] == 200
    assert summary["errno"] == 0
    assert isinstance(summary["t"], int)
    assert len(cap.events()) == 1


def test_instrument_reraises_unchanged_and_captures(cap: testing.Capture) -> None:
    boom = ValueError("boom")

    @fm.instrument("/v1/fail")
    async def handler() -> None:
        raise boom

    with pytest.raises(ValueError, match="boom") as e:
        asyncio.run(handler())
    assert e.value is boom
    assert summaries(cap)[0]["code"] == 500
    assert len(cap.records("sentry")) == 1


def test_flask_wsgi_middleware(cap: testing.Capture) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("t")

    @app.post("/v1/account/<uid>/login")
    def login(uid: str) -> tuple[str, int]:
        with fm.bind(uid=uid):
            fm.record("login.complete", extra={"reason": "password"})
        return "ok", 201

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    app.wsgi_app = fm.WSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, routes=["/v1/account/<uid>/login"]
    )
    client = app.test_client()
    resp = client.post(
        f"/v1/account/{UID}/login",
        headers={"User-Agent": UA, "X-Request-Id": "rid-1", "Accept-Language": "de-DE,de;q=0.9"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert (resp.status_code, resp.data) == (201, b"ok")
    # The summary is written when the body is closed (after streaming). Werkzeug's
    # test client never closes it; the capture does, as a server would, once read.
    [ping] = cap.pings()
    [summary] = summaries(cap)
    resp.close()  # closing again writes nothing more
    assert (ping.user_agent, ping.ip_address) == (UA, "203.0.113.7")
    [summary] = summaries(cap)
    [timing] = cap.records("statsd")
    assert (timing.name, timing.kind) == ("url_request", "ms")
    # The route template (from routes=), never the uid, reaches the aggregate metric.
    assert dict(timing.tags) == {
        "method": "POST",
        "path": "/v1/account/_uid_/login",
        "status": "201",
    }
    assert summary["code"] == 201
    assert summary["rid"] == "rid-1"
    assert summary["lang"] == "de-DE"
    assert summary["path"] == f"/v1/account/{UID}/login"
    # The uid the handler bound (inside the middleware's binding) is in the summary.
    assert summary["uid"] == UID
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="kaboom"):
        client.get("/boom")
    assert summaries(cap)[-1]["code"] == 500
    assert len(cap.records("sentry")) == 1


def test_starlette_asgi_middleware(cap: testing.Capture) -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def hello(request: Any) -> PlainTextResponse:
        fm.record("login.complete", extra={"reason": "passkey"})
        return PlainTextResponse("hi", status_code=202)

    async def boom(request: Any) -> PlainTextResponse:
        raise KeyError("nope")

    app = Starlette(routes=[Route("/hello/{name}", hello), Route("/boom", boom)])
    app.add_middleware(fm.ASGIMiddleware)
    with TestClient(app, raise_server_exceptions=True) as client:
        resp = client.get("/hello/x", headers={"user-agent": UA})
        assert (resp.status_code, resp.text) == (202, "hi")
        with pytest.raises(KeyError):
            client.get("/boom")
    assert cap.pings()[0].user_agent == UA
    codes = [s["code"] for s in summaries(cap)]
    assert codes == [202, 500]
    # The route template, not the concrete path, tags the timing.
    assert [dict(t.tags)["path"] for t in cap.records("statsd")] == ["/hello/_name_", "/boom"]
    assert len(cap.records("sentry")) == 1


def test_django_middleware(cap: testing.Capture) -> None:
    pytest.importorskip("django")
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=["fxa_metrics.DjangoMiddleware"],
            SECRET_KEY="test-only",
        )
        django.setup()
    from django.test import Client, override_settings

    # override_settings: whichever test module configured Django first, this
    # test runs with its own urls and middleware (the suite runs in random order).
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=["fxa_metrics.DjangoMiddleware"]):
        client = Client(raise_request_exception=False)
        resp = client.get("/relay/42/", HTTP_USER_AGENT=UA, HTTP_X_REQUEST_ID="r-9")
        assert resp.status_code == 200
        assert resp.content == b"relay 42"
        resp = client.get("/explode/")
        assert resp.status_code == 500
    first, second = summaries(cap)
    assert (first["code"], first["rid"], first["agent"]) == (200, "r-9", UA)
    assert (second["code"], second["errno"]) == (500, 999)
    assert [dict(t.tags)["path"] for t in cap.records("statsd")] == ["/relay/_mask_/", "/explode/"]
    assert len(cap.records("sentry")) == 1
    assert cap.events()[0]["extra"] == {"reason": "relay"}


def _relay_view(request: Any, mask: int) -> Any:
    from django.http import HttpResponse

    fm.record("login.complete", extra={"reason": "relay"})
    return HttpResponse(f"relay {mask}")


def _explode_view(request: Any) -> Any:
    raise RuntimeError("django view failed")


def _urlpatterns() -> list[Any]:
    try:
        from django.urls import path
    except ImportError:  # pragma: no cover
        return []
    return [path("relay/<int:mask>/", _relay_view), path("explode/", _explode_view)]


urlpatterns = _urlpatterns()
