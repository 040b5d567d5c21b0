"""fxa_metrics.testing: the assertion helpers a service's own tests use."""

from __future__ import annotations

import pytest

import fxa_metrics as fm
from fxa_metrics import testing
from fxa_metrics.testing import AnyTagValue

from .conftest import DATA, EXAMPLE_METRICS, EXAMPLE_PINGS, ROOT

UID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def cap() -> object:
    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as c:
        with fm.bind(uid=UID):
            fm.record("login.complete", extra={"reason": "password", "is_new_device": True})
            fm.record(fm.Timing("url_request", 12.0, tags={"method": "POST", "status": "200"}))
            fm.record(fm.Counter("login.attempt", 2))
            fm.record(fm.Gauge("pool.size", 7))
            fm.record(fm.Log("request.summary", {"errno": 0, "code": 200, "rid": "r1"}))
            fm.record(fm.Crash(ValueError("boom")))
        yield c


def test_passing_assertions(cap: testing.Capture) -> None:
    cap.assert_event("login.complete")
    cap.assert_event_once("login.complete", {"reason": "password", "is_new_device": "true"})
    cap.assert_no_event("login.error")
    cap.assert_timing_once("url_request", tags={"method": "POST", "status": 200})
    cap.assert_timing("url_request", tags={"method": AnyTagValue, "status": "200"})
    cap.assert_not_timing("url_request", tags={"method": "GET", "status": "200"})
    cap.assert_incr_once("login.attempt", 2)
    cap.assert_not_incr("login.failure")
    cap.assert_gauge("pool.size", 7)
    cap.assert_logged_once("request.summary", errno=0, rid=AnyTagValue)
    cap.assert_not_logged("request.summary", code=500)
    cap.assert_crash_once(ValueError, match="boom")
    cap.validate()


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda c: c.assert_event("login.error"), "expected event login.error at least once"),
        (lambda c: c.assert_event_once("login.complete", {"reason": "passkey"}), "exactly once"),
        (lambda c: c.assert_no_event(), "expected any event never, found 1"),
        (lambda c: c.assert_timing("url_request", tags={"method": "GET"}), "timing url_request"),
        (lambda c: c.assert_incr("login.attempt", 3), "incr login.attempt value=3"),
        (lambda c: c.assert_logged("request.summary", code=500), "log request.summary"),
        (lambda c: c.assert_no_crash(), "expected any crash never"),
        (lambda c: c.assert_crash(KeyError), "expected crash KeyError at least once"),
    ],
)
def test_failing_assertions_print_everything_captured(
    cap: testing.Capture, call: object, needle: str
) -> None:
    with pytest.raises(AssertionError) as e:
        call(cap)  # type: ignore[operator]
    message = str(e.value)
    assert needle in message
    # The whole capture is in the message, so a failure explains itself.
    assert "glean: ping events: login.complete {'reason': 'password'" in message
    assert "statsd: ms url_request,method=POST,status=200=12.0" in message
    assert "mozlog: log request.summary" in message
    assert "sentry: crash ValueError('boom')" in message


def test_empty_capture_says_so() -> None:
    with (
        testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as c,
        pytest.raises(AssertionError, match=r"nothing was captured"),
    ):
        c.assert_event("login.complete")


def test_validate_glean_payload_rejects_what_the_pipeline_would() -> None:
    good = {
        "ping_info": {"seq": 0, "start_time": "x", "end_time": "x"},
        "client_info": {
            "telemetry_sdk_build": "t",
            "first_run_date": "Unknown",
            "os": "Unknown",
            "os_version": "Unknown",
            "architecture": "Unknown",
            "app_build": "Unknown",
            "app_display_version": "1",
            "app_channel": "test",
        },
    }
    testing.validate_glean_payload(good)
    bad = {**good, "events": [{"category": "a", "name": "b", "timestamp": -1}]}
    with pytest.raises(AssertionError, match=r"\['events', 0, 'timestamp'\]"):
        testing.validate_glean_payload(bad)


def test_packaged_schema_is_the_pipeline_copy() -> None:
    packaged = ROOT / "src" / "fxa_metrics" / "schemas" / "glean.1.schema.json"
    assert packaged.read_text() == (DATA / "glean.1.schema.json").read_text()
