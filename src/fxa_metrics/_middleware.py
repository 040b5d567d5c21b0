"""Request instrumentation: a handler decorator, WSGI and ASGI middleware, a Django middleware.

Per request each of them:

* binds the request context (user agent, client IP, rid, method, path, lang);
* times the handler into statsd as ``url_request`` with method, path and status tags;
* writes one ``request.summary`` MozLog line (Dockerflow/FxA fields);
* captures an unhandled exception to Sentry and re-raises it unchanged;
* returns the handler's result untouched.

All telemetry goes through ``record()``, so it is checked, consent-gated and
contained like any other record: instrumentation never raises into the request.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from . import _scrub
from ._context import REQUEST_UID, RequestContext, bind, current, use
from ._facade import record
from ._records import Crash, Log, Timing

P = ParamSpec("P")
R = TypeVar("R")

TIMING = "url_request"
SUMMARY = "request.summary"

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
    if route:
        tags["path"] = path_tag(route)
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
    record(Log(SUMMARY, fields))


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
            fields["rid"] = str(uuid.uuid4())
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
    # KeyboardInterrupt/SystemExit/cancellation are control flow, not crashes.
    if isinstance(exc, Exception):
        record(Crash(exc))


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].strip() or None


def _lang(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].split(";")[0].strip() or None


# ------------------------------------------------------------------ WSGI


class WSGIMiddleware:
    """Wrap a WSGI app: ``app.wsgi_app = fm.WSGIMiddleware(app.wsgi_app)``.

    ``trust_forwarded``: take the client IP from the first ``X-Forwarded-For``
    entry (only behind a proxy you control). ``route_of(environ)`` may return
    the route template for the path tag; otherwise identifying segments of the
    path are replaced by ``:id``.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        trust_forwarded: bool = False,
        route_of: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        self.app = app
        self.trust_forwarded = trust_forwarded
        self.route_of = route_of

    def _context(self, environ: Mapping[str, Any]) -> dict[str, Any]:
        ip = environ.get("REMOTE_ADDR")
        if self.trust_forwarded:
            ip = _first(environ.get("HTTP_X_FORWARDED_FOR")) or ip
        return {
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "ip_address": ip,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO") or "/",
            "rid": environ.get("HTTP_X_REQUEST_ID") or str(uuid.uuid4()),
            "lang": _lang(environ.get("HTTP_ACCEPT_LANGUAGE")),
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        status: list[int] = [500]

        def _start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info)

        binding = bind(new_request=True, **self._context(environ))
        ctx = binding.__enter__()
        t0 = time.perf_counter()
        try:
            body = self.app(environ, _start)
        except BaseException as e:
            _crash(e)
            self._done(t0, 500, environ, ctx.method, errno=999)
            binding.__exit__(None, None, None)
            raise
        binding.__exit__(None, None, None)
        # The summary is written when the server closes the body, so `t`
        # covers streaming, and the context is re-bound for it.
        return _ClosingBody(body, lambda: self._after(ctx, t0, status[0], environ))

    def _after(self, ctx: RequestContext, t0: float, code: int, environ: Mapping[str, Any]) -> None:
        # The same request context (and its state: the handler's uid) as during the call.
        with use(ctx):
            self._done(t0, code, environ, ctx.method)

    def _done(
        self,
        t0: float,
        code: int,
        environ: Mapping[str, Any],
        method: str | None,
        errno: int = 0,
    ) -> None:
        route = self.route_of(environ) if self.route_of else None
        route = route or route_template(environ.get("PATH_INFO") or "/")
        _finish(t0=t0, code=code, method=method, route=route, errno=errno)


class _ClosingBody:
    """The app's body, with our summary hooked onto ``close()`` (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


# ------------------------------------------------------------------ ASGI


class ASGIMiddleware:
    """Wrap an ASGI app (Starlette, FastAPI): ``app.add_middleware(fm.ASGIMiddleware)``."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, trust_forwarded: bool = False):
        self.app = app
        self.trust_forwarded = trust_forwarded

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
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

        with bind(
            new_request=True,
            user_agent=headers.get("user-agent"),
            ip_address=ip,
            method=scope.get("method"),
            path=scope.get("path") or "/",
            rid=headers.get("x-request-id") or str(uuid.uuid4()),
            lang=_lang(headers.get("accept-language")),
        ) as ctx:
            t0 = time.perf_counter()
            errno = 0
            try:
                await self.app(scope, receive, _send)
            except BaseException as e:
                _crash(e)
                status[0], errno = 500, 999
                raise
            finally:
                route = getattr(scope.get("route"), "path", None)
                route = route or route_template(scope.get("path") or "/")
                _finish(t0=t0, code=status[0], method=ctx.method, route=route, errno=errno)


# ------------------------------------------------------------------ Django


class DjangoMiddleware:
    """Django middleware: add ``"fxa_metrics.DjangoMiddleware"`` to ``MIDDLEWARE``.

    Django turns view exceptions into 500 responses inside ``get_response``;
    ``process_exception`` is where we see them, capture them, and let Django
    carry on exactly as before.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        meta = request.META
        with bind(
            new_request=True,
            user_agent=meta.get("HTTP_USER_AGENT"),
            ip_address=meta.get("REMOTE_ADDR"),
            method=request.method,
            path=request.path,
            rid=meta.get("HTTP_X_REQUEST_ID") or str(uuid.uuid4()),
            lang=_lang(meta.get("HTTP_ACCEPT_LANGUAGE")),
        ) as ctx:
            t0 = time.perf_counter()
            request._fxa_metrics_errno = 0
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            route = getattr(match, "route", None)
            route = "/" + route if route and not route.startswith("/") else route
            _finish(
                t0=t0,
                code=response.status_code,
                method=ctx.method,
                route=route or route_template(request.path),
                errno=request._fxa_metrics_errno,
            )
            return response

    def process_exception(self, request: Any, exception: Exception) -> None:
        _crash(exception)
        request._fxa_metrics_errno = 999
