"""Request context carried in :mod:`contextvars`.

Why contextvars: a value bound in one request must never be seen by another,
whether requests run on threads (WSGI workers) or as asyncio tasks (ASGI).
Each task and thread starts from a copy of its parent's context, so binding
in a request handler is invisible to its siblings.

The context is an immutable :class:`RequestContext`; ``bind()`` layers new
values over the current ones and restores the previous context on exit.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import functools
import inspect
import math
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar, cast

import attrs

from . import _runtime
from ._errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")


def uid_sha256(uid: str) -> str:
    """FxA's ``account.user_id_sha256``: sha256 of the uid's hex string, as hex.

    >>> uid_sha256("0123456789abcdef0123456789abcdef")[:8]
    '3eb1bd43'
    """
    from hashlib import sha256  # here: OpenSSL's load is a tenth of our import time

    return sha256(uid.encode()).hexdigest()


@attrs.frozen(slots=True)
class RequestContext:
    """What fxa_metrics knows about the request being handled.

    The FxA metrics context (flow, entrypoint, utm, service, client, device)
    fills the Glean common string metrics of every event; ``uid`` fills
    ``account.user_id`` and ``account.user_id_sha256``.
    """

    user_agent: str | None = None
    ip_address: str | None = None
    uid: str | None = None
    email: str | None = None
    # None = not known from the credentials; True/False = the account's
    # metricsOptOutAt was (not) set. Resolved further by the consent module.
    metrics_opt_out: bool | None = None
    rid: str | None = None
    method: str | None = None
    path: str | None = None
    lang: str | None = None
    flow_id: str | None = None
    entrypoint: str | None = None
    entrypoint_experiment: str | None = None
    entrypoint_variation: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_medium: str | None = None
    utm_source: str | None = None
    utm_term: str | None = None
    service: str | None = None
    oauth_client_id: str | None = None
    device_type: str | None = None
    skip_client_ip: bool = False
    # Derived once per bind, not per event: hashing on every record is waste.
    uid_sha256: str | None = None
    # Per-request mutable state owned by fxa_metrics (the consent cache).
    # Not part of equality: two contexts with equal fields are the same request data.
    state: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


CONTEXT_FIELDS: frozenset[str] = frozenset(
    a.name for a in attrs.fields(RequestContext) if a.name not in ("uid_sha256", "state")
)


# Context fields that are not text (everything else is a str or None).
_NON_TEXT_FIELDS = frozenset({"metrics_opt_out", "skip_client_ip"})
_SURROGATE = re.compile("[\ud800-\udfff]")

# state key: the uid a handler bound (in a nested bind) during this request.
REQUEST_UID = "request_uid"

_EMPTY_CONTEXT = RequestContext()
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "fxa_metrics_request", default=_EMPTY_CONTEXT
)


def current() -> RequestContext:
    """The request context bound in this thread/task (an empty one if none)."""
    return _current.get()


@contextlib.contextmanager
def use(ctx: RequestContext) -> Iterator[RequestContext]:
    """Make an already-built context current again (same fields, same request state)."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def in_request(ctx: RequestContext) -> bool:
    """Whether ``ctx`` belongs to a bound request (its ``state`` is that request's own)."""
    return ctx is not _EMPTY_CONTEXT


def _bad_field(fields: dict[str, Any], name: str, message: str) -> None:
    """A programming error in bind(): loud in strict mode (and before configure()),
    dropped, counted and logged once in production, where it must never fail a request."""
    rt = _runtime.current()
    if rt is None or rt.strict:
        raise ConfigurationError(message)
    fields.pop(name, None)
    rt.stats.error("invalid_context", name, message)


# privacy (issue 10) -------------------------------------------------------------
INVALID_OPT_OUT = "invalid_opt_out"  # stats().errors reason: a malformed flag, read as opted out


def _opt_out_flag(value: Any) -> bool:
    """A non-bool ``metrics_opt_out``: always True (opted out), the safe side.

    FxA stores ``metricsOptOutAt`` as a timestamp (ms), so a positive finite
    number or a datetime means "opted out at": accepted silently. Anything else
    (``"true"``, ``0``, a NaN, an object) is a bug at the call site: strict mode
    raises (like any bad field), production counts it (``invalid_opt_out``),
    logs it once and treats the user as opted out rather than as enabled.
    """
    if isinstance(value, datetime.datetime):
        return True
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return True
    from . import _facade
    from ._errors import ConfigurationError

    message = (
        "request context field metrics_opt_out must be a bool, None or a metricsOptOutAt "
        f"timestamp, got {type(value).__name__}; treated as opted out"
    )
    rt = _facade.get_runtime()
    if rt is None or rt.strict:
        raise ConfigurationError(message)
    rt.stats.error(INVALID_OPT_OUT, "metrics_opt_out", message)
    return True


# --------------------------------------------------------------------------------


def _layer(base: RequestContext, fields: dict[str, Any], new_request: bool) -> RequestContext:
    unknown = set(fields) - CONTEXT_FIELDS
    if unknown:
        # A misspelt key (``flowId``) would otherwise vanish silently.
        message = (
            f"unknown request context field(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(CONTEXT_FIELDS))}"
        )
        for name in sorted(unknown):
            _bad_field(fields, name, message)
    for name, value in list(fields.items()):
        if value is None:
            continue
        if name == "metrics_opt_out" and not isinstance(value, bool):
            fields[name] = _opt_out_flag(value)  # privacy (issue 10): fails closed
            continue
        if name in _NON_TEXT_FIELDS:
            if not isinstance(value, bool):
                _bad_field(
                    fields, name, f"request context field {name} must be a bool or None, "
                    f"got {type(value).__name__}"
                )  # fmt: skip
            continue
        if not isinstance(value, str):
            # Every Glean string metric and the envelope's user_agent/ip_address must be str.
            _bad_field(
                fields,
                name,
                f"request context field {name} must be a str or None, got {type(value).__name__}",
            )
            continue
        if not value.isascii():
            # Header values decoded with surrogateescape can carry lone
            # surrogates, which no UTF-8 JSON line can hold. This is request
            # data, not a bug: replace them (U+FFFD) rather than fail the request.
            fields[name] = _SURROGATE.sub("\ufffd", value)
    if "uid" in fields:
        uid = fields["uid"]
        fields["uid_sha256"] = uid_sha256(uid) if uid else None
    # A new request (the outermost bind) starts with fresh per-request state,
    # so a consent answer cached for one request is never reused by the next.
    # The empty context's state is process-wide: a top-level bind(new_request=False)
    # must not share it, or a cached answer would leak into every later request.
    fresh = new_request or base is _EMPTY_CONTEXT
    state: dict[str, Any] = {} if fresh else base.state
    if fields.get("uid"):
        # The request's user, once known, for whoever summarises the request
        # from an outer binding (the middleware's request.summary line).
        state[REQUEST_UID] = fields["uid"]
    fields["state"] = state
    return _evolve(base, fields)


_FIELD_NAMES: tuple[str, ...] = tuple(a.name for a in attrs.fields(RequestContext))
_new = object.__new__
_set = object.__setattr__


def _evolve(base: RequestContext, changes: dict[str, Any]) -> RequestContext:
    """``attrs.evolve(base, **changes)`` for checked fields, at under two thirds of its cost.

    Every request binds at least once, and evolve re-validates its arguments
    and goes through ``__init__``; the fields here are checked already. The
    frozen class is filled the way its own ``__init__`` fills it.
    """
    ctx = _new(RequestContext)
    for name in _FIELD_NAMES:
        _set(ctx, name, changes[name] if name in changes else getattr(base, name))
    return ctx


class bind:
    """Bind request context values, as a context manager or a decorator.

    >>> import fxa_metrics as fm
    >>> with fm.bind(uid="0123456789abcdef0123456789abcdef", flow_id="f1"):
    ...     fm.current_context().flow_id
    'f1'
    >>> fm.current_context().flow_id is None
    True

    As a decorator it binds afresh for every call, sync or async. Use
    ``new_request=True`` (the default for the outermost bind) to start a new
    request's state; nested binds share the enclosing request's state.
    """

    __slots__ = ("_fields", "_new_request", "_tokens")

    def __init__(self, new_request: bool | None = None, **fields: Any) -> None:
        self._fields = fields
        self._new_request = new_request
        self._tokens: list[contextvars.Token[RequestContext]] = []

    def __enter__(self) -> RequestContext:
        base = _current.get()
        new_request = self._new_request
        if new_request is None:
            new_request = base is _EMPTY_CONTEXT
        ctx = _layer(base, dict(self._fields), new_request)
        self._tokens.append(_current.set(ctx))
        return ctx

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._tokens.pop())

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        fields, new_request = self._fields, self._new_request
        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[P, Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with bind(new_request, **fields):
                    return await afn(*args, **kwargs)

            return cast(Callable[P, R], awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with bind(new_request, **fields):
                return fn(*args, **kwargs)

        return wrapper


# ------------------------------------------------------------------ issue 11: threads
#
# A new thread starts from an empty contextvars context, and executors reuse
# threads that never saw the request: neither inherits the request. These carry
# only fxa_metrics' own request context (not the host's contextvars: a Flask
# request object must not outlive its request in another thread). The request's
# state is shared, so a thread reuses the request's cached consent answer.


def with_context(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, run in the request context current *now*, from whatever thread calls it.

    >>> import fxa_metrics as fm
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with fm.bind(flow_id="f1"), ThreadPoolExecutor(1) as pool:
    ...     pool.submit(fm.with_context(lambda: fm.current_context().flow_id)).result()
    'f1'
    """
    ctx = _current.get()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _current.set(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return run


class Thread(threading.Thread):
    """A :class:`threading.Thread` whose target runs in the request context it was created in.

    >>> import fxa_metrics as fm
    >>> seen = []
    >>> with fm.bind(flow_id="f2"):
    ...     t = fm.Thread(target=lambda: seen.append(fm.current_context().flow_id))
    >>> t.start(); t.join()
    >>> seen
    ['f2']
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fxa_metrics_ctx = _current.get()

    def run(self) -> None:
        token = _current.set(self._fxa_metrics_ctx)
        try:
            super().run()
        finally:
            _current.reset(token)
