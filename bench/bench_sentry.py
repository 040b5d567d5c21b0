"""Sentry capture cost on the caller's thread: fxa_metrics vs plain sentry-sdk, one run.

Rows (median µs per call, both sides measured in this run, interleaved):

- ``crash_disabled``: ``fm.record(Crash(exc))`` with no DSN and no host Sentry vs
  ``sentry_sdk.capture_exception(exc)`` with an uninitialised SDK (which still
  builds the event). Goal: <= 0.02x.
- ``crash_enabled``: the same record with an owned client vs ``capture_exception``
  after ``sentry_sdk.init(dsn, default_integrations=False,
  auto_enabling_integrations=False)``; both send to the same live loopback
  endpoint, queues drained between rounds (untimed). Ours includes the FxA
  scrubbing. Goal: <= 1.2x.

Run: ``python -m bench.bench_sentry``.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import sentry_sdk

import fxa_metrics as fm
from fxa_metrics import _facade

# The endpoint runs in its own process: an in-process server would compete with
# the measured thread for the GIL while it parses envelopes, taxing whichever
# side sends more bytes. It answers 200 and counts envelopes per project.
_SERVER = r"""
import collections, http.server, sys, threading
counts = collections.Counter()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        counts[self.path.split("/")[2]] += 1
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        body = str(counts[self.path.strip("/")]).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""


class _Endpoint:
    """A Sentry-ish endpoint in a child process on 127.0.0.1."""

    def __enter__(self) -> _Endpoint:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def dsn(self, project: str) -> str:
        return f"http://public@127.0.0.1:{self.port}/{project}"

    def count(self, project: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{project}", timeout=5) as r:
            return int(r.read())

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


ROUNDS = 30
PER_ROUND = 20


def _raise(depth: int, email: str) -> None:
    # A few frames with locals, as a request handler's crash would have.
    account = {"email": email, "uid": "0123456789abcdef0123456789abcdef", "n": depth}
    if depth:
        _raise(depth - 1, email)
    raise ValueError(f"lookup failed for {account['email']}")


def _exc() -> BaseException:
    try:
        _raise(3, "alice@example.com")
    except ValueError as e:
        return e
    raise AssertionError("unreachable")


def _configure(**kw: Any) -> None:
    fm.configure(
        service="fxa-bench",
        app_id="accounts_backend_dev",
        app_version="1.0.0",
        channel="development",
        metrics_yaml=(),
        glean_stream=io.StringIO(),
        mozlog_handler="never",
        **kw,
    )


def _time_calls(fn: Callable[[BaseException], object], n: int) -> list[float]:
    excs = [_exc() for _ in range(n)]  # raising is not part of the cost
    out = []
    for exc in excs:
        t = time.perf_counter()
        fn(exc)
        out.append(time.perf_counter() - t)
    return out


def _compare(
    name: str,
    ours: Callable[[BaseException], object],
    base: Callable[[BaseException], object],
    goal: float,
    between: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    o: list[float] = []
    b: list[float] = []
    _time_calls(ours, 5)
    _time_calls(base, 5)  # warm-up
    between()
    for _ in range(ROUNDS):
        o += _time_calls(ours, PER_ROUND)
        between()
        b += _time_calls(base, PER_ROUND)
        between()
    ours_us = statistics.median(o) * 1e6
    base_us = statistics.median(b) * 1e6
    return {
        "name": name,
        "ours_us": round(ours_us, 2),
        "baseline_us": round(base_us, 2),
        "ratio": round(ours_us / base_us, 4),
        "goal": f"<= {goal}",
        "met": ours_us / base_us <= goal,
    }


def _record(exc: BaseException) -> None:
    fm.record(fm.Crash(exc))


def run() -> list[dict[str, Any]]:
    rows = []
    assert not sentry_sdk.get_client().is_active(), "run without SENTRY_DSN / an initialised SDK"
    _configure()
    try:
        rows.append(_compare("crash_disabled", _record, sentry_sdk.capture_exception, 0.02))
    finally:
        _facade.reset()
    with _Endpoint() as recv:
        sentry_sdk.init(
            dsn=recv.dsn("1"), default_integrations=False, auto_enabling_integrations=False
        )
        host = sentry_sdk.get_client()
        _configure(sentry_dsn=recv.dsn("2"))

        def drain() -> None:
            fm.flush(timeout=5.0)
            host.flush(timeout=5.0)

        try:
            rows.append(
                _compare("crash_enabled", _record, sentry_sdk.capture_exception, 1.2, drain)
            )
        finally:
            _facade.reset()
            host.close(timeout=2.0)
            sentry_sdk.get_global_scope().set_client(None)
        got_ours, got_base = recv.count("2"), recv.count("1")
    expected = 5 + ROUNDS * PER_ROUND
    assert got_ours == got_base == expected, (got_ours, got_base, expected)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
