"""The examples/ services as real processes on 127.0.0.1, against the real receivers.

gunicorn (pre-fork workers) serves the Flask and Django examples, uvicorn the
FastAPI one; statsd goes to a real UDP socket, Sentry envelopes to a real HTTP
endpoint. No PYTHONUNBUFFERED: what a deployment runs. Per service:

* a crashing view gives exactly one Sentry event, ``handled: false``, and a
  5xx ``request.summary`` at ERROR (Severity 3), with the framework's
  exception propagation on and off;
* statsd ``url_request`` path tags are route templates (or ``_unmatched_``);
* consented events are emitted, opted-out ones withheld (FastAPI: with
  fxa_metrics' middleware inside and outside the host's consent middleware);
* ``/__heartbeat__`` answers 200, then 500 naming the check once it fails;
  ``/__lbheartbeat__`` and ``/__version__`` answer; process gauges arrive.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fxa_metrics._recv_http import Receiver
from fxa_metrics._recv_udp import UdpReceiver

from .conftest import ROOT, validate_payload

UIDS = [f"{i:032x}" for i in range(1, 9)]
CONSENTING = {u for u in UIDS if int(u[-1], 16) % 4 != 0}  # examples/_setup.opted_out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(port: int, method: str, path: str) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=None)
    if method == "POST":
        req.data = b""
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.returncode}")
        try:
            if _http(port, "GET", "/__lbheartbeat__")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


@contextmanager
def _serving(cmd: list[str], port: int, env: dict[str, str], out: Path) -> Iterator[None]:
    env = {k: v for k, v in {**os.environ, **env}.items() if k != "PYTHONUNBUFFERED"}
    with out.open("wb") as fh, (out.parent / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=err, cwd=ROOT, env=env)
        try:
            _wait_up(port, proc)
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def _gunicorn(app: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "10", app,
    ]  # fmt: skip


def _uvicorn(app: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", app,
    ]  # fmt: skip


def _sentry_events(sentry: Receiver) -> list[dict[str, Any]]:
    events = []
    for body in sentry.envelopes():
        for line in body.splitlines()[1:]:
            item = json.loads(line)
            if isinstance(item, dict) and "exception" in item:
                events.append(item)
    return events


def _drive(port: int, login_path: str, tmp_path: Path) -> dict[str, Any]:
    """The requests every service gets; returns what the health paths answered."""
    for i, uid in enumerate(UIDS):
        path = login_path.format(uid=uid, sync="-sync" if i % 2 else "")
        assert _http(port, "POST", path)[0] == 200, path
    assert _http(port, "GET", "/v1/boom")[0] == 500
    assert _http(port, "GET", "/no/such/route/0123456789abcdef0123456789abcdef")[0] == 404
    seen: dict[str, Any] = {"healthy": _http(port, "GET", "/__heartbeat__")}
    (tmp_path / "maintenance").touch()
    seen["failing"] = _http(port, "GET", "/__heartbeat__")
    seen["lb"] = _http(port, "GET", "/__lbheartbeat__")
    seen["version"] = _http(port, "GET", "/__version__")
    return seen


def _check_health(seen: dict[str, Any]) -> None:
    code, body = seen["healthy"]
    assert code == 200, body
    healthy = json.loads(body)
    assert healthy["status"] == "ok"
    assert set(healthy["checks"]) >= {
        "fxa_metrics.sinks", "fxa_metrics.drops", "fxa_metrics.statsd", "fxa_metrics.sentry",
        "example.maintenance",
    }  # fmt: skip
    code, body = seen["failing"]
    failing = json.loads(body)
    assert code == 500
    assert failing["status"] == "error"
    assert failing["checks"]["example.maintenance"] == "error"
    assert failing["details"]["example.maintenance"]["messages"] == {
        "example.E001": "the service is in maintenance"
    }
    assert seen["lb"][0] == 200
    code, body = seen["version"]
    assert code == 200
    assert json.loads(body)["version"] == "1.0.0"


def _check_output(out: Path, service: str) -> None:
    lines = [json.loads(ln) for ln in out.read_text().splitlines() if ln.startswith("{")]
    glean = [ln for ln in lines if ln["Type"] == "glean-server-event"]
    users = set()
    for ln in glean:
        payload = json.loads(ln["Fields"]["payload"])
        validate_payload(payload)
        users.add(payload["metrics"]["string"]["account.user_id"])
    assert len(glean) == len(CONSENTING)
    assert users == CONSENTING
    summaries = [ln for ln in lines if ln["Type"] == "request.summary"]
    assert all(s["Logger"] == service for s in summaries)
    [crash] = [s for s in summaries if s["Fields"]["path"] == "/v1/boom"]
    assert crash["Fields"]["code"] == 500
    assert crash["Fields"]["errno"] == 999
    assert crash["Severity"] == 3  # ERROR, as dockerflow logs a failed request
    ok = [s for s in summaries if s["Fields"]["code"] == 200]
    assert len(ok) == len(UIDS)
    assert all(s["Severity"] == 6 for s in ok)


def _check_statsd(statsd: UdpReceiver, template: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [ln.decode() for ln in statsd.lines()]
        timings = [ln for ln in lines if ln.startswith("url_request,")]
        if len(timings) >= len(UIDS) + 2 and any(ln.startswith("process.") for ln in lines):
            break
        time.sleep(0.2)
    paths = {ln.split("path=")[1].split(",")[0].split(":")[0] for ln in timings}
    assert paths == {template, "/v1/boom", "_unmatched_"}, timings
    assert any(ln.startswith("process.rss_bytes:") for ln in lines)
    assert any(ln.startswith("process.open_fds:") for ln in lines)


def _check_sentry(sentry: Receiver) -> None:
    assert sentry.wait_for(1, timeout=20)
    time.sleep(1.0)  # a duplicate would arrive by now
    [event] = _sentry_events(sentry)
    [exc] = event["exception"]["values"]
    assert exc["type"] == "RuntimeError"
    assert exc["mechanism"]["handled"] is False


@contextmanager
def _receivers() -> Iterator[tuple[UdpReceiver, Receiver]]:
    with UdpReceiver() as statsd, Receiver() as sentry:
        yield statsd, sentry


def _env(statsd: UdpReceiver, sentry: Receiver, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(statsd.port),
        "SENTRY_DSN": sentry.dsn("1"),
        "EXAMPLE_MAINTENANCE_FILE": str(tmp_path / "maintenance"),
        "EXAMPLE_GAUGES_INTERVAL": "0.2",
        **extra,
    }


@pytest.mark.integration
@pytest.mark.parametrize("propagate", ["0", "1"], ids=["propagate-off", "propagate-on"])
def test_flask_under_gunicorn(tmp_path: Path, propagate: str) -> None:
    port = _free_port()
    out = tmp_path / "stdout.log"
    with _receivers() as (statsd, sentry):
        env = _env(statsd, sentry, tmp_path, EXAMPLE_PROPAGATE=propagate)
        with _serving(_gunicorn("examples.flask_app:app", port), port, env, out):
            seen = _drive(port, "/v1/account/{uid}/login", tmp_path)
            _check_sentry(sentry)
            _check_statsd(statsd, "/v1/account/_uid_/login")
    _check_health(seen)
    _check_output(out, "fxa-example-flask")


@pytest.mark.integration
@pytest.mark.parametrize("propagate", ["0", "1"], ids=["propagate-off", "propagate-on"])
def test_django_under_gunicorn(tmp_path: Path, propagate: str) -> None:
    port = _free_port()
    out = tmp_path / "stdout.log"
    with _receivers() as (statsd, sentry):
        env = _env(statsd, sentry, tmp_path, EXAMPLE_PROPAGATE=propagate)
        with _serving(_gunicorn("examples.django_app:application", port), port, env, out):
            seen = _drive(port, "/v1/account/{uid}/login", tmp_path)
            _check_sentry(sentry)
            _check_statsd(statsd, "/v1/account/_uid_/login")
    _check_health(seen)
    _check_output(out, "fxa-example-django")


@pytest.mark.integration
@pytest.mark.parametrize("order", ["metrics-outer", "metrics-inner"])
def test_fastapi_under_uvicorn_in_either_middleware_order(tmp_path: Path, order: str) -> None:
    port = _free_port()
    out = tmp_path / "stdout.log"
    with _receivers() as (statsd, sentry):
        env = _env(statsd, sentry, tmp_path, EXAMPLE_MIDDLEWARE_ORDER=order)
        with _serving(_uvicorn("examples.fastapi_app:app", port), port, env, out):
            # Odd requests go to the sync endpoint (a worker thread).
            seen = _drive(port, "/v1/account/{uid}/login{sync}", tmp_path)
            _check_sentry(sentry)
            _check_statsd_fastapi(statsd)
    _check_health(seen)
    _check_output(out, "fxa-example-fastapi")


def _check_statsd_fastapi(statsd: UdpReceiver) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = [ln.decode() for ln in statsd.lines()]
        timings = [ln for ln in lines if ln.startswith("url_request,")]
        if len(timings) >= len(UIDS) + 2 and any(ln.startswith("process.") for ln in lines):
            break
        time.sleep(0.2)
    paths = {ln.split("path=")[1].split(",")[0].split(":")[0] for ln in timings}
    assert paths == {
        "/v1/account/_uid_/login", "/v1/account/_uid_/login-sync", "/v1/boom", "_unmatched_",
    }, timings  # fmt: skip
    assert any(ln.startswith("process.rss_bytes:") for ln in lines)
