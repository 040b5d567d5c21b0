"""Receivers in their own processes: a statsd UDP listener and a Sentry-ish HTTP endpoint.

Why out of process: a receiver thread in the measuring process competes for
the GIL and adds the same receive cost to both sides, pulling every ratio
toward 1. In a child process it costs the measured thread nothing.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request

# Counts datagrams; prints its port, then the count when stdin closes.
_UDP = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", 0))
n = [0]
def drain():
    while True:
        s.recv(65536)
        n[0] += 1
threading.Thread(target=drain, daemon=True).start()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
print(n[0], flush=True)
"""

# Answers 200 to every POST and counts envelopes per project (GET /<project>).
_HTTP = r"""
import collections, http.server
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


class UdpListener:
    """``with UdpListener() as rx:`` send to ``rx.port``; ``rx.received`` after exit."""

    host = "127.0.0.1"
    received = -1

    def __enter__(self) -> UdpListener:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _UDP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self.proc.communicate(timeout=30)
        self.received = int(out.split()[-1])


class HttpEndpoint:
    """A Sentry-ish endpoint on 127.0.0.1; ``dsn(project)`` and ``count(project)``."""

    def __enter__(self) -> HttpEndpoint:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HTTP], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        return self

    def dsn(self, project: str) -> str:
        return f"http://public@127.0.0.1:{self.port}/{project}"

    def count(self, project: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{project}", timeout=10) as r:
            return int(r.read())

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
