"""The glean-sdk route's check, routing and consent, with the route's in-memory sink.

No SDK runs here: ``MemorySdkSink`` stands in for it (as the pytest capture
would), so these tests are fast and cover every check, by example and by
property.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fxa_metrics as fm
from fxa_metrics import _facade, _glean_sdk
from fxa_metrics._definitions import load
from fxa_metrics._glean_sdk import MemorySdkSink, SdkSample
from tests.glean_sdk_support import ALL_PINGS, ALL_TYPES, MIXED

DEFS = load(ALL_TYPES, ALL_PINGS)


def configure(mem: MemorySdkSink, **kw: Any) -> None:
    settings: dict[str, Any] = {
        "service": "fxa-jobs",
        "app_id": "accounts_backend",
        "app_version": "1.0.0",
        "channel": "test",
        "metrics_yaml": ALL_TYPES,
        "pings_yaml": ALL_PINGS,
        "sinks": {"glean_sdk": [mem]},
        "replace_sinks": True,
        "strict": True,
    }
    fm.configure(**{**settings, **kw})


@pytest.fixture
def mem() -> MemorySdkSink:
    sink = MemorySdkSink()
    configure(sink)
    return sink  # the autouse fixture resets fxa_metrics afterwards


def test_a_metric_name_routes_by_its_type(mem: MemorySdkSink) -> None:
    fm.record("svc.requests")
    fm.record("svc.requests", value=2)
    fm.record("svc.status", value=3, label="error")
    fm.record(fm.GleanMetric("svc.latency", 12.6))
    fm.record("svc.cache_hits", value=(1, 2))
    assert mem.samples == [
        SdkSample("svc.requests", "counter", 1),
        SdkSample("svc.requests", "counter", 2),
        SdkSample("svc.status", "labeled_counter", 3, "error"),
        SdkSample("svc.latency", "timing_distribution", 13),
        SdkSample("svc.cache_hits", "rate", (1, 2)),
    ]
    assert mem.counter("svc.requests") == 3
    assert mem.counter("svc.status", label="error") == 3
    assert mem.counter("svc.status", label="ok") == 0


def test_samples_are_immutable(mem: MemorySdkSink) -> None:
    fm.record("svc.requests")
    with pytest.raises(AttributeError):
        mem.samples[0].value = 5  # type: ignore[misc]
    rec = fm.GleanMetric("svc.requests", 1)
    with pytest.raises(AttributeError):
        rec.value = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "kwargs", "field", "error"),
    [
        ("svc.requests", {"value": 0}, "value", fm.InvalidValueError),
        ("svc.requests", {"value": -1}, "value", fm.InvalidValueError),
        ("svc.requests", {"value": 2**31}, "value", fm.InvalidValueError),
        ("svc.requests", {"value": True}, "value", fm.InvalidValueError),
        ("svc.requests", {"value": "1"}, "value", fm.InvalidValueError),
        ("svc.requests", {"label": "ok"}, "label", fm.InvalidValueError),
        ("svc.status", {"label": "maybe"}, "label", fm.InvalidValueError),
        ("svc.status", {}, "label", fm.InvalidValueError),
        ("svc.latency", {}, "value", fm.InvalidValueError),
        ("svc.latency", {"value": -0.5}, "value", fm.InvalidValueError),
        ("svc.latency", {"value": float("nan")}, "value", fm.InvalidValueError),
        ("svc.rss", {"value": 1.5}, "value", fm.InvalidValueError),
        ("svc.cache_hits", {"value": 3}, "value", fm.InvalidValueError),
        ("svc.cache_hits", {"value": (1, -1)}, "value", fm.InvalidValueError),
        ("svc.requests", {"ping": "metrics"}, "ping", fm.InvalidRecordError),
    ],
)
def test_bad_values_raise_precisely_in_strict_mode(
    mem: MemorySdkSink, name: str, kwargs: dict[str, Any], field: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        fm.record(name, **kwargs)
    assert isinstance(info.value, fm.RecordError)
    assert (info.value.metric, info.value.field) == (name, field)
    assert mem.samples == []


def test_extra_goes_with_events_not_sdk_metrics(mem: MemorySdkSink) -> None:
    with pytest.raises(fm.InvalidRecordError, match=r"svc\.requests\.extra: a counter"):
        fm.record("svc.requests", {"reason": "x"})


def test_the_route_of_a_record_object_must_match_its_type(mem: MemorySdkSink) -> None:
    with pytest.raises(fm.UndefinedMetricError):
        fm.record(fm.GleanMetric("svc.nope"))
    with pytest.raises(fm.UndefinedMetricError):
        fm.record(fm.GleanMetric(123))  # type: ignore[arg-type]
    fm.reset()
    configure(mem, metrics_yaml=MIXED, pings_yaml=())
    with pytest.raises(fm.InvalidValueError, match="Glean server route"):
        fm.record(fm.GleanMetric("login.complete"))
    # ...and the server route's records refuse SDK metrics.
    with pytest.raises(fm.InvalidValueError, match="not an event"):
        fm.record(fm.Event("jobs.runs"))
    with pytest.raises(fm.InvalidValueError, match="glean-sdk route"):
        fm.record(fm.Metrics({"jobs.runs": 1}, ping="events"))


def test_expired_and_disabled_sdk_metrics_are_not_sent(tmp_path: Path) -> None:
    text = ALL_TYPES.read_text()
    text = text.replace(
        "    description: Requests served.\n",
        "    description: Requests served.\n    disabled: true\n",
    ).replace(
        "    description: Handler latency.\n    bugs: [https://bugzilla.mozilla.org/1]\n"
        "    data_reviews: [https://bugzilla.mozilla.org/1]\n"
        "    notification_emails: [fxa-staff@mozilla.com]\n    expires: never\n",
        "    description: Handler latency.\n    bugs: [https://bugzilla.mozilla.org/1]\n"
        "    data_reviews: [https://bugzilla.mozilla.org/1]\n"
        "    notification_emails: [fxa-staff@mozilla.com]\n    expires: 2020-01-01\n",
    )
    path = tmp_path / "metrics.yaml"
    path.write_text(text)
    mem = MemorySdkSink()
    configure(mem, metrics_yaml=path, strict=False)
    fm.record("svc.requests")
    fm.record("svc.latency", value=1)
    assert mem.samples == []
    assert fm.stats().drops == {"disabled": 1, "expired": 1}


# ------------------------------------------------------------------ consent


def test_consent_is_the_service_switch_alone_never_the_user(tmp_path: Path) -> None:
    calls: list[str] = []

    def lookup(uid: str) -> bool:
        calls.append(uid)
        return True  # everyone opted out

    mem = MemorySdkSink()
    configure(mem, consent_lookup_uid=lookup)
    with fm.bind(uid="0123456789abcdef0123456789abcdef", metrics_opt_out=True):
        fm.record("svc.requests")
    with fm.bind(uid="fedcba9876543210fedcba9876543210"):
        fm.record("svc.requests")
    # Service-level data: an opted-out user does not stop it, and no lookup runs.
    assert mem.counter("svc.requests") == 2
    assert calls == []
    # No user context reaches the route at all.
    assert all(set(s._fields) == {"identifier", "type", "value", "label"} for s in mem.samples)
    fm.reset()
    configure(mem, enabled=False, strict=False)
    fm.record("svc.requests")
    assert mem.counter("svc.requests") == 2
    assert fm.stats().drops == {"service_disabled": 1}


# ------------------------------------------------------------------ properties

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.tuples(st.integers(-5, 5), st.integers(-5, 5)),
    st.lists(st.integers(), max_size=2),
)
_NAMES = st.sampled_from([*sorted(DEFS.metrics), "svc.unknown", ""])
_LABELS = st.one_of(st.none(), st.sampled_from(["ok", "error", "", "other"]), st.integers())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_NAMES, value=_VALUES, label=_LABELS)
def test_any_input_is_sent_checked_or_refused_with_a_named_error(
    name: str, value: Any, label: Any
) -> None:
    rec = fm.GleanMetric(name, value, label)
    error: fm.RecordError | None = None
    try:
        sample = _glean_sdk.check(DEFS, rec)
    except fm.RecordError as e:
        error = e
    if error is not None:
        assert error.metric == name
        assert error.field in (None, "value", "label")
        return
    md = DEFS.metrics[name]
    assert sample.identifier == name
    assert sample.type == md.type
    if md.type == "rate":
        num, den = sample.value
        assert 0 <= num < 2**31
        assert 0 <= den < 2**31
    else:
        assert isinstance(sample.value, int)
        assert not isinstance(sample.value, bool)
        assert 0 <= sample.value < 2**63
    if md.type in ("counter", "labeled_counter"):
        assert sample.value >= 1
    assert (sample.label is not None) == (md.type == "labeled_counter")


_PROD = MemorySdkSink()


@settings(max_examples=100, deadline=None)
@given(name=_NAMES, value=_VALUES, label=_LABELS)
def test_production_mode_never_raises_and_counts_every_drop(
    name: str, value: Any, label: Any
) -> None:
    if not fm.is_configured():  # once per test: the autouse fixture resets after it
        configure(_PROD, strict=False)
    sent, dropped = len(_PROD.samples), fm.stats().dropped
    fm.record(fm.GleanMetric(name, value, label))
    assert (len(_PROD.samples) - sent) + (fm.stats().dropped - dropped) == 1


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("glean_sdk_ping_interval", 0),
        ("glean_sdk_ping_interval", -1.0),
        ("glean_sdk_queue_size", 0),
        ("glean_sdk_shutdown_timeout", True),
        ("glean_sdk_shutdown_timeout", "5"),
    ],
)
def test_bad_sdk_settings_fail_configure(key: str, value: Any) -> None:
    with pytest.raises(fm.ConfigurationError, match=key):
        configure(MemorySdkSink(), **{key: value})


def test_the_sink_starts_nothing_until_something_is_recorded(tmp_path: Path) -> None:
    fm.configure(
        service="s",
        app_id="accounts_backend",
        app_version="1",
        channel="c",
        metrics_yaml=ALL_TYPES,
        pings_yaml=ALL_PINGS,
        glean_sdk_data_dir=tmp_path,
    )
    rt = _facade.get_runtime()
    assert rt is not None
    (sink,) = rt.sinks["glean_sdk"]
    assert isinstance(sink, _glean_sdk.GleanSdkSink)
    assert sink.cfg.base_dir == str(tmp_path)
    assert sink.cfg.server_endpoint is None  # Glean's own production endpoint
    assert sink.stats is rt.stats
    assert "GleanSdkSink" in repr(sink)
    assert fm.ROUTES["glean_sdk"].policy is fm.Policy.SERVICE_LEVEL
    # Nothing starts (no thread, no directory) until something is recorded.
    assert sink._thread is None
    assert list(tmp_path.iterdir()) == []
    sink.flush(0.1)  # nothing to flush: returns at once
    assert list(tmp_path.iterdir()) == []


def test_default_data_directory_is_per_app_under_tmp() -> None:
    base = _glean_sdk.default_base_dir("accounts_backend")
    assert base.endswith(os.path.join("fxa-metrics-glean-sdk", "accounts_backend"))


def test_the_pytest_capture_records_the_route_with_counter_helpers() -> None:
    from fxa_metrics import testing

    with testing.capture(metrics_yaml=ALL_TYPES, pings_yaml=ALL_PINGS) as cap:
        fm.record("svc.requests", value=2)
        fm.record("svc.status", label="ok")
        fm.record("svc.latency", value=5)
        cap.assert_counter("svc.requests")
        cap.assert_counter_once("svc.requests", value=2)
        cap.assert_counter("svc.status", label="ok")
        cap.assert_not_counter("svc.status", label="error")
        cap.assert_counter_once("svc.latency", value=5)
        with pytest.raises(AssertionError, match=r"(?s)sdk svc\.jobs.*svc\.requests"):
            cap.assert_counter("svc.jobs")
        with pytest.raises(AssertionError, match="exactly once"):
            cap.assert_counter_once("svc.requests", value=3)
        with pytest.raises(AssertionError, match="never"):
            cap.assert_not_counter("svc.requests")
        # Strict, like the rest of the capture.
        with pytest.raises(fm.InvalidValueError):
            fm.record("svc.requests", value=0)
