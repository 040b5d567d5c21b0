"""Sentry route: ``Crash`` records become scrubbed Sentry events.

Two modes, chosen once at ``configure()`` (:func:`sinks_from_settings`):

owned client (``sentry_dsn`` given)
    fxa_metrics builds its own ``sentry_sdk.Client`` with default and
    auto-enabling integrations off, so nothing is installed process-wide (no
    ``sys.excepthook``, no logging hook), and ``before_send`` is the FxA scrubber.
host client (no DSN, but the host called ``sentry_sdk.init``)
    crashes go to the host's client, with the scrubber run as an event
    processor of our own scope (after the scope is applied, before the host's
    own ``before_send``).

With neither there is no sink at all: the facade's prepare is all a ``Crash``
costs, and no event is built.

In both modes an event is captured with ``capture_event(..., scope=ours)``
inside our own isolation and current scopes, never ``capture_exception``:
the host's tags, user, breadcrumbs and per-request event processors live on
*its* scopes and would otherwise be merged into our events (DESIGN 3.4).

sentry-sdk is an optional dependency: it is imported here lazily, only when
a sink is built.
"""

from __future__ import annotations

import atexit
import functools
import random
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from . import _scrub, _sentry_perf
from ._config import Settings
from ._context import RequestContext
from ._errors import ConfigurationError, InvalidRecordError
from ._frozen import freeze, thaw
from ._records import Crash, Transaction
from ._runtime import Runtime
from ._sink import Sink, SinkDrop
from ._stats import logger

if TYPE_CHECKING:
    from sentry_sdk import Client
    from sentry_sdk.client import BaseClient
    from sentry_sdk.scope import Scope

# Our own logger, and its children, must never become Sentry events: a failing
# send would log, the log would be captured, the capture would fail... (DESIGN 2).
INTERNAL_LOGGERS = ("fxa_metrics", "fxa_metrics.*")
# Flush/close without a timeout would let a dead Sentry hold up shutdown forever.
DEFAULT_TIMEOUT = 2.0
# Sentry's own limits: longer tag values are rejected by ingestion.
_TAG_VALUE_MAX = 200
# The hint key that carries an opted-in user's hashed id past the scrubber.
_USER_HINT = "fxa_metrics_user_id"
_MECHANISM = {"type": "fxa_metrics", "handled": True}
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_HEX32 = frozenset("0123456789abcdef")


@attrs.frozen(slots=True)
class PreparedCrash:
    """A ``Crash`` plus what the request context said at record time (immutable)."""

    exc: BaseException
    tags: Mapping[str, str]
    extra: Mapping[str, Any]
    request: Mapping[str, Any]
    fxa: Mapping[str, str]
    user_id: str | None  # sha256 of the uid; removed by the consent policy unless allowed
    event_id: str | None
    handled: bool = True  # issue 11: False for a crash that escaped the view

    def without_user(self) -> PreparedCrash:
        """This crash with no user context: what the CRASH_NO_USER policy sends when it must."""
        # privacy (issue 10): the one function that strips analytics (MozLog's too).
        fxa = _scrub.strip_analytics(self.fxa)
        return attrs.evolve(self, user_id=None, fxa=MappingProxyType(dict(fxa)) if fxa else _EMPTY)


def _tag_value(key: str, value: Any) -> str:
    if value is None or isinstance(value, str | int | float | bool):
        return str(value)[:_TAG_VALUE_MAX]
    raise InvalidRecordError("crash", f"tags.{key}", "a Sentry tag value must be a scalar")


def _check_crash(rec: Crash) -> dict[str, str]:
    if not isinstance(rec.exc, BaseException):
        raise InvalidRecordError("crash", "exc", "must be an exception instance")
    event_id = rec.event_id
    if event_id is not None and not (
        isinstance(event_id, str) and len(event_id) == 32 and _HEX32.issuperset(event_id)
    ):
        raise InvalidRecordError("crash", "event_id", "must be 32 lowercase hex digits")
    tags: dict[str, str] = {}
    for key, value in rec.tags.items():
        if not isinstance(key, str) or not key:
            raise InvalidRecordError("crash", repr(key), "Sentry tag names must be non-empty str")
        tags[key] = _tag_value(key, value)
    for key in rec.extra:
        if not isinstance(key, str):
            raise InvalidRecordError("crash", repr(key), "extra keys must be str")
    return tags


def _request_interface(ctx: RequestContext, tags: dict[str, str]) -> dict[str, Any]:
    # Request context -> Sentry's request interface and tags (route, method, rid).
    request: dict[str, Any] = {}
    if ctx.method:
        request["method"] = tags["method"] = ctx.method
    if ctx.path:
        request["url"] = tags["route"] = ctx.path
    if ctx.user_agent:
        request["headers"] = {"User-Agent": ctx.user_agent}
    if ctx.rid:
        tags["rid"] = ctx.rid
    return request


def prepare(rt: Runtime, rec: Crash, ctx: RequestContext) -> PreparedCrash:
    """Check a ``Crash`` and capture the request context it happened in.

    The user context (the hashed uid, the FxA metrics context) is captured
    whenever the request has it; whether it may be sent is the route's consent
    policy's decision (CRASH_NO_USER, in ``_consent``), made in one place.
    Nothing expensive happens here: the event is built by the sink, only when
    a Sentry sink exists.
    """
    tags = _check_crash(rec)
    request = _request_interface(ctx, tags)
    fxa = {
        name: value
        for name in ("lang", "service", "oauth_client_id", "entrypoint", "device_type")
        if (value := getattr(ctx, name)) is not None
    }
    return PreparedCrash(
        exc=rec.exc,
        tags=MappingProxyType(tags) if tags else _EMPTY,
        extra=freeze(rec.extra) if rec.extra else _EMPTY,
        request=freeze(request) if request else _EMPTY,
        fxa=MappingProxyType(fxa) if fxa else _EMPTY,
        # The id is the sha256 Glean's account.user_id_sha256 uses, never the uid.
        user_id=ctx.uid_sha256 if ctx.uid else None,
        event_id=rec.event_id,
        handled=rec.handled is not False,  # issue 11
    )


@attrs.frozen(slots=True)
class PreparedTransaction:
    """A sampled :class:`~fxa_metrics.Transaction`, checked (immutable)."""

    name: str
    duration_ms: float
    tags: Mapping[str, str]
    spans: tuple[tuple[str, float, float], ...]
    op: str


def prepare_transaction(
    rt: Runtime, rec: Transaction, ctx: RequestContext
) -> PreparedTransaction | None:
    """Check a transaction, then sample it (None: not sampled, nothing to send)."""
    name, ms = rec.name, rec.duration_ms
    if not isinstance(name, str) or not name:
        raise InvalidRecordError(str(name), "name", "a transaction name must be a non-empty str")
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms < 86_400_000:
        raise InvalidRecordError(name, "duration_ms", "must be a number of ms in 0..1 day")
    tags = {str(k): _tag_value(str(k), v) for k, v in rec.tags.items()}
    for span in rec.spans:
        if len(span) != 3 or not isinstance(span[0], str) or not 0 <= span[1] <= span[2]:
            raise InvalidRecordError(name, "spans", f"bad span {span!r}: (op, start_ms, end_ms)")
    rate = rt.settings.sentry_traces_sample_rate
    if rate <= 0.0 or random.random() >= rate:
        return None
    return PreparedTransaction(name, float(ms), MappingProxyType(tags), rec.spans, rec.op)


class SentryScrubber:
    """The ``before_send``/``before_send_transaction`` callable: FxA's rules, fail-closed.

    fxa_metrics' own client uses it; a host can use it for its own events too::

        sentry_sdk.init(dsn=..., before_send=fxa_metrics.SentryScrubber("fxa-auth-server"))

    It drops what FxA does not report (status below 500, bounce errnos),
    scrubs the rest (see ``_scrub``) and tags ``fxa.name``. An opted-in user's
    hashed id (passed in the hint by :class:`SentrySink`) is put back after
    scrubbing; the scrubber itself removes every ``user``.
    """

    def __init__(self, service: str) -> None:
        self.service = service

    # Typed loosely: sentry-sdk's Event is a TypedDict of its private _types module.
    def __call__(self, event: Any, hint: Any) -> Any:
        try:
            out = _scrub.scrub_event(event, hint, service=self.service)
            if out is not None and hint and hint.get(_USER_HINT):
                out["user"] = {"id": hint[_USER_HINT]}
            return out
        except Exception as e:
            # An event we could not scrub is not sent. Never re-raise: the SDK
            # would log it and (in host mode) keep the unscrubbed event.
            logger.warning(  # privacy (issue 10): never echo a value
                "fxa_metrics: scrubbing a Sentry event failed, dropped it: %s", _scrub.log_safe(e)
            )
            return None


def _trace_context() -> dict[str, str]:
    # Random ids, not secrets: the SDK's own span ids are no stronger.
    return {"trace_id": uuid.uuid4().hex, "span_id": f"{random.getrandbits(64):016x}"}


def _ignore_internal_loggers() -> None:
    from sentry_sdk.integrations.logging import ignore_logger

    for name in INTERNAL_LOGGERS:
        ignore_logger(name)


class SentrySink(Sink):
    """Sends prepared crashes (and, via :class:`SentrySpanSink`, timings) to Sentry.

    ``client`` is the owned client, or None to use the host's current client.
    """

    def __init__(self, client: Client | None, scrubber: SentryScrubber) -> None:
        import sentry_sdk

        self.scrubber = scrubber
        self._client = client
        self.owned = client is not None
        # Our scopes: empty, never written to. `_scope` is passed to
        # capture_event and made current; `_isolation` replaces the host's
        # isolation scope for the duration of a capture, so neither the host's
        # data nor its per-request event processors touch our events.
        self._scope: Scope = sentry_sdk.Scope(client=client)
        self._isolation: Scope = sentry_sdk.Scope()
        if not self.owned:
            # The host's before_send is its own; ours runs as our scope's
            # processor, after scope data is applied (there is none) and
            # after the global processors of the host's integrations.
            self._scope.add_event_processor(self.scrubber)
        self._stalled = False
        self._atexit: Callable[[], None] | None = None
        if self.owned:
            # Without the SDK's atexit integration (it is process-wide), queued
            # events would be lost at exit if the host never calls reset().
            # The partial is ours alone, so close() unregisters only this sink.
            self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
            atexit.register(self._atexit)

    @property
    def client(self) -> BaseClient:
        if self._client is not None:
            return self._client
        import sentry_sdk

        return sentry_sdk.get_client()

    def capture(
        self,
        event: dict[str, Any],
        hint: dict[str, Any],
        exc: BaseException | None,
        handled: bool = True,  # issue 11: the mechanism's flag
    ) -> None:
        """Build (for ``exc``) and send one event in our own scopes."""
        from sentry_sdk.scope import use_isolation_scope, use_scope
        from sentry_sdk.utils import event_from_exception

        client = self.client
        if not client.is_active():
            return  # the host closed its client: build nothing
        with use_isolation_scope(self._isolation), use_scope(self._scope):
            # Inside our scopes: the SDK reads frame options from the current client.
            if exc is not None:
                built, exc_hint = event_from_exception(
                    (type(exc), exc, exc.__traceback__),
                    client_options=client.options,
                    mechanism={**_MECHANISM, "handled": handled},
                )
                event.update(built)
                hint.update(exc_hint)
            client.capture_event(event, hint, scope=self._scope)

    def emit(self, record: Any) -> None:
        p: PreparedCrash = record
        why = _scrub.ignored_error(p.exc)
        if why is not None:
            # What FxA does not report (4xx, bounce errnos): no event is built.
            raise SinkDrop("sentry_filtered", f"{type(p.exc).__name__} ({why})")
        event: dict[str, Any] = {
            "level": "error",
            # Our own trace ids: the shared scope's would tie every crash to one trace.
            "contexts": {"trace": _trace_context()},
        }
        if p.event_id is not None:
            event["event_id"] = p.event_id
        if p.tags:
            event["tags"] = dict(p.tags)
        # Plain, private copies: the scrubber and the SDK may change the event.
        if p.extra:
            event["extra"] = thaw(p.extra)
        if p.request:
            event["request"] = thaw(p.request)
        if p.fxa:
            event["contexts"]["fxa"] = dict(p.fxa)
        hint: dict[str, Any] = {_USER_HINT: p.user_id} if p.user_id else {}
        self.capture(event, hint, p.exc, p.handled)

    def flush(self, timeout: float | None = None) -> None:
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        start = time.monotonic()
        self.client.flush(timeout=timeout)
        # A flush that used its whole budget met a dead or blackholed endpoint;
        # close() then does not wait a second time (shutdown stays bounded).
        self._stalled = time.monotonic() - start >= timeout * 0.9

    def close(self, timeout: float | None = None) -> None:
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if not self.owned:
            # Never close the host's client; push out what we gave it.
            if not self._stalled:
                self.flush(timeout)
            return
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None
        assert self._client is not None
        self._client.close(timeout=0.0 if self._stalled else timeout)

    def __repr__(self) -> str:
        return f"SentrySink({'owned' if self.owned else 'host'} client)"


def _close_at_exit(ref: weakref.ref[SentrySink]) -> None:
    sink = ref()
    if sink is not None and sink._client is not None:
        sink._client.close(timeout=DEFAULT_TIMEOUT)


class SentryPerformanceSink(Sink):
    """Sentry Performance: each prepared transaction goes out through the crash sink's client.

    Same client, same private scopes and the same scrubber as crashes; no
    user context ever (the route's policy is AGGREGATE).
    """

    def __init__(self, crashes: SentrySink) -> None:
        self._crashes = crashes

    def emit(self, record: Any) -> None:
        if isinstance(record, _sentry_perf.PreparedPageLoad):  # issue 15: a page load
            self._crashes.capture(_sentry_perf.transaction_event(record), {}, None)
            return
        t: PreparedTransaction = record
        end = datetime.now(UTC)
        start = end - timedelta(milliseconds=t.duration_ms)
        trace = _trace_context()
        event: dict[str, Any] = {
            "type": "transaction",
            "transaction": t.name,
            "transaction_info": {"source": "custom"},
            "start_timestamp": start,
            "timestamp": end,
            "contexts": {"trace": {**trace, "op": t.op, "status": "ok"}},
            "spans": [
                {
                    "op": op,
                    "description": op,
                    "trace_id": trace["trace_id"],
                    "parent_span_id": trace["span_id"],
                    "span_id": f"{random.getrandbits(64):016x}",
                    "start_timestamp": start + timedelta(milliseconds=begin),
                    "timestamp": start + timedelta(milliseconds=finish),
                }
                for op, begin, finish in t.spans
            ],
        }
        if t.tags:
            event["tags"] = {k: v[:_TAG_VALUE_MAX] for k, v in t.tags.items()}
        self._crashes.capture(event, {}, None)

    def __repr__(self) -> str:
        return "SentryPerformanceSink()"


def _owned_client(settings: Settings, scrubber: SentryScrubber) -> Client:
    import sentry_sdk
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        Dsn(settings.sentry_dsn or "")
    except BadDsn as e:
        raise ConfigurationError(f"configure(): sentry_dsn is not a valid DSN: {e}") from None
    # issue 9: losses counted, and a close() that ends the worker (see _sentry_transport).
    from ._sentry_transport import CountingTransport

    return sentry_sdk.Client(
        dsn=settings.sentry_dsn,
        transport=CountingTransport,
        # Its Monitor thread sleeps 10 s between checks and outlives close(); it
        # only downsamples SDK-started transactions, and ours are built directly.
        enable_backpressure_handling=False,
        environment=settings.sentry_environment or settings.channel,
        release=settings.app_version,
        # Nothing process-wide: no excepthook, no logging/threading/stdlib hooks.
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[],
        before_send=scrubber,
        before_send_transaction=scrubber,
        # Our scope never holds breadcrumbs; the host's must not reach us.
        max_breadcrumbs=0,
    )


def sinks_from_settings(
    settings: Settings, built: Mapping[str, tuple[Sink, ...]] | None = None
) -> list[Sink]:
    """The Sentry sinks for these settings: owned client, host client, or none."""
    try:
        import sentry_sdk
    except ImportError:
        if settings.sentry_dsn:
            raise ConfigurationError(
                "configure(): sentry_dsn is set but sentry-sdk is not installed "
                "(pip install 'fxa-metrics[sentry]')"
            ) from None
        return []
    # Even with no sink of ours, a host's logging integration must not pick up
    # our internal logger.
    _ignore_internal_loggers()
    if settings.sentry_dsn:
        scrubber = SentryScrubber(settings.service)
        return [SentrySink(_owned_client(settings, scrubber), scrubber)]
    if sentry_sdk.get_client().is_active():
        return [SentrySink(None, SentryScrubber(settings.service))]
    return []


def performance_sinks(settings: Settings, built: Mapping[str, tuple[Sink, ...]]) -> list[Sink]:
    """Sentry Performance sinks (tracing on): one per crash sink, sharing its client."""
    if settings.sentry_traces_sample_rate <= 0.0:
        return []
    return [SentryPerformanceSink(s) for s in built.get("sentry", ()) if isinstance(s, SentrySink)]
