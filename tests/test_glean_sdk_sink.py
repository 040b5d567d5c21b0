"""The glean-sdk route against the real SDK and a real loopback ingestion endpoint.

Every ping the endpoint receives is validated against the pipeline's schema
and must carry exactly what was recorded. glean-sdk is one per process; each
test starts it (lazily, via record()) and ``fm.reset()`` lets it go again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import _facade, _glean_sdk
from fxa_metrics._recv_http import Receiver
from tests.conftest import validate_payload
from tests.glean_sdk_support import (
    ALL_PINGS,
    ALL_TYPES,
    MIXED,
    UPLOAD_WAIT,
    doc_id,
    payload,
    ping_name,
)

pytest.importorskip("glean")


@pytest.fixture
def recv() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r
        fm.reset()  # while the endpoint still answers: what close() submits is delivered


def sdk_sink() -> _glean_sdk.GleanSdkSink:
    rt = _facade.get_runtime()
    assert rt is not None
    (sink,) = rt.sinks["glean_sdk"]
    assert isinstance(sink, _glean_sdk.GleanSdkSink)
    return sink


def configure(base: Path, endpoint: str, **kw: Any) -> None:
    settings: dict[str, Any] = {
        "service": "fxa-test-jobs",
        "app_id": "accounts_backend",
        "app_version": "1.2.3",
        "channel": "test",
        "metrics_yaml": ALL_TYPES,
        "pings_yaml": ALL_PINGS,
        "glean_sdk_data_dir": base,
        "glean_sdk_server_endpoint": endpoint,
        "glean_sdk_ping_interval": 3600.0,
        "strict": True,
    }
    fm.configure(**{**settings, **kw})


def mine(recv: Receiver) -> list[Any]:
    """The uploads from this test's SDK client only.

    An upload subprocess of an earlier test can outlive it and reach a later
    test's endpoint when the port is reused: those carry another client_id.
    """
    live = sdk_sink()._live
    if live is None:
        return []
    client = (live.data_dir / "client_id.txt").read_text().strip()
    return [u for u in recv.uploads() if payload(u)["client_info"]["client_id"] == client]


def wait_uploads(recv: Receiver, n: int, timeout: float = UPLOAD_WAIT) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ups = mine(recv)
        if len(ups) >= n:
            return ups
        time.sleep(0.05)
    raise AssertionError(f"{len(mine(recv))} upload(s) after {timeout}s, expected {n}")


def test_every_sdk_type_arrives_valid_with_the_recorded_values(
    tmp_path: Path, recv: Receiver
) -> None:
    configure(tmp_path, recv.url)
    fm.record("svc.requests")
    fm.record("svc.requests", value=4)
    fm.record("svc.status", label="ok", value=3)
    fm.record("svc.status", label="error")
    fm.record("svc.latency", value=12)
    fm.record("svc.latency", value=30.4)
    fm.record(fm.GleanMetric("svc.rss", 2048))
    fm.record("svc.batch", value=42)
    fm.record("svc.startup", value=250)
    fm.record("svc.cache_hits", value=(3, 4))
    fm.record("svc.jobs", value=7)
    sink = sdk_sink()
    sink.flush(UPLOAD_WAIT)
    ups = wait_uploads(recv, 2)
    assert sorted(ping_name(u) for u in ups) == ["metrics", "service-stats"]
    by_ping = {ping_name(u): payload(u) for u in ups}
    for body in by_ping.values():
        validate_payload(body)
    metrics = by_ping["metrics"]["metrics"]
    assert metrics["counter"] == {"svc.requests": 5}
    assert metrics["labeled_counter"]["svc.status"] == {"ok": 3, "error": 1}
    latency = metrics["timing_distribution"]["svc.latency"]
    assert latency["sum"] == (12 + 30) * 1_000_000  # milliseconds, stored in nanoseconds
    assert sum(latency["values"].values()) == 2
    assert metrics["memory_distribution"]["svc.rss"]["sum"] == 2048 * 1024
    assert metrics["custom_distribution"]["svc.batch"]["sum"] == 42
    assert metrics["timespan"]["svc.startup"] == {"time_unit": "millisecond", "value": 250}
    assert metrics["rate"]["svc.cache_hits"] == {"numerator": 3, "denominator": 4}
    # The custom ping carries its own metric only.
    assert by_ping["service-stats"]["metrics"] == {"counter": {"svc.jobs": 7}}
    client = by_ping["metrics"]["client_info"]
    assert client["app_channel"] == "test"
    assert client["app_display_version"] == "1.2.3"
    assert ups[0].headers["x-telemetry-agent"].startswith("Glean/")
    assert ups[0].path.startswith("/submit/accounts-backend/")
    # Counted: two pings submitted and delivered, nothing lost.
    assert sink.counts["submitted"] == 2
    assert sink.counts["delivered"] == 2
    assert sink.pending() == 0
    assert fm.stats().dropped == 0
    # Its data directory is this process's own.
    assert sink._live is not None
    assert sink._live.data_dir.parent == tmp_path


def test_mixed_file_sends_events_to_the_server_route_and_counters_to_the_sdk(
    tmp_path: Path, recv: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    stream = io.StringIO()
    configure(tmp_path, recv.url, metrics_yaml=MIXED, pings_yaml=(), glean_stream=stream)
    with fm.bind(uid="0123456789abcdef0123456789abcdef", flow_id="f" * 64):
        fm.record("login.complete", extra={"reason": "password"})
        fm.record("jobs.runs")
        fm.record("jobs.duration", value=1500)
    # The event (and the strings filled from the request) went out as a server event line...
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["Type"] == "glean-server-event"
    server_payload = json.loads(line["Fields"]["payload"])
    validate_payload(server_payload)
    assert server_payload["events"][0]["name"] == "complete"
    assert set(server_payload["metrics"]["string"]) == {
        "account.user_id_sha256",
        "session.flow_id",
    }
    assert "counter" not in server_payload["metrics"]
    # ...the counter and the distribution through the SDK, with no user data in it.
    sdk_sink().flush(UPLOAD_WAIT)
    (up,) = wait_uploads(recv, 1)
    body = payload(up)
    validate_payload(body)
    assert ping_name(up) == "metrics"
    assert body["metrics"]["counter"] == {"jobs.runs": 1}
    assert body["metrics"]["timing_distribution"]["jobs.duration"]["sum"] == 1500 * 1_000_000
    assert "string" not in body["metrics"]
    assert "0123456789abcdef" not in up.body.decode()


def test_endpoint_down_then_up_delivers_every_ping_once_and_counts(tmp_path: Path) -> None:
    with Receiver() as probe:
        port = probe.port  # a free port, closed again: the endpoint is down
    configure(tmp_path, f"http://127.0.0.1:{port}")
    fm.record("svc.requests", value=3)
    sink = sdk_sink()
    sink.flush(6.0)  # bounded: the endpoint refuses, the ping stays on disk
    assert sink.pending() == 1
    assert sink.counts.get("delivered", 0) == 0
    assert sink.counts["retry"] >= 1
    assert fm.stats().errors["glean_sdk_upload_retry"] >= 1
    fm.record("svc.requests", value=2)
    sink.flush(2.0)  # a second ping, also held
    with Receiver(port=port) as recv:  # the endpoint is back, on the same port
        sink.flush(UPLOAD_WAIT)
        ups = wait_uploads(recv, 2)
        time.sleep(0.5)  # nothing more comes
        ups = mine(recv)
    assert len(ups) == 2
    assert len({doc_id(u) for u in ups}) == 2  # each delivered once
    for u in ups:
        validate_payload(payload(u))
    assert sorted(payload(u)["metrics"]["counter"]["svc.requests"] for u in ups) == [2, 3]
    assert sink.counts["delivered"] == 2
    assert sink.pending() == 0
    assert fm.stats().dropped == 0


def test_close_is_bounded_when_the_endpoint_never_answers(tmp_path: Path) -> None:
    with Receiver(blackhole=True) as hole:
        configure(tmp_path, hole.url, glean_sdk_shutdown_timeout=2.0)
        fm.record("svc.requests")
        sink = sdk_sink()
        assert sink._started.wait(UPLOAD_WAIT)
        started = time.monotonic()
        fm.reset(timeout=2.0)
        took = time.monotonic() - started
    assert took < 2.0 + 1.0, took
    # The ping was not lost: it waits on disk for the next start (counted).
    pid_dir = next(tmp_path.iterdir())
    assert _glean_sdk.pending_count(pid_dir) == 1
    assert sink.stats.snapshot().errors[_glean_sdk.PENDING_AT_CLOSE] == 1


def test_pings_are_submitted_on_the_interval(tmp_path: Path, recv: Receiver) -> None:
    configure(tmp_path, recv.url, glean_sdk_ping_interval=0.5)
    fm.record("svc.requests", value=2)
    (up,) = wait_uploads(recv, 1)
    assert payload(up)["metrics"]["counter"] == {"svc.requests": 2}
    sink = sdk_sink()
    # An idle interval submits nothing: no near-empty pings.
    time.sleep(1.5)
    assert len(mine(recv)) == 1
    assert sink.counts["submitted"] == 1


def test_the_pre_start_queue_is_bounded_and_drops_are_counted(
    tmp_path: Path, recv: Receiver
) -> None:
    configure(tmp_path, recv.url, glean_sdk_queue_size=2, strict=False)
    # Hold the process's SDK so the route cannot start: records queue, then overflow.
    _glean_sdk._acquire_sdk()
    try:
        for _ in range(5):
            fm.record("svc.requests")
    finally:
        _glean_sdk._release_sdk()
    assert fm.stats().drops == {"glean_sdk_queue_full": 3}
    sink = sdk_sink()
    sink.flush(UPLOAD_WAIT)
    (up,) = wait_uploads(recv, 1)
    assert payload(up)["metrics"]["counter"] == {"svc.requests": 2}  # the queued two


def test_a_failed_start_drops_and_counts_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should go")
    configure(blocker, "http://127.0.0.1:9", strict=False)
    fm.record("svc.requests")
    sink = sdk_sink()
    assert sink._started.wait(UPLOAD_WAIT)
    fm.record("svc.requests")
    snap = fm.stats()
    assert snap.drops == {"glean_sdk_start_failed": 2}
    assert snap.errors["glean_sdk_start_failed"] == 1
    rt = _facade.get_runtime()
    assert rt is not None
    assert rt.stats.internal_errors  # kept for the pytest tripwire
    rt.stats.internal_errors.clear()


def test_records_after_close_are_dropped_and_counted(tmp_path: Path) -> None:
    configure(tmp_path, "http://127.0.0.1:9", strict=False)
    sink = sdk_sink()
    sink.close(1.0)
    sink.emit(_glean_sdk.SdkSample("svc.requests", "counter", 1))
    assert sink.stats.snapshot().drops == {"glean_sdk_closed": 1}
