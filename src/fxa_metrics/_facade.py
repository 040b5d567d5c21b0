"""The one entry point, ``record()``, and the table that routes each record kind to its sink.

The flow of one record::

    record(x) ─► ROUTES[type(x)] ─► prepare (definitions check) ─► consent gate
             ─► every sink of the route, each wrapped on its own

In strict mode a failed check raises a precise :class:`RecordError`; in
production it is dropped, counted per reason and logged once. A sink that
raises is contained and counted (``sink_error``) without stopping the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, overload

from . import _consent, _glean, _glean_sdk, _sentry, _statsd
from ._config import Settings, build_settings
from ._context import RequestContext, current
from ._definitions import Definitions, load
from ._errors import InvalidRecordError, RecordError, ValueTooLongError
from ._mozlog import MozLogHandler, MozLogSink
from ._records import (
    Counter,
    Crash,
    DeletionRequest,
    Event,
    Gauge,
    GleanMetric,
    Log,
    Metrics,
    Set,
    Timing,
)
from ._sink import Sink
from ._stats import Stats, StatsSnapshot, logger

GLEAN, MOZLOG, STATSD, SENTRY = "glean", "mozlog", "statsd", "sentry"
GLEAN_SDK = "glean_sdk"  # issue 13: service-level metrics through glean-sdk
# What the glean-sdk route is given instead of the request's context (issue 13).
_NO_CONTEXT = RequestContext()
ROUTE_NAMES = (GLEAN, MOZLOG, STATSD, SENTRY, GLEAN_SDK)

Prepare = Callable[["Runtime", Any, RequestContext], Any]


class Route(NamedTuple):
    sink: str
    prepare: Prepare


def _glean_prepare(fn: Callable[..., Any]) -> Prepare:
    def prepare(rt: Runtime, rec: Any, ctx: RequestContext) -> Any:
        return fn(rt.defs, rec, ctx, rt.overflow)

    return prepare


# LogRecord attributes a MozLog field may not shadow: logging itself would raise KeyError.
_RESERVED_LOG_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# Environment fields every MozLog line carries (staging vs production is
# explicit); the MozLog sink adds them, so a caller's field may not shadow them.
ENV_LOG_FIELDS = ("app_id", "app_channel")
_FORBIDDEN_LOG_FIELDS = _RESERVED_LOG_FIELDS | frozenset(ENV_LOG_FIELDS)


def _prepare_log(rt: Runtime, rec: Log, ctx: RequestContext) -> Log:
    if not isinstance(rec.type, str) or not rec.type or rec.type != rec.type.strip():
        raise InvalidRecordError(str(rec.type), "type", "a MozLog Type must be a non-empty string")
    keys = rec.fields.keys()
    # Set operations first: the common, clean case costs two C calls.
    if not _FORBIDDEN_LOG_FIELDS.isdisjoint(keys) or any(type(k) is not str for k in keys):
        for key in keys:
            if not isinstance(key, str):
                raise InvalidRecordError(rec.type, repr(key), "MozLog field names must be str")
            if key in _RESERVED_LOG_FIELDS:
                raise InvalidRecordError(
                    rec.type, key, "shadows a stdlib LogRecord attribute; rename the field"
                )
            if key in ENV_LOG_FIELDS:
                raise InvalidRecordError(
                    rec.type, key, "is set by fxa_metrics (the environment); rename the field"
                )
    if not isinstance(rec.level, int):
        raise InvalidRecordError(rec.type, "level", "must be a stdlib logging level (int)")
    return rec


# The routing table: record kind -> (sink route, definitions check).
ROUTES: dict[type, Route] = {
    Event: Route(GLEAN, _glean_prepare(_glean.prepare_event)),
    Metrics: Route(GLEAN, _glean_prepare(_glean.prepare_metrics)),
    DeletionRequest: Route(GLEAN, _glean_prepare(_glean.prepare_deletion)),
    Log: Route(MOZLOG, _prepare_log),
    Timing: Route(STATSD, _statsd.prepare),
    Counter: Route(STATSD, _statsd.prepare),
    Gauge: Route(STATSD, _statsd.prepare),
    Set: Route(STATSD, _statsd.prepare),
    Crash: Route(SENTRY, _sentry.prepare),
    # glean-sdk route (issue 13): consent is the service switch alone (_consent.gate).
    GleanMetric: Route(GLEAN_SDK, _glean_sdk.prepare),
}


class Runtime:
    """Everything ``configure()`` built. Immutable once published; swapped whole."""

    def __init__(
        self, settings: Settings, defs: Definitions, sinks: Mapping[str, tuple[Sink, ...]]
    ) -> None:
        self.settings = settings
        self.defs = defs
        self.sinks = sinks
        self.strict = settings.strict
        self.stats = Stats()

    def overflow(self, metric: str, field: str | None, limit: int) -> None:
        if self.strict:
            raise ValueTooLongError(metric, field, f"is longer than {limit} (Glean's limit)")
        self.stats.error(ValueTooLongError.reason, metric, f"{field} truncated to {limit}")

    def close(self, timeout: float | None = None) -> None:
        for sinks in self.sinks.values():
            for sink in sinks:
                try:
                    sink.flush(timeout)
                    sink.close(timeout)
                except Exception as e:  # shutdown must finish for every sink
                    self.stats.keep(e)
                    logger.warning("fxa_metrics: closing %r failed: %r", sink, e)


_runtime: Runtime | None = None
_lock = threading.Lock()
# What stats() reports while unconfigured: nothing is recorded, so nothing is dropped.
_orphan_stats = Stats()


def _metric_of(what: Any) -> str:
    name = getattr(what, "name", None) or getattr(what, "type", None)
    if isinstance(what, str):
        return what
    return name if isinstance(name, str) else type(what).__name__


# Everything record() accepts as a record object.
Record = (
    Event | Metrics | DeletionRequest | Log | Timing | Counter | Gauge | Set | Crash | GleanMetric
)


@overload
def record(
    what: str,
    /,
    extra: Mapping[str, Any] | None = None,
    *,
    metrics: Mapping[str, Any] | None = None,
    ping: str | None = None,
    skip_client_ip: bool = False,
    value: Any = None,  # glean-sdk metrics: the amount, sample or (numerator, denominator)
    label: str | None = None,  # glean-sdk labeled_counter: one of its labels
) -> None: ...


@overload
def record(what: Record, /) -> None: ...


def record(what: Any, /, extra: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """Record one thing; where it goes follows from what it is (see ``ROUTES``).

    ``record("login.complete", extra={"reason": "password"})`` is shorthand for
    ``record(Event("login.complete", extra={"reason": "password"}))``.

    Never raises in production mode. In strict mode raises a
    :class:`RecordError` subclass naming the metric and the field.
    """
    rt = _runtime
    if rt is None:
        return  # before configure(): a no-op, by design
    try:
        # --- glean-sdk route (issue 13): a metric name whose TYPE is a glean-sdk type
        # is checked here, and never sees the request context (no user data).
        sample = _glean_sdk.from_call(rt.defs, what, extra, kwargs)
        if sample is not None:
            sink_route, prepared, ctx = GLEAN_SDK, sample, _NO_CONTEXT
        else:
            if isinstance(what, str):
                try:
                    what = Event(what, extra=extra, **kwargs)
                except (TypeError, ValueError) as e:
                    # Bad argument shapes (unknown keyword, metrics="0"): precise, never a crash.
                    raise InvalidRecordError(what, None, str(e)) from e
            elif extra is not None or kwargs:
                raise InvalidRecordError(
                    _metric_of(what),
                    None,
                    "extra=/keywords go with a metric name, not a record object",
                )
            route = ROUTES.get(type(what))
            if route is None:
                raise InvalidRecordError(
                    _metric_of(what), None, f"{type(what).__name__} is not an fxa_metrics record"
                )
            ctx = current()
            sink_route = route.sink
            prepared = route.prepare(rt, what, ctx)
        prepared = _consent.gate(sink_route, prepared, ctx, rt)
        if prepared is None:
            return
        for sink in rt.sinks.get(sink_route, ()):
            try:
                sink.emit(prepared)
            except Exception as e:
                rt.stats.drop("sink_error", f"{sink_route}:{type(sink).__name__}", repr(e))
                rt.stats.keep(e)
    except RecordError as e:
        rt.stats.drop(e.reason, e.metric, str(e))
        if rt.strict:
            raise
    except Exception as e:
        # Our own bug. Contained in production, kept for the pytest tripwire.
        rt.stats.drop("internal_error", _metric_of(what), repr(e))
        rt.stats.keep(e)
        if rt.strict:
            raise


def _default_sinks(settings: Settings) -> dict[str, list[Sink]]:
    encoder = _glean.GleanEncoder(
        app_id=settings.app_id,
        app_version=settings.app_version,
        channel=settings.channel,
        logger=settings.glean_logger or f"{settings.service}-glean",
    )
    sinks: dict[str, list[Sink]] = {name: [] for name in ROUTE_NAMES}
    sinks[GLEAN].append(_glean.GleanServerSink(encoder, settings.glean_stream))
    attach = settings.mozlog_handler == "always" or (
        settings.mozlog_handler == "auto" and not logging.getLogger().handlers
    )
    handler = MozLogHandler(settings.service, settings.mozlog_stream) if attach else None
    env = {"app_id": settings.app_id, "app_channel": settings.channel}
    sinks[MOZLOG].append(MozLogSink(handler, env))
    sinks[STATSD].extend(_statsd.sinks_from_settings(settings))
    sentry = _sentry.sinks_from_settings(settings)
    sinks[SENTRY].extend(sentry)
    # Sentry Performance (tracing on): Timings also go to Sentry as transactions.
    sinks[STATSD].extend(_sentry.span_sinks(sentry, settings))
    return sinks


def build_runtime(settings: Settings) -> Runtime:
    rt = _build_runtime(settings)
    # --- glean-sdk route (issue 13): its sink is built from the definitions and
    # counts its losses (queue full, uploads) on the runtime's stats.
    if not settings.replace_sinks:
        sdk_sinks = _glean_sdk.sinks_from_settings(settings, rt.defs)
        rt.sinks = {**rt.sinks, GLEAN_SDK: (*sdk_sinks, *rt.sinks[GLEAN_SDK])}
    for sink in rt.sinks[GLEAN_SDK]:
        if isinstance(sink, _glean_sdk.GleanSdkSink):
            sink.attach(rt.stats)
    return rt


def _build_runtime(settings: Settings) -> Runtime:
    defs = load(settings.metrics_yaml, settings.pings_yaml, app_version=settings.app_version)
    unknown = set(settings.sinks) - set(ROUTE_NAMES)
    if unknown:
        from ._errors import ConfigurationError

        raise ConfigurationError(
            f"configure(sinks=...): unknown route(s) {sorted(unknown)}; routes are {ROUTE_NAMES}"
        )
    sinks = (
        {name: [] for name in ROUTE_NAMES} if settings.replace_sinks else _default_sinks(settings)
    )
    for name, extra_sinks in settings.sinks.items():
        sinks[name].extend(extra_sinks)
    return Runtime(settings, defs, {k: tuple(v) for k, v in sinks.items()})


def configure(**kwargs: Any) -> None:
    """Configure fxa_metrics once at start-up. Raises loudly on anything wrong.

    Raises :class:`ConfigurationError` for bad settings and
    :class:`DefinitionsError` for bad metrics.yaml/pings.yaml.
    """
    settings = build_settings(**kwargs)
    prev = swap(build_runtime(settings))
    if prev is not None:
        # Reconfiguring replaces the runtime whole: the old sinks (an owned
        # Sentry client, a statsd socket) are flushed and closed, not leaked.
        prev.close(2.0)


def swap(rt: Runtime | None) -> Runtime | None:
    """Install ``rt`` (or none) and return the previous runtime, unclosed."""
    global _runtime
    with _lock:
        prev, _runtime = _runtime, rt
    return prev


def get_runtime() -> Runtime | None:
    return _runtime


def is_configured() -> bool:
    return _runtime is not None


def reset(timeout: float | None = 2.0) -> None:
    """Flush and close every sink and return to the unconfigured state (record() is a no-op)."""
    prev = swap(None)
    if prev is not None:
        prev.close(timeout)


def flush(timeout: float | None = 2.0) -> None:
    """Push out whatever sinks buffer, waiting at most ``timeout`` seconds per sink."""
    rt = _runtime
    if rt is None:
        return
    for sinks in rt.sinks.values():
        for sink in sinks:
            try:
                sink.flush(timeout)
            except Exception as e:
                rt.stats.keep(e)


def stats() -> StatsSnapshot:
    """Counters of dropped records per reason (and per metric) since configure()."""
    rt = _runtime
    return (rt.stats if rt is not None else _orphan_stats).snapshot()
