"""Privacy through real servers (issue 10): gunicorn (pre-fork, --preload) and uvicorn on
127.0.0.1, without PYTHONUNBUFFERED. Hypothesis plants secrets in URL paths, queries and
headers; every channel is grepped per example: Glean and MozLog lines on the server's
stdout, statsd datagrams at the real UDP receiver, Sentry envelopes at the real HTTP
receiver, fxa_metrics' warnings in the host's plain-text log file."""

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sentry_sdk.envelope import Envelope

from fxa_metrics._recv_http import Receiver
from fxa_metrics._recv_udp import UdpReceiver

from .conftest import ROOT, validate_payload
from .privacy_plant import Plant, check_glean, check_mozlog, check_no_identity, plants

SERVERS = {
    "gunicorn": [
        "-m", "gunicorn", "--workers", "2", "--preload", "--graceful-timeout", "5",
        "--bind", "127.0.0.1:{port}", "tests.apps.privacy_wsgi:app",
    ],
    "uvicorn": [
        "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--no-access-log",
        "--log-level", "warning", "tests.apps.privacy_asgi:app",
    ],
}  # fmt: skip
WAIT = 60.0  # generous: two shared cores, other engineers' suites running


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(what: str, ready: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """A real server process and the outputs it produced since the last example."""

    def __init__(self, kind: str, tmp: Path, recv: Receiver, udp: UdpReceiver) -> None:
        self.port = _free_port()
        self.out, self.warn = tmp / "stdout.log", tmp / "warnings.log"
        self.recv, self.udp = recv, udp
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
            "E2E_STATSD_PORT": str(udp.port),
            "E2E_SENTRY_DSN": recv.dsn("5"),
            "E2E_WARN_FILE": str(self.warn),
        }
        cmd = [sys.executable, *(a.format(port=self.port) for a in SERVERS[kind])]
        with self.out.open("wb") as fh:
            self.proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.DEVNULL, cwd=ROOT, env=env
            )
        self._stdout_at = self._warn_at = self._udp_at = self._envelopes_at = 0
        self._events_at = 0

    def wait_up(self) -> None:
        def up() -> bool:
            assert self.proc.poll() is None, f"server exited: {self.proc.returncode}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        _wait_until("the server to listen", up)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def request(self, method: str, target: str, headers: dict[str, str]) -> int:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{target}", method=method, data=b"", headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    # -------------------------------------------------------------- outputs

    def _stdout_lines(self) -> list[dict[str, Any]]:
        text = self.out.read_text()
        return [json.loads(x) for x in text.splitlines() if x.startswith("{")]

    def _events(self) -> int:
        return sum(
            item.type == "event"
            for body in self.recv.envelopes()
            for item in Envelope.deserialize(body).items
        )

    def new_outputs(
        self, lines: int, datagrams: int, events: int
    ) -> tuple[list[dict[str, Any]], str, str, str]:
        """Wait for this example's outputs (counts known in advance); return only them."""
        _wait_until("stdout lines", lambda: len(self._stdout_lines()) >= self._stdout_at + lines)
        _wait_until("statsd datagrams", lambda: self.udp.count >= self._udp_at + datagrams)
        _wait_until("Sentry events", lambda: self._events() >= self._events_at + events)
        out = self._stdout_lines()[self._stdout_at :]
        grams = self.udp.datagrams()[self._udp_at :]
        bodies = self.recv.envelopes()[self._envelopes_at :]
        warn_text = self.warn.read_text() if self.warn.exists() else ""
        self._stdout_at += len(out)
        self._udp_at += len(grams)
        self._envelopes_at += len(bodies)
        self._events_at = self._events()
        warnings = warn_text[self._warn_at :]
        self._warn_at = len(warn_text)
        sentry = b"".join(bodies).decode("utf-8", "replace")
        return out, b"\n".join(grams).decode(), sentry, warnings


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with Receiver() as recv, UdpReceiver() as udp:
        srv = Server(request.param, tmp_path, recv, udp)
        try:
            srv.wait_up()
            yield srv
        finally:
            srv.stop()


def _headers(p: Plant, opt_out: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {p.bearer}",
        "Cookie": f"session={p.cookie}; theme=dark",
        "User-Agent": f"probe/1.0 (Bearer {p.bearer}; {p.jwt}) {p.email}",
        "X-Forwarded-For": p.ipv4,
        "X-Opt-Out": opt_out,
        "X-Plant-Uid": p.uid,
        "X-Plant-Email": p.email,
        "X-Plant-Flow": p.flow_id,
        "X-Plant-Utm": p.utm_source,
        "X-Plant-Service": p.service,
        "X-Plant-Device": p.device_type,
    }


def _query(p: Plant) -> str:
    return (
        f"password={quote(p.password)}&session={p.session_token}&code={p.bearer}"
        f"&next={quote(p.userinfo_url, safe='')}&ip={p.ipv6}"
    )


def _drive(srv: Server, p: Plant, opt_out: str) -> None:
    headers = _headers(p, opt_out)
    double = f"{p.email_local}%2540{p.email_domain}.com"  # the server decodes it once
    assert srv.request("POST", f"/v1/probe/{double}?{_query(p)}", headers) == 500
    assert srv.request("POST", f"/v1/probe/{p.jwt}?{_query(p)}", headers) == 500
    # No route: a scanner's path, still instrumented.
    assert srv.request("GET", f"/wp-admin/{double}/{p.jwt}?{_query(p)}", headers) == 404


def _check(
    p: Plant,
    consenting: bool,
    out: list[dict[str, Any]],
    statsd: str,
    sentry: str,
    warnings: str,
) -> None:
    glean = [ln for ln in out if ln["Type"] == "glean-server-event"]
    mozlog = [ln for ln in out if ln["Type"] != "glean-server-event"]
    for line in glean:
        validate_payload(json.loads(line["Fields"]["payload"]))
    check_glean(glean, p, consenting)
    check_mozlog(mozlog, p, consenting)
    check_no_identity("statsd", statsd, p, consenting=False)
    assert "url_request" in statsd
    check_no_identity("Sentry", sentry, p, consenting)
    for line in warnings.splitlines():
        # Each record is one line: a newline in a name would start a line of its own.
        assert line.startswith("fxa_metrics"), line
    check_no_identity("our warnings", warnings, p, consenting=False)


@pytest.mark.integration
def test_planted_secrets_through_a_real_server(server: Server) -> None:
    @settings(
        max_examples=5,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(plants, st.sampled_from(["0", "1", "ts"]))
    def run(p: Plant, opt_out: str) -> None:
        consenting = opt_out == "0"
        _drive(server, p, opt_out)
        # Per probe request: request.summary, privacy.probe, a deletion request, and
        # a product event for a consenting user; the scanner's request: its summary.
        lines = 2 * (3 + consenting) + 1
        # url_request for each request, privacy.ok for each probe.
        out, statsd, sentry, warnings = server.new_outputs(lines=lines, datagrams=5, events=4)
        _check(p, consenting, out, statsd, sentry, warnings)

    run()
