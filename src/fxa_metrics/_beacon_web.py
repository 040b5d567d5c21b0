"""The beacon endpoint, mountable by hand in every framework: WSGI, ASGI, Flask, Django, Starlette.

One :class:`BeaconEndpoint` holds the policy (pages, rate limit, proxies);
its adapters only move bytes. Every framework is imported inside the method
that needs it, so ``import fxa_metrics`` never imports Flask, Django or
Starlette. The endpoint answers:

- ``POST``: 204 for a beacon that passed every check and was recorded; 400
  with a short reason for anything else; 429 when the client is over its rate.
  A refusal is counted in ``fm.stats()`` (reasons ``beacon_*``) and never
  emitted. It is never an exception, even in strict mode: the input is the
  internet's, not the host's code.
- ``GET``: the JavaScript snippet, which posts back to the URL it was loaded
  from (``<script src="/__beacon__" data-page="settings" defer></script>``).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, NamedTuple

from . import _facade
from ._beacon import MAX_BODY, METRIC, BeaconError, Pages, RateLimiter, parse, statsd_records
from ._statsd import statsd_batch

DEFAULT_PATH = "/__beacon__"
_TEXT = "text/plain; charset=utf-8"
_JS = "application/javascript; charset=utf-8"
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    405: "Method Not Allowed",
    429: "Too Many Requests",
}


def script() -> str:
    """The JavaScript snippet (``static/fxa-beacon.js``) as text."""
    return (
        importlib.resources.files("fxa_metrics")
        .joinpath("static/fxa-beacon.js")
        .read_text(encoding="utf-8")
    )


class Response(NamedTuple):
    """What the endpoint answers: status, content type and body (empty for 204)."""

    status: int
    content_type: str
    body: bytes

    @property
    def headers(self) -> list[tuple[str, str]]:
        out = [("Cache-Control", "no-store"), ("Content-Length", str(len(self.body)))]
        if self.body:
            out.insert(0, ("Content-Type", self.content_type))
        return out


_NO_CONTENT = Response(204, _TEXT, b"")
_NOT_ALLOWED = Response(405, _TEXT, b"POST a beacon, or GET the script\n")


def _refused(status: int, reason: str) -> Response:
    return Response(status, _TEXT, f"beacon refused: {reason}\n".encode())


class BeaconEndpoint:
    """Receives front-end performance beacons and records them (see docs/frontend.md).

    ``pages``: page names the snippet may send (``data-page``); ``routes``:
    route templates a page path may match (``/account/<uid>/devices``), whose
    template becomes the page. At least one is required. ``per_minute`` and
    ``burst`` rate-limit each client (a keyed hash of its address, never the
    address). ``trusted_proxies`` is how many reverse proxies append to
    ``X-Forwarded-For`` in front of the app (0: use the peer address).

    >>> endpoint = BeaconEndpoint(pages=["settings"])
    >>> endpoint.handle(b"{}", "text/plain", "192.0.2.1").status
    400
    """

    def __init__(
        self,
        *,
        pages: Iterable[str] = (),
        routes: Iterable[str] = (),
        per_minute: float = 30.0,
        burst: int = 10,
        max_clients: int = 10_000,
        trusted_proxies: int = 0,
    ) -> None:
        self.pages = Pages(pages, routes)
        self.limiter = RateLimiter(per_minute, burst, max_clients)
        if trusted_proxies < 0:
            raise ValueError("trusted_proxies must be >= 0")
        self.trusted_proxies = trusted_proxies
        self._script: bytes | None = None

    @staticmethod
    def route_templates(app: Any) -> list[str]:
        """The GET route templates of a Flask app, a Starlette/FastAPI app or Django urlpatterns.

        For ``routes=``: the pages a beacon may name are then exactly the app's
        own pages. Duck-typed (no framework is imported); Django regex
        patterns are left out, since they are not templates.
        """
        url_map = getattr(app, "url_map", None)
        if url_map is not None:  # Flask
            return [r.rule for r in url_map.iter_rules() if "GET" in (r.methods or ())]
        routes = getattr(app, "routes", None)
        if routes is not None:  # Starlette, FastAPI
            return _starlette_templates(routes, "")
        return _django_templates(app, "/")

    # ------------------------------------------------------------- the policy

    def client_key(self, peer: str | None, forwarded_for: str | None = None) -> str:
        """The address to rate-limit: the peer, or the one the nearest trusted proxy saw."""
        if self.trusted_proxies and forwarded_for:
            hops = [h.strip() for h in forwarded_for.split(",")]
            if len(hops) >= self.trusted_proxies:
                return hops[-self.trusted_proxies]
        return peer or "-"

    def handle(self, body: bytes, content_type: str | None, client: str) -> Response:
        """Check one POSTed beacon and record it; the response to send. Never raises."""
        try:
            if not self.limiter.allow(client):
                raise BeaconError(None, "rate limited", "beacon_rate_limited")
            load = parse(body, content_type, self.pages)
        except BeaconError as e:
            self._count(e)
            status = 429 if e.reason == "beacon_rate_limited" else 400
            return _refused(status, e.short)
        with statsd_batch():  # every stat of one beacon in as few datagrams as fit
            for rec in statsd_records(load):
                _facade.record(rec)
        _facade.record(load)
        return _NO_CONTENT

    def too_large(self) -> Response:
        """The answer to a body over the cap, refused before it is read."""
        err = BeaconError(None, f"body larger than {MAX_BODY} bytes", "beacon_too_large")
        self._count(err)
        return _refused(400, err.short)

    def _count(self, err: BeaconError) -> None:
        rt = _facade.get_runtime()
        if rt is not None:  # before configure() nothing is recorded, so nothing is dropped
            rt.stats.drop(err.reason, METRIC, err.short)

    @staticmethod
    def script() -> str:
        """The JavaScript snippet, to inline in a page (then set its ``data-endpoint``)."""
        return script()

    def script_response(self) -> Response:
        if self._script is None:
            self._script = script().encode()
        return Response(200, _JS, self._script)

    def respond(self, method: str, read: Callable[[int], bytes], **request: Any) -> Response:
        """Dispatch one request for the synchronous adapters (``read(n)`` reads the body)."""
        if method == "GET":
            return self.script_response()
        if method != "POST":
            return _NOT_ALLOWED
        length = _length(request.get("content_length"))
        if length > MAX_BODY:
            return self.too_large()
        body = read(length) if length else b""
        client = self.client_key(request.get("peer"), request.get("forwarded_for"))
        return self.handle(body, request.get("content_type"), client)

    # ------------------------------------------------------------- WSGI / ASGI

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """A plain WSGI application: mount it at any path (e.g. with a dispatcher)."""
        response = self.respond(
            environ.get("REQUEST_METHOD", "GET"),
            environ["wsgi.input"].read,
            content_length=environ.get("CONTENT_LENGTH"),
            content_type=environ.get("CONTENT_TYPE"),
            peer=environ.get("REMOTE_ADDR"),
            forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
        )
        status = f"{response.status} {_REASONS[response.status]}"
        start_response(status, response.headers)
        return [response.body] if response.body else []

    async def asgi(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        """A plain ASGI application (HTTP only): mount it with your router."""
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        if method == "POST":
            body, over = await _read_asgi(receive)
            client = self.client_key(
                (scope.get("client") or (None,))[0], headers.get("x-forwarded-for")
            )
            response = (
                self.too_large() if over else self.handle(body, headers.get("content-type"), client)
            )
        else:
            response = self.script_response() if method == "GET" else _NOT_ALLOWED
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in response.headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    # ------------------------------------------------------------- frameworks

    def flask_blueprint(self, url: str = DEFAULT_PATH, name: str = "fxa_beacon") -> Any:
        """A Flask blueprint serving the endpoint at ``url``: ``app.register_blueprint(bp)``."""
        import flask

        bp = flask.Blueprint(name, __name__)

        def beacon() -> Any:
            req = flask.request
            r = self.respond(
                req.method,
                req.stream.read,
                content_length=req.content_length,
                content_type=req.content_type,
                peer=req.remote_addr,
                forwarded_for=req.headers.get("X-Forwarded-For"),
            )
            return flask.Response(r.body, r.status, headers=r.headers)

        bp.add_url_rule(url, "beacon", beacon, methods=["GET", "POST"])
        return bp

    def django_view(self) -> Callable[..., Any]:
        """A Django view (CSRF-exempt: sendBeacon sends no token): ``path("__beacon__", view)``."""
        # Django ships no type information.
        from django.http import HttpResponse  # type: ignore[import-untyped]
        from django.views.decorators.csrf import csrf_exempt  # type: ignore[import-untyped]

        def beacon(request: Any) -> Any:
            meta = request.META
            r = self.respond(
                request.method,
                request.read,
                content_length=meta.get("CONTENT_LENGTH"),
                content_type=meta.get("CONTENT_TYPE"),
                peer=meta.get("REMOTE_ADDR"),
                forwarded_for=meta.get("HTTP_X_FORWARDED_FOR"),
            )
            response = HttpResponse(r.body, status=r.status, content_type=r.content_type)
            response["Cache-Control"] = "no-store"
            return response

        view: Callable[..., Any] = csrf_exempt(beacon)
        return view

    def starlette_route(self, path: str = DEFAULT_PATH) -> Any:
        """A Starlette/FastAPI route: ``app.router.routes.append(endpoint.starlette_route())``."""
        from starlette.routing import Route

        # The raw ASGI app (Starlette's Request would read an unbounded body),
        # wrapped: Starlette takes a bare function or method for a request handler.
        return Route(path, _AsgiApp(self), methods=["GET", "POST"])


def _starlette_templates(routes: Iterable[Any], prefix: str) -> list[str]:
    out: list[str] = []
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        inner = getattr(route, "routes", None)
        if inner:  # a Mount
            out.extend(_starlette_templates(inner, prefix + path))
        elif "GET" in (getattr(route, "methods", None) or ()):
            out.append(prefix + path)
    return out


def _django_templates(patterns: Iterable[Any], prefix: str) -> list[str]:
    out: list[str] = []
    for entry in patterns:
        pattern = getattr(entry, "pattern", None)
        if type(pattern).__name__ != "RoutePattern":
            continue  # a regex (re_path) is not a template
        inner = getattr(entry, "url_patterns", None)
        if inner is not None:  # include()
            out.extend(_django_templates(inner, prefix + str(pattern)))
        else:
            out.append(prefix + str(pattern))
    return out


class _AsgiApp:
    """``endpoint.asgi`` as a plain ASGI callable object."""

    def __init__(self, endpoint: BeaconEndpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.endpoint.asgi(scope, receive, send)


def _length(value: Any) -> int:
    try:
        return max(int(value), 0) if value not in (None, "") else 0
    except (TypeError, ValueError):
        return 0


async def _read_asgi(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
) -> tuple[bytes, bool]:
    """The request body, or (partial, True) as soon as it is over the cap (never all of it)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
