"""A real browser: headless Chromium loads pages served by gunicorn and sends the beacon.

The app (tests/apps/beacon_page/app.py) runs under gunicorn with pre-fork
workers on 127.0.0.1, without PYTHONUNBUFFERED, with statsd pointed at the
real UDP receiver and Sentry (Performance on) at the real HTTP receiver.
Chromium is Debian's ``chromium``, installed by ``make chromium`` (part of
``make test``). Without it this test fails, loudly; it never skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fxa_metrics._recv_http import Receiver
from fxa_metrics._recv_udp import UdpReceiver

from .conftest import ROOT

UID = "0123456789abcdef0123456789abcdef"
PREFIX = "fxa-content-server.frontend."
LINE = re.compile(
    r"^fxa-content-server\.frontend\.(?P<name>\w+),device_type=(?P<device>\w+),"
    r"nav_type=(?P<nav>\w+),page=(?P<page>[^:]+):(?P<value>[0-9.e-]+)\|(?P<kind>ms|g)$"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Virtual time runs the page's timers (the snippet's data-flush-ms) without waiting.
    "--virtual-time-budget=5000",
    "--dump-dom",
]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's chromium is required for the real-browser beacon test and was not found.\n"
            "Install it with `make chromium` (runs `apt-get install -y chromium`).",
            pytrace=False,
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early: {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not start")


def _load(browser: str, url: str, profile: Path) -> str:
    # A fresh profile per load: no cache, no state shared between pages or runs.
    done = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def _frontend_lines(rx: UdpReceiver, page: str, timeout: float = 30.0) -> list[re.Match[str]]:
    """This page's beacon lines, once its last one (the CLS gauge) has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            m
            for line in rx.lines()
            if (m := LINE.match(line.decode())) is not None and m["page"] == page
        ]
        if any(m["name"] == "cls" for m in found) or time.monotonic() > deadline:
            return found
        rx.wait_for(rx.count + 1, timeout=0.5)


def _pageloads(recv: Receiver) -> list[dict[str, object]]:
    out = []
    for envelope in recv.envelopes():
        lines = envelope.split(b"\n")
        for header, item in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") != "transaction":
                continue
            tx = json.loads(item)
            if tx["contexts"]["trace"]["op"] == "pageload":
                out.append(tx)
    return out


@pytest.mark.integration
def test_chromium_sends_beacons_that_reach_statsd_and_sentry(tmp_path: Path) -> None:
    browser = chromium()
    port = _free_port()
    with UdpReceiver() as statsd, Receiver() as sentry:
        env = {
            **os.environ,
            "BEACON_STATSD_PORT": str(statsd.port),
            "BEACON_SENTRY_DSN": sentry.dsn("15"),
        }
        env.pop("PYTHONUNBUFFERED", None)  # as deployed
        cmd = [
            sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "5", "tests.apps.beacon_page.app:app",
        ]  # fmt: skip
        with (tmp_path / "server.log").open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
            try:
                _wait_up(port, proc)
                base = f"http://127.0.0.1:{port}"
                dom = _load(browser, f"{base}/settings", tmp_path / "profile-1")
                assert "<title>Account settings</title>" in dom
                dom = _load(browser, f"{base}/account/{UID}/devices", tmp_path / "profile-2")
                assert "<title>Devices</title>" in dom
                settings = _frontend_lines(statsd, "settings")
                devices = _frontend_lines(statsd, "/account/_uid_/devices")
                # Sentry's transport is asynchronous: allow for it, bounded.
                deadline = time.monotonic() + 30
                while len(_pageloads(sentry)) < 2 and time.monotonic() < deadline:
                    sentry.wait_for(len(sentry.envelopes()) + 1, timeout=0.5)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)

        for page, found in (("settings", settings), ("/account/_uid_/devices", devices)):
            by_name = {m["name"]: m for m in found}
            # The navigation timings Chromium always has, and the CLS gauge (0: no shift).
            assert {"ttfb", "dom_interactive", "dom_content_loaded", "load", "cls"} <= set(
                by_name
            ), [m.string for m in found]
            assert set(by_name) <= {"ttfb", "fcp", "lcp", "inp", "dom_interactive",
                                    "dom_content_loaded", "load", "cls"}  # fmt: skip
            assert len(found) == len(by_name)  # one beacon per page load
            for m in found:
                assert (m["device"], m["nav"], m["page"]) == ("desktop", "navigate", page)
                assert m["kind"] == ("g" if m["name"] == "cls" else "ms")
                assert float(m["value"]) >= 0
            ms = {name: float(m["value"]) for name, m in by_name.items()}
            assert ms["ttfb"] <= ms["dom_interactive"] <= ms["dom_content_loaded"] <= ms["load"]
            assert ms["load"] < 30_000

        everything = b"".join(statsd.datagrams()) + b"".join(sentry.envelopes())
        assert UID.encode() not in everything  # the URL's uid never leaves as data

        loads = _pageloads(sentry)
        assert sorted(str(tx["transaction"]) for tx in loads) == [
            "/account/_uid_/devices",
            "settings",
        ]
        for tx in loads:
            assert "user" not in tx
            spans = tx["spans"]
            assert isinstance(spans, list)
            ops = {s["op"] for s in spans}
            assert {"browser.request", "browser.response", "browser.loadEvent"} <= ops
