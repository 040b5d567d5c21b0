"""Integration: the real statsd daemon (Etsy, npm ``statsd`` 0.9.0) aggregates what we send.

The daemon is installed by the project's own set-up (``make test`` runs ``npm ci``
in ``tests/statsd_daemon``) and bound to 127.0.0.1 on free ports. Without node
or the npm install this test *fails* with the way to fix it; it never skips.

How the aggregates are read, and why:

- The management port's ``timers`` command prints only the raw values of the
  current interval; ``count``/``upper``/``lower`` are computed at flush
  (``lib/process_metrics.js``), and 0.9.0 has no management command to flush.
- So the daemon runs with a long ``flushInterval`` and our backend
  (``tests/statsd_daemon/json_backend.js``) appends each flush as a JSON line.
  statsd flushes one last time when it exits (SIGTERM -> ``process.exit`` ->
  ``process.on('exit', flushMetrics)``), synchronously, so after sending we
  wait on the management port until every line was received, check the raw
  ``timers`` there, then SIGTERM and read the computed values from that flush.

Etsy statsd has no tags: it sanitises keys, dropping ``,`` and turning ``/``
into ``-``, so ``login,result=ok`` is stored as ``loginresult=ok``.
"""

from __future__ import annotations

import io
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import fxa_metrics as fm

pytestmark = pytest.mark.integration

DAEMON_DIR = Path(__file__).resolve().parent / "statsd_daemon"
STATS_JS = DAEMON_DIR / "node_modules" / "statsd" / "stats.js"
BACKEND = DAEMON_DIR / "json_backend.js"
HOW_TO_INSTALL = (
    "install node (>= 18) and npm (Debian/Ubuntu: `sudo apt-get install nodejs npm`, "
    "or https://nodejs.org), then run `make test`, which runs `npm ci` in tests/statsd_daemon"
)


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _mgmt(port: int, command: str, timeout: float = 2.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(command.encode() + b"\n")
        buf = b""
        while not (b"END\n" in buf or (command == "health" and buf.endswith(b"\n"))):
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
        c.sendall(b"quit\n")
    return buf.decode()


class Daemon:
    def __init__(self, tmp: Path) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail(f"node is not installed, so the statsd daemon cannot run: {HOW_TO_INSTALL}")
        if not STATS_JS.exists():
            pytest.fail(
                f"the statsd daemon is not installed ({STATS_JS} is missing): {HOW_TO_INSTALL}"
            )
        self.port = _free_port(socket.SOCK_DGRAM)
        self.mgmt_port = _free_port(socket.SOCK_STREAM)
        self.flushes = tmp / "flushes.jsonl"
        config = tmp / "statsd-config.js"
        # JSON is a JS object literal, which is what statsd evaluates its config file as.
        config.write_bytes(
            orjson.dumps(
                {
                    "port": self.port,
                    "address": "127.0.0.1",
                    "mgmt_port": self.mgmt_port,
                    "mgmt_address": "127.0.0.1",
                    "flushInterval": 100000,  # only the final flush, at exit
                    "backends": [str(BACKEND)],
                    "jsonBackend": {"file": str(self.flushes)},
                }
            )
        )
        self.log = (tmp / "statsd.log").open("w")
        self.proc = subprocess.Popen(
            [node, str(STATS_JS), str(config)],
            cwd=DAEMON_DIR,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = tmp / "statsd.log"
        deadline = time.monotonic() + 15.0
        while True:
            if self.proc.poll() is not None:
                self.close()
                pytest.fail(f"statsd exited at start-up:\n{self.log_path.read_text()}")
            try:
                if "health: up" in _mgmt(self.mgmt_port, "health", timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                pytest.fail(f"statsd did not come up in 15 s:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def metrics_received(self) -> int:
        m = re.search(r"'statsd\.metrics_received': (\d+)", _mgmt(self.mgmt_port, "counters"))
        return int(m.group(1)) if m else 0

    def final_flush(self) -> dict[str, Any]:
        """SIGTERM the daemon; statsd flushes once more on exit. Return that flush."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        last: dict[str, Any] = orjson.loads(self.flushes.read_text().splitlines()[-1])
        return last

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    try:
        yield d
    finally:
        d.close()


def test_the_real_statsd_daemon_aggregates_our_counters_timers_gauges_and_sets(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    fm.configure(
        service="fxa-auth-server",
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=(),
        glean_stream=io.StringIO(),
        mozlog_handler="never",
        strict=True,
        statsd_host="127.0.0.1",
        statsd_port=daemon.port,
        statsd_prefix="fxa-auth-server.",
    )
    sent = 0  # statsd lines, to know when the daemon has them all

    def record(rec: Any, lines: int = 1) -> None:
        nonlocal sent
        fm.record(rec)
        sent += lines

    for _ in range(3):
        record(fm.Counter("login", tags={"result": "ok"}))
    record(fm.Counter("login", 2, tags={"result": "fail"}))
    monkeypatch.setattr(random, "random", lambda: 0.0)  # sampled in: the daemon scales by 1/rate
    record(fm.Counter("sampled", rate=0.5))
    record(fm.Counter("sampled", rate=0.5))
    for ms in (12.5, 30, 7.25, 100):
        record(fm.Timing("url_request", ms, tags={"path": "/v1/account/login", "method": "POST"}))
    with fm.timer("block"):
        time.sleep(0.005)
    sent += 1
    record(fm.Gauge("pool", 10))
    record(fm.Gauge("pool", -3, delta=True))
    record(fm.Gauge("neg", -5), lines=2)  # "0|g" then "-5|g"
    for client in ("sync", "web", "sync"):
        record(fm.Set("clients", client))
    with fm.statsd_batch():  # one datagram, five lines
        for _ in range(5):
            record(fm.Counter("batched"))
    with pytest.raises(fm.PiiRejectedError):
        fm.record(fm.Counter("login", tags={"ip": "203.0.113.7"}))

    deadline = time.monotonic() + 10.0
    while daemon.metrics_received() < sent:
        assert time.monotonic() < deadline, f"daemon got {daemon.metrics_received()} of {sent}"
        time.sleep(0.02)
    timers = _mgmt(daemon.mgmt_port, "timers")
    raw = re.search(r"'fxa-auth-server\.url_requestmethod=POSTpath=-v1-account-login': \[([^]]*)\]",
                    timers)  # fmt: skip
    assert raw is not None, timers
    assert [float(v) for v in raw.group(1).split(",")] == [12.5, 30, 7.25, 100]

    flushed = daemon.final_flush()
    counters, timer_data = flushed["counters"], flushed["timer_data"]
    assert counters["statsd.bad_lines_seen"] == 0  # every line parsed by the daemon itself
    assert counters["statsd.metrics_received"] == sent
    assert counters["fxa-auth-server.loginresult=ok"] == 3
    assert counters["fxa-auth-server.loginresult=fail"] == 2
    assert counters["fxa-auth-server.sampled"] == 4  # 2 sent at @0.5
    assert counters["fxa-auth-server.batched"] == 5
    url = timer_data["fxa-auth-server.url_requestmethod=POSTpath=-v1-account-login"]
    assert (url["count"], url["upper"], url["lower"], url["sum"]) == (4, 100, 7.25, 149.75)
    block = timer_data["fxa-auth-server.block"]
    assert block["count"] == 1
    assert 5.0 <= block["upper"] < 5000.0
    assert flushed["gauges"]["fxa-auth-server.pool"] == 7
    assert flushed["gauges"]["fxa-auth-server.neg"] == -5
    assert sorted(flushed["sets"]["fxa-auth-server.clients"]) == ["sync", "web"]
    assert not any("203" in key for key in counters)  # the refused record never left
