"""Front-end performance beacons: the checks, the datagrams, the rate limit, every adapter."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

import fxa_metrics as fm
from fxa_metrics import _beacon, testing
from fxa_metrics._beacon import MAX_BODY, Pages, RateLimiter, parse
from fxa_metrics._recv_udp import UdpReceiver

from .beacon_data import expected_lines, valid_beacon

PAGES = Pages(names=["settings", "signin"], templates=["/account/<uid>/devices", "/s/{p:path}"])


def body(beacon: dict[str, Any]) -> bytes:
    return json.dumps(beacon).encode()


def refused(beacon: Any, field: str | None, reason: str = "beacon_invalid") -> str:
    raw = beacon if isinstance(beacon, bytes) else body(beacon)
    with pytest.raises(fm.BeaconError) as info:
        parse(raw, "text/plain;charset=UTF-8", PAGES)
    assert info.value.reason == reason
    assert info.value.field == field
    assert info.value.metric == "frontend.beacon"
    return info.value.short


@pytest.fixture
def statsd() -> Iterator[UdpReceiver]:
    with UdpReceiver() as rx:
        fm.configure(
            service="fxa-beacon-test",
            app_id="accounts_backend_dev",
            app_version="1.0.0",
            channel="development",
            metrics_yaml=[],
            mozlog_handler="never",
            statsd_host=rx.host,
            statsd_port=rx.port,
            statsd_prefix="fxa-content-server",
            strict=True,
        )
        yield rx


def wait_lines(rx: UdpReceiver, n: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(rx.lines()) < n and time.monotonic() < deadline:
        rx.wait_for(rx.count + 1, timeout=0.2)
    return [line.decode() for line in rx.lines()]


# ------------------------------------------------------------------ checks


def test_a_real_chromium_beacon_parses_into_a_page_load() -> None:
    load = parse(body(valid_beacon()), "text/plain;charset=UTF-8", PAGES)
    assert load == fm.PageLoad(
        page="settings",
        navigation_type="navigate",
        device_type="desktop",
        nav={k: float(v) for k, v in valid_beacon()["nav"].items()},
        paint={"first-paint": 70.1, "first-contentful-paint": 70.1},
        vitals={"lcp": 120.5, "cls": 0.0123, "fcp": 70.1, "ttfb": 32.1},
    )
    with pytest.raises(TypeError):
        load.nav["fetchStart"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize("ctype", [None, "", "text/plain", "application/json; charset=utf-8"])
def test_content_types_sendbeacon_uses_are_accepted(ctype: str | None) -> None:
    assert parse(body(valid_beacon()), ctype, PAGES).page == "settings"


def test_size_cap() -> None:
    big = valid_beacon(page="x" * (MAX_BODY + 1))
    assert refused(big, None, "beacon_too_large") == f"body larger than {MAX_BODY} bytes"


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        (b"\xff\xfe", "not JSON"),
        (b'{"v": 1,', "not JSON"),
        (b'{"v": NaN}', "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"1", "not a JSON object"),
    ],
)
def test_malformed_bodies(raw: bytes, short: str) -> None:
    assert refused(raw, None, "beacon_malformed") == short


def test_form_posts_are_refused() -> None:
    with pytest.raises(fm.BeaconError, match="content type"):
        parse(body(valid_beacon()), "multipart/form-data; boundary=x", PAGES)


def test_unknown_fields_are_refused_at_every_level() -> None:
    assert refused(valid_beacon(url="https://x/?email=a@b.c"), "url") == "url: unknown field"
    b = valid_beacon()
    b["nav"]["transferSize"] = 5
    refused(b, "nav.transferSize")
    b = valid_beacon()
    b["vitals"]["fid"] = 5
    refused(b, "vitals.fid")
    b = valid_beacon()
    b["paint"]["first-meaningful-paint"] = 5
    refused(b, "paint.first-meaningful-paint")
    refused(valid_beacon(**{"x" * 31: 1}), "?")  # long names are not echoed
    # An unknown name that looks like an email is never echoed back or logged.
    assert "@" not in refused(valid_beacon(**{"a@b.example": 1}), "?")


@pytest.mark.parametrize("field", ["v", "page", "type", "device", "nav"])
def test_required_fields(field: str) -> None:
    b = valid_beacon()
    del b[field]
    assert refused(b, field) == f"{field}: missing"


def test_every_navigation_mark_is_required() -> None:
    b = valid_beacon()
    del b["nav"]["connectEnd"]
    refused(b, "nav.connectEnd")


@pytest.mark.parametrize("v", [2, "1", True, 1.0, None])
def test_version(v: Any) -> None:
    refused(valid_beacon(v=v), "v")


@pytest.mark.parametrize(
    "value", [-1, 3_600_001, "12", None, True, [1], {"a": 1}, 1e308, float("inf")]
)
def test_marks_must_be_numbers_in_range(value: Any) -> None:
    b = valid_beacon()
    b["nav"]["responseEnd"] = value
    raw = json.dumps(b, allow_nan=True).encode()
    if value == float("inf"):
        refused(raw, None, "beacon_malformed")  # Infinity is not JSON
    else:
        refused(raw, "nav.responseEnd")


def test_marks_must_be_monotonic() -> None:
    b = valid_beacon()
    b["nav"]["responseStart"] = 10.0  # before requestStart (20.5)
    assert refused(b, "nav.responseStart") == "nav.responseStart: earlier than nav.requestStart"


def test_document_marks_may_be_unreached_but_only_at_the_end() -> None:
    b = valid_beacon()
    for name in ("domComplete", "loadEventStart", "loadEventEnd"):
        b["nav"][name] = 0
    assert parse(body(b), None, PAGES).nav["loadEventEnd"] == 0.0
    b["nav"]["loadEventEnd"] = 90.0  # reached after a mark that was not
    refused(b, "nav.loadEventEnd")


def test_redirect_and_tls_marks() -> None:
    b = valid_beacon()
    b["nav"].update(redirectStart=1.0, redirectEnd=3.0)
    parse(body(b), None, PAGES)
    b["nav"].update(redirectStart=1.0, redirectEnd=9.0)  # after fetchStart (4.3)
    refused(b, "nav.redirectEnd")
    b = valid_beacon()
    b["nav"].update(connectStart=5.0, secureConnectionStart=6.0, connectEnd=8.0)
    parse(body(b), None, PAGES)
    b["nav"]["secureConnectionStart"] = 9.0
    refused(b, "nav.secureConnectionStart")


def test_paint_and_vitals_ranges() -> None:
    b = valid_beacon()
    b["paint"] = {"first-paint": 80.0, "first-contentful-paint": 70.0}
    refused(b, "paint.first-contentful-paint")
    b = valid_beacon()
    b["vitals"]["cls"] = 101
    refused(b, "vitals.cls")
    b["vitals"] = {"inp": -3}
    refused(b, "vitals.inp")
    refused(valid_beacon(vitals=[]), "vitals")
    refused(valid_beacon(nav="x"), "nav")


@pytest.mark.parametrize(("field", "value"), [("type", "prefetch"), ("device", "toaster")])
def test_navigation_and_device_types_are_allow_listed(field: str, value: str) -> None:
    refused(valid_beacon(**{field: value}), field)


# ------------------------------------------------------------------ pages


@pytest.mark.parametrize(
    ("page", "tag"),
    [
        ("settings", "settings"),
        ("/account/0123456789abcdef0123456789abcdef/devices", "/account/_uid_/devices"),
        ("/account/x/devices/", "/account/_uid_/devices"),
        ("/s/a/b/c", "/s/_p_"),
    ],
)
def test_pages_come_from_the_allow_list_or_a_route_template(page: str, tag: str) -> None:
    assert parse(body(valid_beacon(page=page)), None, PAGES).page == tag


@pytest.mark.parametrize(
    "page", ["/settings?email=a@b.c", "Settings", "/account/x/devices/extra", "", 5, "p" * 201]
)
def test_any_other_page_is_refused(page: Any) -> None:
    b = valid_beacon(page=page)
    with pytest.raises(fm.BeaconError) as info:
        parse(body(b), None, PAGES)
    assert info.value.field == "page"


def test_literal_routes_win_over_parameters() -> None:
    pages = Pages(templates=["/settings/<section>", "/settings/new"])
    assert pages.resolve("/settings/new") == "/settings/new"
    assert pages.resolve("/settings/emails") == "/settings/_section_"
    assert Pages(templates=["/"]).resolve("/") == "/"


@pytest.mark.parametrize(
    ("names", "templates"),
    [([], []), (["bad name"], []), (["a@b.c"], []), ([], ["no-slash"]), (["x" * 201], [])],
)
def test_bad_page_configuration_fails_at_start_up(names: list[str], templates: list[str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        fm.BeaconEndpoint(pages=names, routes=templates)


# ------------------------------------------------------------------ statsd


def test_a_beacon_becomes_the_documented_datagrams(statsd: UdpReceiver) -> None:
    endpoint = fm.BeaconEndpoint(pages=["settings"])
    r = endpoint.handle(body(valid_beacon()), "text/plain", "198.51.100.7")
    assert (r.status, r.body) == (204, b"")
    expected = expected_lines(valid_beacon(), "settings", "fxa-content-server")
    assert wait_lines(statsd, len(expected)) == expected
    assert expected[0] == (
        "fxa-content-server.frontend.ttfb,device_type=desktop,nav_type=navigate,"
        "page=settings:32.100000|ms"
    )
    assert expected[-1].endswith("frontend.cls,device_type=desktop,nav_type=navigate,"
                                 "page=settings:0.0123|g")  # fmt: skip
    # One beacon, one statsd_batch: as few datagrams as the 512-byte pipeline allows.
    assert statsd.count <= 2
    assert fm.stats().dropped == 0


def test_fallbacks_without_vitals(statsd: UdpReceiver) -> None:
    b = valid_beacon(vitals={})
    b["nav"].update(loadEventStart=0, loadEventEnd=0)
    fm.BeaconEndpoint(pages=["settings"]).handle(body(b), None, "c")
    lines = wait_lines(statsd, 4)
    names = [line.split(",")[0] for line in lines]
    assert names == [
        "fxa-content-server.frontend.ttfb",  # nav.responseStart
        "fxa-content-server.frontend.fcp",  # paint.first-contentful-paint
        "fxa-content-server.frontend.dom_interactive",
        "fxa-content-server.frontend.dom_content_loaded",
    ]
    assert lines == expected_lines(b, "settings", "fxa-content-server")


def test_refused_beacons_emit_nothing_and_are_counted() -> None:
    endpoint = fm.BeaconEndpoint(pages=["settings"])
    with testing.capture(metrics_yaml=[]) as cap:
        bad = valid_beacon()
        bad["nav"]["responseStart"] = 1.0
        r = endpoint.handle(body(bad), None, "c")
        assert r.status == 400
        assert r.body == b"beacon refused: nav.responseStart: earlier than nav.requestStart\n"
        assert endpoint.handle(b"nope", None, "c").status == 400
        assert endpoint.handle(body(valid_beacon(page="/x")), None, "c").status == 400
        assert cap.records() == []
        snap = fm.stats()
        assert snap.drops == {"beacon_invalid": 1, "beacon_malformed": 1, "beacon_unknown_page": 1}
        assert set(snap.drops_by_metric) == {
            ("beacon_invalid", "frontend.beacon"),
            ("beacon_malformed", "frontend.beacon"),
            ("beacon_unknown_page", "frontend.beacon"),
        }


def test_before_configure_a_beacon_is_answered_and_nothing_happens() -> None:
    endpoint = fm.BeaconEndpoint(pages=["settings"])
    assert endpoint.handle(body(valid_beacon()), None, "c").status == 204
    assert endpoint.handle(b"x", None, "c").status == 400
    assert fm.stats().dropped == 0


def test_statsd_is_aggregate_even_for_an_opted_out_user(statsd: UdpReceiver) -> None:
    endpoint = fm.BeaconEndpoint(routes=["/account/<uid>/devices"])
    uid = "0123456789abcdef0123456789abcdef"
    with fm.bind(uid=uid, metrics_opt_out=True, user_agent="ua", ip_address="203.0.113.9"):
        r = endpoint.handle(body(valid_beacon(page=f"/account/{uid}/devices")), None, "c")
    assert r.status == 204
    lines = wait_lines(statsd, 7)
    assert len(lines) == 7  # consent: the aggregate policy sends statsd in every cell
    assert all(",page=/account/_uid_/devices:" in line for line in lines)
    assert not any(uid in line or "203.0.113.9" in line for line in lines)


@pytest.mark.parametrize(("opted_out", "enabled"), [(True, True), (False, True), (None, False)])
def test_consent_is_the_aggregate_policy_on_both_routes(
    opted_out: bool | None, enabled: bool
) -> None:
    endpoint = fm.BeaconEndpoint(pages=["settings"])
    uid = "0123456789abcdef0123456789abcdef"
    with testing.capture(metrics_yaml=[], enabled=enabled, sentry_traces_sample_rate=1.0) as cap:
        with fm.bind(uid=uid, metrics_opt_out=opted_out):
            assert endpoint.handle(body(valid_beacon()), None, "c").status == 204
        # Sent in every cell (opted out, consenting, service disabled), with no user anywhere.
        assert len(cap.records("statsd")) == 7
        (load,) = cap.records("sentry_performance")
        assert uid not in repr(load)
        assert fm.stats().dropped == 0


# ------------------------------------------------------------------ rate limit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_burst_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=6, burst=3, clock=clock)
    assert [limiter.allow("192.0.2.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("192.0.2.2")  # another client has its own bucket
    clock.now += 9.9  # 6 per minute: one token every 10 s
    assert not limiter.allow("192.0.2.1")
    clock.now += 0.2
    assert limiter.allow("192.0.2.1")
    assert not limiter.allow("192.0.2.1")


def test_rate_limit_stores_no_address() -> None:
    limiter = RateLimiter(max_clients=3)
    addresses = [f"192.0.2.{i}" for i in range(10)]
    for address in addresses:
        limiter.allow(address)
    assert len(limiter) == 3  # bounded: the least recently seen go first
    for digest in limiter.digests():
        assert len(digest) == 16
        for address in addresses:
            assert address.encode() not in digest
    # The key is random per process: the same address hashes differently in another limiter.
    other = RateLimiter()
    other.allow(addresses[-1])
    assert set(other.digests()).isdisjoint(limiter.digests())


def test_rate_limit_rekeys_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = RateLimiter(burst=1)
    assert limiter.allow("c")
    assert not limiter.allow("c")
    before = limiter.digests()
    monkeypatch.setattr(_beacon.os, "getpid", lambda: -12345)
    assert limiter.allow("c")  # a fresh table and key: the parent's buckets are not shared
    assert limiter.digests() != before


def test_rate_limit_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter(per_minute=0)
    with pytest.raises(ValueError, match="trusted_proxies"):
        fm.BeaconEndpoint(pages=["a"], trusted_proxies=-1)


def test_rate_limited_clients_get_429_and_a_counted_drop() -> None:
    endpoint = fm.BeaconEndpoint(pages=["settings"], per_minute=1, burst=2)
    with testing.capture(metrics_yaml=[]) as cap:
        statuses = [endpoint.handle(body(valid_beacon()), None, "192.0.2.1").status for _ in "abc"]
        assert statuses == [204, 204, 429]
        assert endpoint.handle(body(valid_beacon()), None, "192.0.2.2").status == 204
        assert fm.stats().drops == {"beacon_rate_limited": 1}
        assert len(cap.records("statsd")) == 3 * 7


def test_client_key_behind_trusted_proxies() -> None:
    endpoint = fm.BeaconEndpoint(pages=["a"], trusted_proxies=1)
    assert endpoint.client_key("10.0.0.1", "203.0.113.5, 198.51.100.2") == "198.51.100.2"
    assert endpoint.client_key("10.0.0.1", None) == "10.0.0.1"
    two = fm.BeaconEndpoint(pages=["a"], trusted_proxies=2)
    assert two.client_key("10.0.0.1", "203.0.113.5, 198.51.100.2") == "203.0.113.5"
    assert two.client_key("10.0.0.1", "198.51.100.2") == "10.0.0.1"  # a forged, short chain
    assert fm.BeaconEndpoint(pages=["a"]).client_key(None, "1.2.3.4") == "-"


# ------------------------------------------------------------------ adapters


def call_wsgi(
    app: Any, method: str, data: bytes = b"", **environ: Any
) -> tuple[str, dict[str, str], bytes]:
    env: dict[str, Any] = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(data)}
    env["CONTENT_LENGTH"] = str(len(data)) if data else ""
    env.update(environ)
    setup_testing_defaults(env)
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(headers)

    out = b"".join(app(env, start_response))
    return got["status"], got["headers"], out


def test_wsgi_app() -> None:
    endpoint = fm.BeaconEndpoint(pages=["settings"])
    with testing.capture(metrics_yaml=[]) as cap:
        status, headers, out = call_wsgi(endpoint.wsgi, "POST", body(valid_beacon()))
        assert (status, out) == ("204 No Content", b"")
        assert headers["Cache-Control"] == "no-store"
        cap.assert_timing_once(
            "frontend.lcp",
            tags={"page": "settings", "nav_type": "navigate", "device_type": "desktop"},
        )
        status, headers, out = call_wsgi(endpoint.wsgi, "GET")
        assert status == "200 OK"
        assert headers["Content-Type"].startswith("application/javascript")
        assert b"navigator.sendBeacon" in out
        assert call_wsgi(endpoint.wsgi, "PUT")[0] == "405 Method Not Allowed"
        status, _, out = call_wsgi(endpoint.wsgi, "POST", CONTENT_LENGTH="bogus")
        assert (status, out) == ("400 Bad Request", b"beacon refused: not JSON\n")


def test_wsgi_refuses_an_oversized_body_without_reading_it() -> None:
    class Unreadable(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            raise AssertionError("the body was read")

    endpoint = fm.BeaconEndpoint(pages=["settings"])
    with testing.capture(metrics_yaml=[]):
        status, _, out = call_wsgi(
            endpoint.wsgi, "POST", **{"wsgi.input": Unreadable(), "CONTENT_LENGTH": "1000000"}
        )
        assert status == "400 Bad Request"
        assert out == f"beacon refused: body larger than {MAX_BODY} bytes\n".encode()
        assert fm.stats().drops == {"beacon_too_large": 1}


def call_asgi(
    app: Any,
    method: str,
    chunks: list[bytes],
    client: Any = ("192.0.2.9", 5),
    disconnect: bool = False,
) -> Any:
    scope = {
        "type": "http",
        "method": method,
        "path": "/__beacon__",
        "headers": [(b"content-type", b"text/plain;charset=UTF-8")],
        "client": client,
    }
    messages = [
        {"type": "http.request", "body": c, "more_body": disconnect or i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ] or [{"type": "http.request", "body": b""}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_app() -> None:
    endpoint = fm.BeaconEndpoint(pages=["settings"])
    raw = body(valid_beacon())
    with testing.capture(metrics_yaml=[]) as cap:
        start, end = call_asgi(endpoint.asgi, "POST", [raw[:100], raw[100:]])
        assert start["status"] == 204
        assert end["body"] == b""
        assert len(cap.records("statsd")) == 7
        start, end = call_asgi(endpoint.asgi, "POST", [b"x" * 4000, b"x" * 4000, b"x"])
        assert start["status"] == 400
        assert b"larger than" in end["body"]
        start, end = call_asgi(endpoint.asgi, "GET", [], client=None)
        assert start["status"] == 200
        assert b"sendBeacon" in end["body"]
        assert call_asgi(endpoint.asgi, "DELETE", [])[0]["status"] == 405
        # A client that goes away mid-body: what arrived is checked (and refused).
        start, _ = call_asgi(endpoint.asgi, "POST", [raw[:50]], disconnect=True)
        assert start["status"] == 400
        assert call_asgi(endpoint.asgi, "POST", [])[0]["status"] == 400
    assert call_asgi_lifespan(endpoint) == []


def call_asgi_lifespan(endpoint: fm.BeaconEndpoint) -> list[Any]:
    sent: list[Any] = []

    async def go() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "lifespan.startup"}

        async def send(message: Any) -> None:
            sent.append(message)

        await endpoint.asgi({"type": "lifespan"}, receive, send)

    asyncio.run(go())
    return sent


def test_flask_blueprint() -> None:
    import flask

    app = flask.Flask(__name__)
    app.register_blueprint(fm.BeaconEndpoint(pages=["settings"]).flask_blueprint("/b"))
    client = app.test_client()
    with testing.capture(metrics_yaml=[]) as cap:
        resp = client.post("/b", data=body(valid_beacon()), content_type="text/plain")
        assert resp.status_code == 204
        assert len(cap.records("statsd")) == 7
        resp = client.post("/b", data=b"x" * (MAX_BODY + 1), content_type="text/plain")
        assert resp.status_code == 400
        assert client.get("/b").data == fm.BeaconEndpoint.script().encode()
        assert fm.BeaconEndpoint.script().startswith("/*! fxa-beacon.js")
        assert client.put("/b").status_code == 405


def _django_settings() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        # The same settings tests/test_middleware.py configures, so either test may run first.
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF="tests.test_middleware",
            MIDDLEWARE=["fxa_metrics.DjangoMiddleware"],
            SECRET_KEY="test-only",
        )
        django.setup()


def test_django_view() -> None:
    _django_settings()
    from django.test import RequestFactory

    view = fm.BeaconEndpoint(pages=["settings"]).django_view()
    factory = RequestFactory()
    with testing.capture(metrics_yaml=[]) as cap:
        resp = view(factory.post("/b", data=body(valid_beacon()), content_type="text/plain"))
        assert resp.status_code == 204
        assert resp["Cache-Control"] == "no-store"
        assert len(cap.records("statsd")) == 7
        resp = view(factory.post("/b", data=b"[]", content_type="text/plain"))
        assert (resp.status_code, resp.content) == (400, b"beacon refused: not a JSON object\n")
        assert view(factory.get("/b")).status_code == 200
    assert getattr(view, "csrf_exempt", False)


def test_starlette_and_fastapi_route() -> None:
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    endpoint = fm.BeaconEndpoint(pages=["settings"])
    for app in (Starlette(routes=[endpoint.starlette_route()]), FastAPI()):
        if isinstance(app, FastAPI):
            app.router.routes.append(endpoint.starlette_route("/__beacon__"))
        with testing.capture(metrics_yaml=[]) as cap, TestClient(app) as client:
            resp = client.post("/__beacon__", content=body(valid_beacon()))
            assert resp.status_code == 204
            assert len(cap.records("statsd")) == 7
            assert client.get("/__beacon__").status_code == 200
            assert client.put("/__beacon__").status_code == 405


def test_route_templates_of_each_framework() -> None:
    import flask
    from django.urls import include, path, re_path
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    app = flask.Flask(__name__)
    app.add_url_rule("/settings", "settings", lambda: "")
    app.add_url_rule("/account/<uid>/devices", "devices", lambda uid: "")
    app.add_url_rule("/hook", "hook", lambda: "", methods=["POST"])
    templates = fm.BeaconEndpoint.route_templates(app)
    assert "/account/<uid>/devices" in templates
    assert "/settings" in templates
    assert "/hook" not in templates  # not a page

    async def page(request: Any) -> Any:
        raise AssertionError

    star = Starlette(
        routes=[
            Route("/settings", page),
            Route("/hook", page, methods=["POST"]),
            Mount("/account", routes=[Route("/{uid}/devices", page)]),
        ]
    )
    assert fm.BeaconEndpoint.route_templates(star) == ["/settings", "/account/{uid}/devices"]
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    api.get("/settings")(lambda: "")
    assert fm.BeaconEndpoint.route_templates(api) == ["/settings"]
    # A routing entry with no path (a Host, say) has no template.
    assert fm.BeaconEndpoint.route_templates(star.__class__(routes=[])) == []
    hostlike = type("App", (), {"routes": [object()]})()
    assert fm.BeaconEndpoint.route_templates(hostlike) == []

    urlpatterns = [
        path("settings/", lambda r: None),
        re_path(r"^legacy/(?P<x>\d+)$", lambda r: None),
        path("account/", include([path("<int:uid>/devices", lambda r: None)])),
    ]
    assert fm.BeaconEndpoint.route_templates(urlpatterns) == [
        "/settings/",
        "/account/<int:uid>/devices",
    ]
    endpoint = fm.BeaconEndpoint(routes=fm.BeaconEndpoint.route_templates(urlpatterns))
    assert endpoint.pages.resolve("/account/42/devices") == "/account/_uid_/devices"
    assert endpoint.pages.resolve("/settings/") == "/settings"


def test_importing_fxa_metrics_imports_no_web_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fxa_metrics; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('flask', 'django', 'starlette', 'fastapi', 'werkzeug')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ PageLoad records


def test_a_hand_built_page_load_is_checked_like_a_beacon() -> None:
    good = parse(body(valid_beacon()), None, PAGES)
    bad_nav = dict(good.nav, responseEnd=1.0)
    with testing.capture(metrics_yaml=[], sentry_traces_sample_rate=1.0) as cap:
        fm.record(good)
        assert len(cap.records("sentry_performance")) == 1
        for bad in (
            fm.PageLoad("a b", "navigate", "desktop", good.nav),
            fm.PageLoad("settings", "warp", "desktop", good.nav),
            fm.PageLoad("settings", "navigate", "fridge", good.nav),
            fm.PageLoad("settings", "navigate", "desktop", bad_nav),
        ):
            with pytest.raises(fm.BeaconError):
                fm.record(bad)
    bad = fm.PageLoad("settings", "navigate", "desktop", bad_nav)
    with testing.capture(metrics_yaml=[], strict=False, sentry_traces_sample_rate=1.0) as cap:
        fm.record(bad)  # production, about to be sent: checked, dropped, counted
        assert cap.records() == []
        assert fm.stats().drops == {"beacon_invalid": 1}
    with testing.capture(metrics_yaml=[], strict=False) as cap:
        fm.record(bad)  # production, Sentry Performance off: nothing to send, nothing to check
        assert cap.records() == []
        assert fm.stats().dropped == 0


def test_page_loads_go_to_sentry_only_when_performance_is_on() -> None:
    load = parse(body(valid_beacon()), None, PAGES)
    with testing.capture(metrics_yaml=[]) as cap:  # traces sample rate 0: off
        fm.record(load)
        assert cap.records() == []
    with testing.capture(metrics_yaml=[], sentry_traces_sample_rate=0.0001) as cap:
        for _ in range(50):
            fm.record(load)
        assert len(cap.records("sentry_performance")) < 50  # sampled before anything is built


# ------------------------------------------------------------------ docs


def test_the_python_examples_in_docs_frontend_md_run() -> None:
    from pathlib import Path

    from .conftest import ROOT

    text = Path(ROOT / "docs" / "frontend.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert len(blocks) == 3
    for block in blocks:
        exec(compile(block, "docs/frontend.md", "exec"), {"__name__": "docs_frontend"})
        fm.reset()


def test_the_documented_datagrams_are_the_real_ones(statsd: UdpReceiver) -> None:
    from pathlib import Path

    from .conftest import ROOT

    text = Path(ROOT / "docs" / "frontend.md").read_text()
    documented = [line for line in text.splitlines() if line.startswith("fxa-content-server.")]
    wire = json.loads(text.split("```json\n")[1].split("```")[0])
    assert wire == valid_beacon()
    fm.BeaconEndpoint(pages=["settings"]).handle(body(wire), "text/plain", "c")
    assert wait_lines(statsd, len(documented)) == documented
