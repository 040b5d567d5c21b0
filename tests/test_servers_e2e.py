"""End to end under real servers on 127.0.0.1: gunicorn (pre-fork WSGI) and uvicorn (ASGI).

The service's stdout is the pipeline's input: we read it back and check every
line, per worker process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from fxa_metrics._recv_udp import UdpReceiver

from .conftest import ROOT, validate_payload

N = 24
UIDS = [f"{i:032x}" for i in range(N)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def _serve_and_drive(
    cmd: list[str], port: int, out: Path, statsd_port: int, master: list[int] | None = None
) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "E2E_STATSD_PORT": str(statsd_port)}
    with out.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        if master is not None:
            master.append(proc.pid)
        try:
            _wait_up(port, proc)
            for i, uid in enumerate(UIDS):
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/account/{uid}/login",
                    method="POST",
                    data=b"",
                    headers={"User-Agent": "e2e/1.0", "X-Opt-Out": "1" if i % 4 == 0 else "0"},
                )
                with urllib.request.urlopen(req, timeout=10) as resp:
                    assert resp.status == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]


TIMING = re.compile(
    r"^url_request,method=POST,path=(?P<path>[^,]+),status=200:(?P<ms>[0-9.]+)\|ms$"
)


def _check_statsd(received: UdpReceiver, path: str) -> None:
    received.wait_for(N, timeout=10)
    lines = [line.decode() for line in received.lines()]
    assert len(lines) == N
    for line in lines:
        m = TIMING.match(line)
        assert m, line
        assert m["path"] == path
        assert float(m["ms"]) >= 0


def _check(lines: list[dict[str, Any]], service: str) -> set[int]:
    glean = [ln for ln in lines if ln["Type"] == "glean-server-event"]
    summaries = [ln for ln in lines if ln["Type"] == "request.summary"]
    # Every 4th user opted out: their product events never reach stdout.
    consenting = [u for i, u in enumerate(UIDS) if i % 4 != 0]
    assert len(glean) == len(consenting)
    seen = set()
    for ln in glean:
        assert ln["Logger"] == f"{service}-glean"
        assert ln["EnvVersion"] == "2.0"
        payload = json.loads(ln["Fields"]["payload"])
        validate_payload(payload)
        seen.add(payload["metrics"]["string"]["account.user_id"])
        assert ln["Fields"]["user_agent"] == "e2e/1.0"
    assert seen == set(consenting)
    assert len(summaries) == N
    assert all(s["Logger"] == service and s["Fields"]["code"] == 200 for s in summaries)
    # Every summary names its user (bound by the handler, inside the middleware),
    # opted out or not: uid is operational, as in FxA's request.summary.
    assert {s["Fields"]["uid"] for s in summaries} == set(UIDS)
    return {ln["Pid"] for ln in glean}


@pytest.mark.integration
def test_gunicorn_prefork_workers(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5", "--preload", "tests.apps.wsgi_app:app",
    ]  # fmt: skip
    master: list[int] = []
    with UdpReceiver() as statsd:
        lines = _serve_and_drive(cmd, port, tmp_path / "out.log", statsd.port, master)
        _check_statsd(statsd, "/v1/account/_uid_/login")  # Flask's url_rule, not the path
    pids = _check(lines, "fxa-e2e-wsgi")
    # --preload: configured in the master, then forked. Each line must carry
    # its worker's own Pid, not the master's it inherited.
    assert pids
    assert master[0] not in pids


@pytest.mark.integration
def test_uvicorn_asgi(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", "tests.apps.asgi_app:app",
    ]  # fmt: skip
    with UdpReceiver() as statsd:
        lines = _serve_and_drive(cmd, port, tmp_path / "out.log", statsd.port)
        _check_statsd(statsd, "/v1/account/_uid_/login")
    _check(lines, "fxa-e2e-asgi")
