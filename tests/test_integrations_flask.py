"""fxa_metrics.flask: crashes through got_request_exception, url_rule tags, health paths."""

from __future__ import annotations

import json
import logging
from typing import Any

import flask
import pytest

import fxa_metrics as fm
import fxa_metrics.flask
from fxa_metrics import testing

UID = "0123456789abcdef0123456789abcdef"


def _app(propagate: bool | None, **options: Any) -> flask.Flask:
    app = flask.Flask("flask_integration")
    if propagate is not None:
        app.config["PROPAGATE_EXCEPTIONS"] = propagate

    @app.post("/v1/account/<uid>/login")
    def login(uid: str) -> tuple[str, int]:
        with fm.bind(uid=uid):
            fm.record("login.complete", extra={"reason": "password"})
        return "ok", 201

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    fxa_metrics.flask.init_app(app, **options)
    return app


def _summaries(cap: testing.Capture) -> list[Any]:
    return [r for r in cap.records("mozlog") if r.type == "request.summary"]


@pytest.mark.parametrize("propagate", [False, True, None], ids=["off", "on", "default"])
def test_a_crash_is_captured_once_unhandled_and_logged_at_error(
    cap: testing.Capture, propagate: bool | None
) -> None:
    app = _app(propagate)
    client = app.test_client()
    if propagate:
        with pytest.raises(RuntimeError, match="kaboom"):
            client.get("/boom")
    else:
        resp = client.get("/boom")
        assert resp.status_code == 500
        resp.close()
    [crash] = cap.records("sentry")
    assert crash.handled is False
    assert str(crash.exc) == "kaboom"
    [summary] = _summaries(cap)
    assert summary.level == logging.ERROR
    assert (summary.fields["code"], summary.fields["errno"]) == (500, 999)
    [timing] = cap.records("statsd")
    assert dict(timing.tags) == {"method": "GET", "path": "/boom", "status": "500"}


def test_a_good_request_is_tagged_with_its_url_rule_and_logged_at_info(
    cap: testing.Capture,
) -> None:
    client = _app(False).test_client()
    resp = client.post(f"/v1/account/{UID}/login", headers={"User-Agent": "ua/1"})
    assert (resp.status_code, resp.data) == (201, b"ok")
    resp.close()
    assert cap.records("sentry") == []
    [summary] = _summaries(cap)
    assert summary.level == logging.INFO
    assert summary.fields["errno"] == 0
    assert summary.fields["uid"] == UID
    [timing] = cap.records("statsd")
    assert dict(timing.tags)["path"] == "/v1/account/_uid_/login"
    cap.assert_event_once("login.complete", {"reason": "password"})


def test_an_unmatched_request_gets_the_one_fixed_tag(cap: testing.Capture) -> None:
    client = _app(False).test_client()
    for path in (f"/v1/account/{UID}", "/a@b.example/x", "/wp-login.php"):
        client.get(path).close()
    assert {dict(t.tags)["path"] for t in cap.records("statsd")} == {"_unmatched_"}
    assert {s.fields["code"] for s in _summaries(cap)} == {404}
    assert cap.records("sentry") == []


def test_health_paths(cap: testing.Capture, tmp_path: Any) -> None:
    version = tmp_path / "version.json"
    version.write_text(json.dumps({"version": "9.9.9", "commit": "abc"}))
    client = _app(False, version_path=str(version)).test_client()
    assert client.get("/__lbheartbeat__").status_code == 200
    resp = client.get("/__heartbeat__")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ok"
    assert client.get("/__version__").get_json() == {"version": "9.9.9", "commit": "abc"}
    # Health requests are not request metrics (a load balancer polls them every second).
    assert cap.records("statsd") == []


def test_health_off_leaves_the_paths_to_the_app(cap: testing.Capture) -> None:
    client = _app(False, health=False).test_client()
    assert client.get("/__heartbeat__").status_code == 404


def test_version_json_missing_is_404(cap: testing.Capture, tmp_path: Any) -> None:
    client = _app(False, version_path=str(tmp_path / "none.json")).test_client()
    resp = client.get("/__version__")
    assert resp.status_code == 404
    assert "version.json unavailable" in resp.get_json()["error"]
