"""An embedded HTTP receiver on 127.0.0.1: what Sentry and Glean uploads would see.

Used by the demo and the tests as the *real* endpoint a DSN points at. It
accepts Sentry envelope POSTs (``/api/<project>/envelope/``, gzip or not) and
Glean-style uploads (``/submit/<app-id>/<ping>/<version>/<uuid>``), and keeps
every request: path, headers, raw body and the decompressed body.

``blackhole=True`` makes it accept and read every request but never answer,
which is how a wedged Sentry looks to a client: nothing is refused, nothing
returns. ``close()`` releases the held requests.

>>> with Receiver() as recv:
...     recv.dsn("42").startswith("http://public@127.0.0.1:")
True
"""

from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import attrs

# A client that connects and then sends nothing must not keep a handler (and
# close()) waiting forever.
_SOCKET_TIMEOUT = 5.0


@attrs.frozen
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes  # the body as sent
    body: bytes  # decompressed per Content-Encoding

    @property
    def is_envelope(self) -> bool:
        return self.path.startswith("/api/") and self.path.rstrip("/").endswith("/envelope")

    @property
    def is_glean(self) -> bool:
        return self.path.startswith("/submit/")


def _decode(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    return raw


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _SOCKET_TIMEOUT

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = _decode(raw, self.headers.get("Content-Encoding", ""))
        except (OSError, zlib.error, EOFError):
            body = raw
        owner = self.server.owner
        owner._add(
            Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, raw, body)
        )
        if owner.blackhole:
            # Accept, never answer: hold the connection until close().
            owner._release.wait()
            self.close_connection = True
            return
        payload = b'{"id":"00000000000000000000000000000000"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the receiver is quiet: callers inspect what it stored


class _Server(ThreadingHTTPServer):
    # Handler threads are joined by server_close(): close() leaves none behind.
    daemon_threads = False
    block_on_close = True

    # An endpoint that comes back on its old port (tests of "down, then up").
    allow_reuse_address = True

    def __init__(self, owner: Receiver, port: int) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Handler)


class Receiver:
    """A threaded HTTP server on a free loopback port that stores what it receives."""

    def __init__(self, blackhole: bool = False, port: int = 0) -> None:
        """``port=0`` picks a free port; a given one lets an endpoint come back where it was."""
        self.blackhole = blackhole
        self._items: list[Received] = []
        self._cond = threading.Condition()
        self._release = threading.Event()
        self._server = _Server(self, port)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fxa-metrics-recv",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dsn(self, project: str = "1", key: str = "public") -> str:
        """A Sentry DSN whose server is this receiver."""
        return f"http://{key}@127.0.0.1:{self.port}/{project}"

    def _add(self, item: Received) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def requests(self) -> list[Received]:
        with self._cond:
            return list(self._items)

    def envelopes(self, project: str | None = None) -> list[bytes]:
        """The decompressed bodies of the Sentry envelopes received (optionally for one project)."""
        prefix = f"/api/{project}/" if project is not None else "/api/"
        return [r.body for r in self.requests() if r.is_envelope and r.path.startswith(prefix)]

    def uploads(self) -> list[Received]:
        """The Glean-style uploads received."""
        return [r for r in self.requests() if r.is_glean]

    def wait_for(self, count: int, timeout: float = 5.0, project: str | None = None) -> bool:
        """Wait (bounded) until ``count`` envelopes have arrived; True if they did."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count(project) >= count, timeout)

    def _count(self, project: str | None) -> int:
        prefix = f"/api/{project}/" if project is not None else "/api/"
        return sum(1 for r in self._items if r.is_envelope and r.path.startswith(prefix))

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def close(self) -> None:
        """Stop serving, release held (blackholed) requests and join every thread."""
        if self._closed:
            return
        self._closed = True
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=_SOCKET_TIMEOUT)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
