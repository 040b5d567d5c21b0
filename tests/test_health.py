"""Server health: dockerflow's heartbeat shape, fxa_metrics' own checks, version, process gauges."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import fxa_metrics as fm
from fxa_metrics import _facade, _health
from fxa_metrics._recv_http import Receiver
from fxa_metrics._recv_udp import UdpReceiver

from .conftest import EXAMPLE_METRICS, EXAMPLE_PINGS


def _configure(**options: Any) -> None:
    fm.configure(
        service="fxa-health",
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=EXAMPLE_METRICS,
        pings_yaml=EXAMPLE_PINGS,
        glean_stream=io.StringIO(),
        mozlog_handler="never",
        **options,
    )


def _beat() -> tuple[int, dict[str, Any]]:
    answer = fm.heartbeat()
    assert answer.content_type == "application/json"
    return answer.status, json.loads(answer.body)


class _Broken(fm.Sink):
    def emit(self, record: Any) -> None:
        raise OSError("disk full")


def test_unconfigured_fails_the_sinks_check() -> None:
    status, body = _beat()
    assert status == 500
    assert body["status"] == "error"
    assert body["details"]["fxa_metrics.sinks"]["messages"] == {
        "fxa_metrics.E001": "fxa_metrics is not configured"
    }


def test_healthy_is_200_in_dockerflow_shape() -> None:
    with UdpReceiver() as rx:
        _configure(statsd_host=rx.host, statsd_port=rx.port)
        status, body = _beat()
    assert status == 200
    assert body == {
        "status": "ok",
        "checks": {
            "fxa_metrics.sinks": "ok",
            "fxa_metrics.drops": "ok",
            "fxa_metrics.statsd": "ok",
            "fxa_metrics.sentry": "ok",
        },
        "details": {},
    }


def test_a_closed_statsd_socket_fails_naming_the_check() -> None:
    with UdpReceiver() as rx:
        _configure(statsd_host=rx.host, statsd_port=rx.port)
        rt = _facade.get_runtime()
        assert rt is not None
        rt.sinks["statsd"][0].close()
        status, body = _beat()
    assert status == 500
    assert body["checks"]["fxa_metrics.statsd"] == "error"
    assert body["checks"]["fxa_metrics.sinks"] == "error"


def test_lost_records_fail_the_drops_check_for_one_interval() -> None:
    _configure(sinks={"glean": [_Broken()]}, strict=False)
    assert _beat()[0] == 200
    fm.record("login.complete")
    status, body = _beat()
    assert status == 500
    assert body["details"]["fxa_metrics.drops"]["messages"] == {
        "fxa_metrics.drops.sink_error": "1 record(s) dropped (sink_error) since the last heartbeat"
    }
    # The next interval lost nothing: healthy again.
    assert _beat()[0] == 200


def test_policy_drops_are_not_losses_and_bad_calls_only_warn() -> None:
    _configure(strict=False)
    _beat()
    with fm.bind(uid="0123456789abcdef0123456789abcdef", metrics_opt_out=True):
        fm.record("login.complete")  # consent: policy
    fm.record("no.such_metric")  # a caller's bug: reported, not a failure
    status, body = _beat()
    assert fm.stats().drops == {"consent": 1, "undefined": 1}
    assert status == 200
    assert body["status"] == "warning"
    assert body["checks"]["fxa_metrics.drops"] == "warning"
    assert list(body["details"]["fxa_metrics.drops"]["messages"]) == ["fxa_metrics.drops.undefined"]


def test_sentry_client_closed_or_stalled_fails() -> None:
    pytest.importorskip("sentry_sdk")
    with Receiver(blackhole=True) as recv:
        _configure(sentry_dsn=recv.dsn())
        rt = _facade.get_runtime()
        assert rt is not None
        [sink] = rt.sinks["sentry"]
        assert _beat()[1]["checks"]["fxa_metrics.sentry"] == "ok"
        fm.record(fm.Crash(RuntimeError("x")))
        sink.flush(0.3)  # the endpoint never answers: the transport cannot drain
        status, body = _beat()
        assert status == 500
        assert "fxa_metrics.E021" in body["details"]["fxa_metrics.sentry"]["messages"]
        sink.close(0.1)
        status, body = _beat()
        assert "fxa_metrics.E020" in body["details"]["fxa_metrics.sentry"]["messages"]


def test_a_check_that_raises_fails_and_never_breaks_the_endpoint() -> None:
    _configure()

    def broken() -> None:
        raise ZeroDivisionError

    fm.register_check("host.broken", broken)
    try:
        status, body = _beat()
    finally:
        fm.unregister_check("host.broken")
    assert status == 500
    assert body["details"]["host.broken"]["messages"] == {
        "host.broken.raised": "check raised ZeroDivisionError"
    }
    assert _beat()[0] == 200


def test_register_check_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        fm.register_check("x", "not callable")  # type: ignore[arg-type]


def test_warning_findings_keep_200() -> None:
    _configure()
    fm.register_check("host.slow", lambda: [fm.CheckMessage.warning("slow", "host.W1")])
    try:
        status, body = _beat()
    finally:
        fm.unregister_check("host.slow")
    assert (status, body["status"]) == (200, "warning")


def test_version_and_lbheartbeat(tmp_path: Path) -> None:
    good = tmp_path / "version.json"
    good.write_text('{"version": "1", "commit": "c"}')
    assert json.loads(_health.version(good).body) == {"version": "1", "commit": "c"}
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert _health.version(bad).status == 404
    assert _health.respond("/__version__", tmp_path / "none.json").status == 404  # type: ignore[union-attr]
    assert _health.respond("/__lbheartbeat__") == _health.HealthResponse(200, b"", "text/plain")
    assert _health.respond("/elsewhere") is None


def test_version_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "version.json").write_text('{"version": "cwd"}')
    monkeypatch.chdir(tmp_path)
    assert json.loads(_health.version().body) == {"version": "cwd"}


def test_process_gauges_reach_statsd_and_stop_with_reset() -> None:
    with UdpReceiver() as rx:
        _configure(statsd_host=rx.host, statsd_port=rx.port)
        gauges = fm.start_process_gauges(0.05)
        deadline = time.monotonic() + 10
        names: set[str] = set()
        while time.monotonic() < deadline and "process.gc.collections" not in names:
            names = {ln.decode().split(":")[0] for ln in rx.lines()}
            time.sleep(0.05)
        assert gauges.running
        fm.reset()
        assert not gauges.running
    assert {
        "process.cpu_percent", "process.rss_bytes", "process.open_fds",
        "process.gc.gen0", "process.gc.gen2", "process.gc.collections",
    } <= names  # fmt: skip
    assert "fxa_metrics-gauges" not in {t.name for t in threading.enumerate()}


def test_process_gauge_values_are_sane() -> None:
    gauges = fm.ProcessGauges(1.0)
    sample = gauges.sample()
    assert sample["rss_bytes"] > 1_000_000
    assert sample["open_fds"] >= 3
    assert sample["cpu_percent"] >= 0
    assert sample["gc.collections"] >= 0
    gauges.stop()  # never started: a no-op


def test_process_gauges_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        fm.ProcessGauges(0)


def test_a_failing_gauge_round_does_not_kill_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def flaky(self: fm.ProcessGauges) -> None:
        calls.append(1)
        raise RuntimeError("sampling failed")

    monkeypatch.setattr(fm.ProcessGauges, "emit", flaky)
    gauges = fm.start_process_gauges(0.02)
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gauges.running
    gauges.stop()
    assert not gauges.running
    assert len(calls) >= 3
