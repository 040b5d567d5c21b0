"""fxa_metrics.django: process_exception crashes, resolver_match.route tags, health paths."""

from __future__ import annotations

import logging
from typing import Any

import django
import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path

import fxa_metrics as fm
from fxa_metrics import testing

if not settings.configured:
    settings.configure(
        DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY="test-only", ROOT_URLCONF=__name__
    )
    django.setup()

MIDDLEWARE = ["fxa_metrics.django.MetricsMiddleware"]


def _login(request: Any, uid: str) -> HttpResponse:
    with fm.bind(uid=uid):
        fm.record("login.complete", extra={"reason": "relay"})
    return HttpResponse("ok")


def _boom(request: Any) -> HttpResponse:
    raise RuntimeError("django view failed")


urlpatterns = [path("v1/account/<str:uid>/login", _login), path("boom", _boom)]


def _summaries(cap: testing.Capture) -> list[Any]:
    return [r for r in cap.records("mozlog") if r.type == "request.summary"]


@pytest.mark.parametrize("propagate", [False, True], ids=["propagate-off", "propagate-on"])
def test_a_crash_is_captured_once_unhandled(cap: testing.Capture, propagate: bool) -> None:
    with override_settings(
        ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE, DEBUG_PROPAGATE_EXCEPTIONS=propagate
    ):
        client = Client(raise_request_exception=False)
        if propagate:
            with pytest.raises(RuntimeError):
                client.get("/boom")
        else:
            assert client.get("/boom").status_code == 500
    [crash] = cap.records("sentry")
    assert crash.handled is False
    [summary] = _summaries(cap)
    assert (summary.level, summary.fields["code"], summary.fields["errno"]) == (
        logging.ERROR, 500, 999,
    )  # fmt: skip
    assert [dict(t.tags)["path"] for t in cap.records("statsd")] == ["/boom"]


def test_route_templates_and_unmatched(cap: testing.Capture) -> None:
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE):
        client = Client()
        uid = "0123456789abcdef0123456789abcdef"
        assert client.post(f"/v1/account/{uid}/login").status_code == 200
        assert client.get(f"/v1/{uid}").status_code == 404
    paths = [dict(t.tags)["path"] for t in cap.records("statsd")]
    assert paths == ["/v1/account/_uid_/login", "_unmatched_"]
    ok, missing = _summaries(cap)
    assert (ok.level, ok.fields["uid"]) == (logging.INFO, uid)
    assert missing.fields["code"] == 404
    cap.assert_event_once("login.complete", {"reason": "relay"})


def test_health_paths(cap: testing.Capture, tmp_path: Any) -> None:
    version = tmp_path / "version.json"
    version.write_text('{"version": "2.0.0"}')
    with override_settings(
        ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE, FXA_METRICS_VERSION_PATH=str(version)
    ):
        client = Client()
        assert client.get("/__lbheartbeat__").status_code == 200
        assert client.get("/__heartbeat__").status_code == 200
        assert client.get("/__version__").json() == {"version": "2.0.0"}
        fm.register_check("db", lambda: [fm.CheckMessage.error("down", "db.E1")])
        try:
            resp = client.get("/__heartbeat__")
        finally:
            fm.unregister_check("db")
    assert resp.status_code == 500
    assert resp.json()["checks"]["db"] == "error"
    assert cap.records("statsd") == []
