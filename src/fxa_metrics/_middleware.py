"""Request instrumentation: a handler decorator, WSGI and ASGI middleware, a Django middleware.

Per request each of them:

* binds the request context (user agent, client IP, rid, method, path, lang);
* times the handler into statsd as ``url_request`` with method, path and status tags;
* writes one ``request.summary`` MozLog line (Dockerflow/FxA fields), at ERROR for a 5xx;
* captures an unhandled exception to Sentry (``handled: false``) and re-raises it unchanged;
* returns the handler's result untouched.

The statsd ``path`` tag is a route *template*, never the request's path: the
framework's matched route, a template from ``routes=``, or for a request that
matched none the one fixed value ``_unmatched_``. So the tag's cardinality is at
most the number of routes plus one, and no identifier in a path reaches it.

A framework integration (``fxa_metrics.flask``, ``.fastapi``, ``.django``) tells
the middleware, through the request's state, the matched route and that it has
already captured a crash (``ROUTE``, ``CRASHED``), so a crash is sent once.

All telemetry goes through ``record()``, so it is checked, consent-gated and
contained like any other record: instrumentation never raises into the request.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from . import _facade, _health, _pending, _scrub
from ._context import REQUEST_UID, RequestContext, bind, current, in_request, use
from ._facade import record
from ._glean import uuid4_hex  # batched ids: a third of str(uuid.uuid4())
from ._records import Crash, Log, Timing

P = ParamSpec("P")
R = TypeVar("R")

TIMING = "url_request"
SUMMARY = "request.summary"
# The statsd path tag of a request that matched no route (404s, scanners).
UNMATCHED = "_unmatched_"
# Request state keys a framework integration sets for the middleware.
ROUTE = "fxa_metrics.route"  # the matched route template
CRASHED = "fxa_metrics.crashed"  # a framework hook already captured the crash

# Path segments that identify a user or an object become "_id_", so a path is a
# low-cardinality statsd tag and never carries identity (no uid, email, token).
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F-]{16,}|[^/]*@[^/]*|[A-Za-z0-9_-]{32,}|"
    r"\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:]+)$"
)


def route_template(path: str) -> str:
    """A path with identifying segments replaced by ``_id_``.

    >>> route_template("/v1/account/0123456789abcdef0123456789abcdef/devices/42")
    '/v1/account/_id_/devices/_id_'
    """
    # privacy (issue 10): the shared scrubber's detectors too, after decoding
    # (a %2540 email, a JWT), before path_tag() rewrites "%" and hides them.
    return "/".join(
        "_id_" if seg and (_ID_SEGMENT.match(seg) or _scrub.identity(seg)) else seg
        for seg in path.split("/")
    )


# Framework route parameters: Starlette "{uid}"/"{uid:str}", Django/Flask
# "<int:uid>"/"<uid>", Express-style ":uid". statsd tag values allow only
# A-Z a-z 0-9 _ . / -, so a parameter is spelt "_uid_".
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}|<(?:[^:>]+:)?([^>]+)>|:(\w+)")
_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")


def path_tag(route: str) -> str:
    """A route template as a statsd tag value.

    >>> path_tag("/v1/account/{uid}/devices/<int:n>")
    '/v1/account/_uid_/devices/_n_'
    """
    spelt = _PARAM.sub(lambda m: f"_{m.group(1) or m.group(2) or m.group(3)}_", route)
    return _UNSAFE.sub("_", spelt)


def _finish(
    *,
    t0: float,
    code: int,
    method: str | None,
    route: str | None,
    errno: int = 0,
) -> None:
    ms = (time.perf_counter() - t0) * 1000.0
    ctx = current()
    tags: dict[str, Any] = {"status": str(code)}
    if method:
        tags["method"] = method
    tags["path"] = path_tag(route) if route else UNMATCHED
    record(Timing(TIMING, ms, tags=tags))
    fields: dict[str, Any] = {
        "errno": errno,
        "agent": ctx.user_agent or "",
        "lang": ctx.lang or "",
        "method": method or "",
        "path": ctx.path or "",
        "rid": ctx.rid or "",
        "t": round(ms),
        "code": code,
    }
    # The handler usually binds the user itself, inside our binding: its uid
    # is in the request's shared state (FxA logs uid in request.summary).
    uid = ctx.uid or ctx.state.get(REQUEST_UID)
    if uid:
        fields["uid"] = uid
    # dockerflow logs a failed request at ERROR: alerting keys on Severity 3.
    record(Log(SUMMARY, fields, logging.ERROR if code >= 500 else logging.INFO))


def _status_of(result: Any) -> int:
    for attr in ("status_code", "status"):
        value = getattr(result, attr, None)
        if isinstance(value, int):
            return value
    return 200


def instrument(
    route: str | None = None, *, method: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Instrument one handler, sync or async: time it, summarise it, capture its crash.

    >>> import fxa_metrics as fm
    >>> @fm.instrument("/v1/ping", method="GET")
    ... def ping():
    ...     return "pong"
    >>> ping()
    'pong'

    Use it inside a request already bound by a middleware, or on its own: it
    binds ``path``/``method`` (and a fresh ``rid``) when nothing is bound yet.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name: str = route or getattr(fn, "__qualname__", None) or "handler"

        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with _Handling(name, method) as handling:
                    result = await afn(*args, **kwargs)
                    handling.done(result)
                    return result

            return cast(Callable[P, R], awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _Handling(name, method) as handling:
                result = fn(*args, **kwargs)
                handling.done(result)
                return result

        return wrapper

    return decorate


class _Handling:
    """One handler call for ``instrument``: binds, times, and summarises it exactly once.

    Shared by the sync and async wrappers, so both behave the same: the result
    goes back untouched, an exception is captured and re-raised unchanged.
    """

    def __init__(self, route: str, method: str | None) -> None:
        self.route = route
        self.method = method
        self.finished = False

    def __enter__(self) -> _Handling:
        ctx = current()
        fields: dict[str, Any] = {}
        if ctx.path is None:
            fields["path"] = self.route
        if ctx.method is None and self.method is not None:
            fields["method"] = self.method
        if ctx.rid is None:
            fields["rid"] = uuid4_hex()
        self._binding = bind(**fields)
        self.ctx = self._binding.__enter__()
        self.t0 = time.perf_counter()
        return self

    def done(self, result: Any) -> None:
        self.finished = True
        _finish(t0=self.t0, code=_status_of(result), method=self.ctx.method, route=self.route)

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc is not None and not self.finished:
                _crash(exc)
                _finish(t0=self.t0, code=500, method=self.ctx.method, route=self.route, errno=999)
        finally:
            self._binding.__exit__(typ, exc, tb)


def _crash(exc: BaseException) -> None:
    """An exception escaped the handler: unhandled, captured once per request."""
    # KeyboardInterrupt/SystemExit/cancellation are control flow, not crashes.
    if not isinstance(exc, Exception):
        return
    state = current().state
    if state.get(CRASHED) is exc:
        return  # the framework's own hook captured it already
    state[CRASHED] = exc
    record(Crash(exc, handled=False))


def capture_unhandled(exc: BaseException) -> None:
    """For framework hooks: capture a crash the framework turned into a 500 (or re-raises)."""
    _crash(exc)


def set_route(template: str | None) -> None:
    """For framework hooks: the matched route template of the current request."""
    ctx = current()
    if template and in_request(ctx):
        ctx.state[ROUTE] = template


def _errno(ctx: RequestContext, errno: int) -> int:
    return 999 if errno or ctx.state.get(CRASHED) is not None else 0


# ------------------------------------------------------------------ route templates

_PATH_PARAM = re.compile(r"\{[^}:]+:path\}|<path:[^>]+>")


def _template_regex(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(".+" if _PATH_PARAM.fullmatch(m.group(0)) else "[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


class RouteMatcher:
    """The first of ``templates`` a path matches, for middleware without a router.

    >>> m = RouteMatcher(["/v1/account/{uid}/login", "/static/<path:p>"])
    >>> m("/v1/account/0123/login"), m("/static/a/b.css"), m("/nope")
    ('/v1/account/{uid}/login', '/static/<path:p>', None)
    """

    def __init__(self, templates: Iterable[str]) -> None:
        self.templates = tuple(templates)
        self._compiled = [(_template_regex(t), t) for t in self.templates]

    def __call__(self, path: str) -> str | None:
        for regex, template in self._compiled:
            if regex.fullmatch(path):
                return template
        return None


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].strip() or None


def _lang(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].split(";")[0].strip() or None


# ------------------------------------------------------------------ WSGI

_REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}


def _health_wsgi(
    resp: _health.HealthResponse, start_response: Callable[..., Any]
) -> Iterable[bytes]:
    headers = [("Content-Type", resp.content_type), ("Content-Length", str(len(resp.body)))]
    start_response(f"{resp.status} {_REASONS.get(resp.status, '')}".rstrip(), headers)
    return [resp.body]


class WSGIMiddleware:
    """Wrap a WSGI app: ``app.wsgi_app = fm.WSGIMiddleware(app.wsgi_app, routes=[...])``.

    For Flask use :func:`fxa_metrics.flask.init_app` instead: Flask turns a
    view's exception into a 500 inside ``wsgi_app``, where no WSGI middleware
    sees it.

    The statsd ``path`` tag: ``route_of(environ)`` if given and it answers,
    else the first of ``routes`` (templates such as ``/v1/account/{uid}/login``)
    the path matches, else ``_unmatched_``. Without either, every request is
    tagged ``_unmatched_``: a generic middleware knows no routes, and a raw
    path would carry identifiers and unbounded cardinality.

    ``trust_forwarded``: take the client IP from the first ``X-Forwarded-For``
    entry (only behind a proxy you control). ``health=True`` answers the
    dockerflow paths (``/__heartbeat__``, ``/__lbheartbeat__``,
    ``/__version__`` from ``version_path``) before the app sees them.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        trust_forwarded: bool = False,
        route_of: Callable[[Mapping[str, Any]], str | None] | None = None,
        routes: Iterable[str] = (),
        health: bool = False,
        version_path: str | None = None,
    ) -> None:
        self.app = app
        self.trust_forwarded = trust_forwarded
        self.route_of = route_of
        self.routes = RouteMatcher(routes)
        self.health = health
        self.version_path = version_path

    def _context(self, environ: Mapping[str, Any]) -> dict[str, Any]:
        ip = environ.get("REMOTE_ADDR")
        if self.trust_forwarded:
            ip = _first(environ.get("HTTP_X_FORWARDED_FOR")) or ip
        return {
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "ip_address": ip,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO") or "/",
            "rid": environ.get("HTTP_X_REQUEST_ID") or uuid4_hex(),
            "lang": _lang(environ.get("HTTP_ACCEPT_LANGUAGE")),
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.health and environ.get("PATH_INFO") in _health.PATHS:
            resp = _health.respond(environ["PATH_INFO"], self.version_path)
            if resp is not None:
                return _health_wsgi(resp, start_response)
        status: list[int] = [500]

        def _start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info)

        # A new request: a sync worker thread serves request after request, and
        # nothing bound on it before may leak its state (the consent cache) here.
        binding = bind(new_request=True, **self._context(environ))
        ctx = binding.__enter__()
        t0 = time.perf_counter()
        try:
            body = self.app(environ, _start)
        except BaseException as e:
            _crash(e)
            self._done(ctx, t0, 500, environ, ctx.method)
            binding.__exit__(None, None, None)
            raise
        binding.__exit__(None, None, None)
        # The summary is written when the server closes the body, so `t`
        # covers streaming, and the context is re-bound for it.
        return _ClosingBody(body, lambda: self._after(ctx, t0, status[0], environ))

    def _after(self, ctx: RequestContext, t0: float, code: int, environ: Mapping[str, Any]) -> None:
        # The same request context (and its state: the handler's uid) as during the call.
        with use(ctx):
            self._done(ctx, t0, code, environ, ctx.method)

    def _route(self, ctx: RequestContext, environ: Mapping[str, Any]) -> str | None:
        route: str | None = ctx.state.get(ROUTE)
        if route is None and self.route_of is not None:
            route = self.route_of(environ)
        return route or self.routes(environ.get("PATH_INFO") or "/")

    def _done(
        self,
        ctx: RequestContext,
        t0: float,
        code: int,
        environ: Mapping[str, Any],
        method: str | None,
    ) -> None:
        route = self._route(ctx, environ)
        _finish(t0=t0, code=code, method=method, route=route, errno=_errno(ctx, 0))


# --- test-capture hook: set by fxa_metrics.testing while a capture is active.
# A test client (werkzeug's) reads the body but never closes it, so the
# summary and url_request would never come; the capture closes those it finds.
# Strong references: a test that drops the response must not lose its timing.
open_bodies: list[_ClosingBody] | None = None


class _ClosingBody:
    """The app's body, with our summary hooked onto ``close()`` (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close
        self.started = self.closed = False
        if open_bodies is not None:
            open_bodies.append(self)

    def __iter__(self) -> Iterator[bytes]:
        self.started = True
        return iter(self._body)

    def close(self) -> None:
        if self.closed:  # a server (or a capture) may close twice: one summary
            return
        self.closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


# ------------------------------------------------------------------ ASGI


async def _health_asgi(
    resp: _health.HealthResponse, send: Callable[[Any], Awaitable[None]]
) -> None:
    headers = [
        (b"content-type", resp.content_type.encode()),
        (b"content-length", str(len(resp.body)).encode()),
    ]
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    await send({"type": "http.response.body", "body": resp.body})


class ASGIMiddleware:
    """Wrap an ASGI app (Starlette, FastAPI): ``app.add_middleware(fm.ASGIMiddleware)``.

    The statsd ``path`` tag is Starlette's matched route path, else the first of
    ``routes`` the path matches, else ``_unmatched_``. At the end of the
    request it awaits (bounded) the records held while consent was pending on
    an async lookup, so they are emitted or withheld before the summary.
    ``health=True`` answers the dockerflow paths. For FastAPI and Starlette,
    :func:`fxa_metrics.fastapi.init_app` adds it with health on.
    """

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        *,
        trust_forwarded: bool = False,
        routes: Iterable[str] = (),
        health: bool = False,
        version_path: str | None = None,
    ):
        self.app = app
        self.trust_forwarded = trust_forwarded
        self.routes = RouteMatcher(routes)
        self.health = health
        self.version_path = version_path

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if self.health and scope.get("path") in _health.PATHS:
            resp = _health.respond(scope["path"], self.version_path)
            if resp is not None:
                await _health_asgi(resp, send)
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        ip = client[0] if client else None
        if self.trust_forwarded:
            ip = _first(headers.get("x-forwarded-for")) or ip
        status = [500]

        async def _send(message: Any) -> None:
            if message.get("type") == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        # Each ASGI request is its own task with its own context: an outer bind()
        # here is this request's (a host middleware that bound the user and may
        # have resolved consent), so it is shared, whatever the middleware order.
        with bind(
            user_agent=headers.get("user-agent"),
            ip_address=ip,
            method=scope.get("method"),
            path=scope.get("path") or "/",
            rid=headers.get("x-request-id") or uuid4_hex(),
            lang=_lang(headers.get("accept-language")),
        ) as ctx:
            _pending.remember_loop(ctx)
            t0 = time.perf_counter()
            try:
                await self.app(scope, receive, _send)
            except BaseException as e:
                _crash(e)
                status[0] = 500
                raise
            finally:
                await self._end(ctx, scope, t0, status[0])

    async def _end(
        self, ctx: RequestContext, scope: Mapping[str, Any], t0: float, code: int
    ) -> None:
        rt = _facade.get_runtime()
        if rt is not None:
            await _pending.settle(ctx, rt)
        route = getattr(scope.get("route"), "path", None) or ctx.state.get(ROUTE)
        route = route or self.routes(scope.get("path") or "/")
        _finish(t0=t0, code=code, method=ctx.method, route=route, errno=_errno(ctx, 0))


# ------------------------------------------------------------------ Django


class DjangoMiddleware:
    """Django middleware: add ``"fxa_metrics.DjangoMiddleware"`` to ``MIDDLEWARE``.

    Django turns view exceptions into 500 responses inside ``get_response``;
    ``process_exception`` is where we see them, capture them (``handled:
    false``), and let Django carry on exactly as before. With
    ``DEBUG_PROPAGATE_EXCEPTIONS`` the exception comes back up through us and
    is re-raised. The statsd ``path`` tag is ``resolver_match.route``, or
    ``_unmatched_``. ``fxa_metrics.django.MetricsMiddleware`` adds the health paths.
    """

    sync_capable = True
    async_capable = False
    health = False
    version_path: str | None = None

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def _health(self, request: Any) -> Any:
        resp = _health.respond(request.path, self.version_path)
        if resp is None:
            return None
        from django.http import HttpResponse

        return HttpResponse(resp.body, status=resp.status, content_type=resp.content_type)

    def __call__(self, request: Any) -> Any:
        if self.health and request.path in _health.PATHS:
            answer = self._health(request)
            if answer is not None:
                return answer
        meta = request.META
        with bind(
            new_request=True,
            user_agent=meta.get("HTTP_USER_AGENT"),
            ip_address=meta.get("REMOTE_ADDR"),
            method=request.method,
            path=request.path,
            rid=meta.get("HTTP_X_REQUEST_ID") or uuid4_hex(),
            lang=_lang(meta.get("HTTP_ACCEPT_LANGUAGE")),
        ) as ctx:
            t0 = time.perf_counter()
            code = 500
            try:
                response = self.get_response(request)
                code = response.status_code
            except BaseException as e:  # DEBUG_PROPAGATE_EXCEPTIONS: Django re-raises
                _crash(e)
                raise
            finally:
                _finish(
                    t0=t0,
                    code=code,
                    method=ctx.method,
                    route=_django_route(request),
                    errno=_errno(ctx, 0),
                )
            return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        _crash(exception)


def _django_route(request: Any) -> str | None:
    route = getattr(getattr(request, "resolver_match", None), "route", None)
    if not route or not isinstance(route, str):
        return None
    return route if route.startswith("/") else "/" + route
