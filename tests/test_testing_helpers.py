"""fxa_metrics.testing: the assertion helpers a service's own tests use."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# ------------------------------------------------------------------ issue 12


def test_definitions_are_memoised_by_path_and_content(tmp_path: Any) -> None:
    from fxa_metrics import _defs_cache

    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(EXAMPLE_METRICS.read_text())
    _defs_cache.clear()
    first = _defs_cache.load_cached((str(metrics),), (str(EXAMPLE_PINGS),), None)
    assert _defs_cache.load_cached((str(metrics),), (str(EXAMPLE_PINGS),), None) is first
    # Same content under a new mtime: the content key still finds it.
    os.utime(metrics, ns=(1, 1))
    assert _defs_cache.load_cached((str(metrics),), (str(EXAMPLE_PINGS),), None) is first
    # New content: parsed again.
    metrics.write_text(EXAMPLE_METRICS.read_text().replace("expires: never", "expires: never ", 1))
    second = _defs_cache.load_cached((str(metrics),), (str(EXAMPLE_PINGS),), None)
    assert second is not first
    with pytest.raises(fm.DefinitionsError, match="file not found"):
        _defs_cache.load_cached((str(tmp_path / "nope.yaml"),), (), None)


def test_capture_adopts_configure_and_explicit_settings_win() -> None:
    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as cap:
        fm.configure(
            service="fxa-app",
            app_id="accounts_backend",
            app_version="9.9.9",
            channel="stage",
            metrics_yaml=(),  # the capture's explicit definitions win
            enabled=True,
        )
        with fm.bind(uid=UID):
            fm.record("login.complete")
        [line] = cap.lines()
        assert line["Logger"] == "fxa-app-glean"
        assert line["Fields"]["document_namespace"] == "accounts_backend"
        with pytest.raises(fm.UndefinedMetricError):
            fm.record("login.nope")  # strict stays on
        assert [type(e) for e in cap.strict_errors()] == [fm.UndefinedMetricError]
        assert cap.internal_errors() == []
    assert not fm.is_configured()  # the app's configure() built nothing that outlives it


def test_capture_started_after_configure_adopts_it() -> None:
    out = io.StringIO()
    fm.configure(
        service="fxa-app",
        app_id="accounts_backend",
        app_version="1.0.0",
        channel="stage",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=out,
    )
    with testing.capture() as cap:
        fm.record("login.complete")
        cap.assert_event_once("login.complete")
    assert out.getvalue() == ""
    with pytest.raises(fm.ConfigurationError, match="capture"), testing.capture(app_id="Not Valid"):
        pass


def test_capture_rejects_unknown_sink_routes() -> None:
    sink = testing.CaptureSink("nope", [], threading.Lock())
    with (
        pytest.raises(fm.ConfigurationError, match="unknown route"),
        testing.capture(metrics_yaml=(), sinks={"nope": [sink]}),
    ):
        pass


def test_default_settings_memo_tolerates_unhashable_keywords() -> None:
    lookup = {"x": True}
    with testing.capture(metrics_yaml=(), consent_lookup_uid=lookup.get) as cap:
        assert cap.records() == []
    with testing.capture(metrics_yaml=[str(EXAMPLE_METRICS)], pings_yaml=[str(EXAMPLE_PINGS)]):
        fm.record("login.complete")


def test_encoder_before_anything_was_built() -> None:
    cap = testing.Capture()
    assert cap.encoder.line  # test identity, built on demand
    assert {"glean", "mozlog", "statsd", "sentry"} <= set(cap.sinks())


def test_filter_records_and_observed() -> None:
    with testing.capture(metrics_yaml=EXAMPLE_METRICS, pings_yaml=EXAMPLE_PINGS) as cap:
        fm.record(fm.Counter("a", 1, tags={"k": "v"}))
        fm.record(fm.Counter("b", 2))
        assert [o.name for o in cap.filter_records("incr", fields={"k": "v"})] == ["a"]
        assert [o.value for o in cap.observed("incr")] == [1, 2]
        with pytest.raises(ValueError, match="unknown record kind"):
            cap.observed("nope")
        with pytest.raises(AssertionError, match=r"expected incr b 2 time\(s\), found 1"):
            cap.assert_record("incr", "b", times=2)
        cap.clear()
        cap.assert_not_incr("a")


@given(
    expected=st.one_of(st.integers(), st.booleans(), st.text(max_size=5), st.floats(width=32)),
)
def test_wire_rule_is_consistent(expected: Any) -> None:
    from fxa_metrics._match import value_matches, wire

    # A value always matches itself and its own wire text.
    if expected == expected:  # NaN never equals itself, on the wire or not
        assert value_matches(expected, expected)
    assert value_matches(expected, wire(expected)) or isinstance(expected, float)
    assert value_matches(AnyTagValue, expected)


def test_wire_text_of_structures() -> None:
    from fxa_metrics._match import value_matches, wire

    assert wire({"b": 1, "a": [True]}) == '{"a":[true],"b":1}'
    assert value_matches({"a": 1}, {"a": 1})
    assert not value_matches(True, 1)  # a bool is not the number 1 on the wire


def test_compiled_definitions_are_cached_on_disk_keyed_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess
    import sys

    from fxa_metrics import _defs_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("FXA_METRICS_CACHE_DIR", str(cache))
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(EXAMPLE_METRICS.read_text())
    args = ([str(metrics)], [str(EXAMPLE_PINGS)], "1.0.0")
    _defs_cache.clear()
    first = _defs_cache.load_cached(*args)
    (entry,) = cache.glob("*.pickle")
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    # A fresh interpreter loads the compiled copy without importing glean_parser.
    code = (
        "import sys; from fxa_metrics import _defs_cache as c; "
        f"d = c.load_cached([{str(metrics)!r}], [{str(EXAMPLE_PINGS)!r}], '1.0.0'); "
        "print(len(d.metrics), 'glean_parser' in sys.modules)"
    )
    env = {**os.environ, "FXA_METRICS_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out == [str(len(first.metrics)), "False"]
    # Changed content: a new key, parsed again; a corrupt entry is ignored, not fatal.
    metrics.write_text(metrics.read_text() + "\n# changed\n")
    entry.write_bytes(b"not a pickle")
    _defs_cache.clear()
    assert len(_defs_cache.load_cached(*args).metrics) == len(first.metrics)
    assert len(list(cache.glob("*.pickle"))) == 2
    # A cache directory others can write to is never read.
    cache.chmod(0o777)
    _defs_cache.clear()
    content = (
        _defs_cache._content_key([str(metrics)]),
        _defs_cache._content_key([str(EXAMPLE_PINGS)]),
        "1.0.0",
    )
    assert _defs_cache._from_disk(content) is None
    cache.chmod(0o700)
    monkeypatch.setenv("FXA_METRICS_CACHE_DIR", "")
    assert _defs_cache.cache_dir() is None
