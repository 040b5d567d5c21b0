"""The one entry point, ``record()``, and ``configure()``/``reset()``/``flush()``/``stats()``.

The flow of one record (the routes are declared in ``_route_table``)::

    record(x) ─► route = table[type(x)] ─► route.check (definitions)
             ─► consent: the route's policy ─► every sink of the route, each
                wrapped on its own ─► the route's explicit feeds

In strict mode a failed check raises a precise :class:`RecordError`; in
production it is dropped, counted per reason and logged once. A sink that
raises is contained and counted (``sink_error``, or the reason a
:class:`SinkDrop` names) without stopping the others. Nothing here ever
raises into the host in production, whatever the record, the sinks or the
host's own logging handlers do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, overload

from . import _consent, _runtime
from ._config import Settings, build_settings
from ._context import RequestContext, current
from ._errors import ConfigurationError, InvalidRecordError, RecordError
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
    Transaction,
)
from ._runtime import Runtime
from ._sink import Sink, SinkDrop
from ._stats import Stats, StatsSnapshot

if TYPE_CHECKING:
    # The route table imports every route (statsd, Sentry, beacons, glean-sdk);
    # configure() imports it, so that `import fxa_metrics` does not.
    from ._beacon import PageLoad  # issue 15: front-end page loads (a record kind)
    from ._route_table import Feed, Route


def __getattr__(name: str) -> Any:
    if name == "ROUTE_NAMES":  # the default sink groups (what configure(sinks=...) takes)
        from ._route_table import build_table

        return build_table().groups
    raise AttributeError(name)


# What the glean-sdk route is given instead of the request's context (issue 13).
_NO_CONTEXT = RequestContext()

# What stats() reports while unconfigured: nothing is recorded, so nothing is dropped.
_orphan_stats = Stats()


def _metric_of(what: Any) -> str:
    """A name for a record in counters and warnings; never raises, whatever ``what`` is."""
    try:
        if isinstance(what, str):
            return str.__str__(what)
        name = getattr(what, "name", None) or getattr(what, "type", None)
        if isinstance(name, str):
            return str.__str__(name)
        return type(what).__name__
    except BaseException:  # a hostile object: its name is not worth a failed request
        return "?"


def _count(rt: Runtime, reason: str, metric: str, detail: str) -> None:
    # Counting logs once; a host logging handler that raises must not turn a
    # counted drop into an exception in the request.
    with contextlib.suppress(BaseException):
        rt.stats.drop(reason, metric, detail)


def _keep(rt: Runtime, e: BaseException) -> None:
    with contextlib.suppress(BaseException):
        rt.stats.keep(e)


# Everything record() accepts as a record object.
if TYPE_CHECKING:  # PageLoad's module is imported only when beacons are used
    Record = (
        Event
        | Metrics
        | DeletionRequest
        | Log
        | Timing
        | Counter
        | Gauge
        | Set
        | Crash
        | Transaction
        | PageLoad
        | GleanMetric
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
    """Record one thing; where it goes follows from what it is (see ``fxa_metrics.ROUTES``).

    ``record("login.complete", extra={"reason": "password"})`` is shorthand for
    ``record(Event("login.complete", extra={"reason": "password"}))``.

    Never raises in production mode. In strict mode raises a
    :class:`RecordError` subclass naming the metric and the field.
    """
    rt = _runtime.current()
    if rt is None:
        return  # before configure(): a no-op, by design
    try:
        # --- glean-sdk route (issue 13): a metric name whose TYPE is a glean-sdk type
        # is checked here and sent on that route, never with the request context.
        # (None when the definitions have no glean-sdk metric: nothing to check.)
        hook = rt.name_hook
        sample = hook(rt.defs, what, extra, kwargs) if hook is not None else None
        if sample is not None:
            _send(rt, rt.table.by_name["glean_sdk"], sample, _NO_CONTEXT)
            return
        rec = (
            _build(what, extra, kwargs)
            if isinstance(what, str)
            else _as_record(what, extra, kwargs)
        )
        route = rt.table.by_kind.get(type(rec))
        if route is None:
            raise InvalidRecordError(
                _metric_of(rec), None, f"{type(rec).__name__} is not an fxa_metrics record"
            )
        _dispatch(rt, route, rec, current())
    except RecordError as e:
        _count(rt, e.reason, e.metric, str(e))
        if rt.strict:
            rt.stats.keep_record_error(e)  # for the pytest plugin: a framework may swallow it
            raise
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        # Our own bug (or a hostile object). Contained in production, kept for
        # the pytest tripwire, which re-raises it at the test's teardown.
        _count(rt, "internal_error", _metric_of(what), type(e).__name__)
        _keep(rt, e)
        if rt.strict:
            raise


def _build(name: str, extra: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Any:
    try:
        return Event(name, extra=extra, **kwargs)
    except (TypeError, ValueError) as e:
        # Bad argument shapes (unknown keyword, metrics="0"): precise, never a crash.
        raise InvalidRecordError(_metric_of(name), None, str(e)) from e


def _as_record(what: Any, extra: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Any:
    if extra is not None or kwargs:
        raise InvalidRecordError(
            _metric_of(what), None, "extra=/keywords go with a metric name, not a record object"
        )
    return what


def _dispatch(rt: Runtime, route: Route, rec: Any, ctx: RequestContext) -> None:
    prepared = route.check(rt, rec, ctx)
    if prepared is None:
        return  # nothing to send (not sampled, say): not a drop
    _send(rt, route, prepared, ctx)


def _send(rt: Runtime, route: Route, prepared: Any, ctx: RequestContext) -> None:
    """A checked record: consent under the route's policy, then its sinks and feeds."""
    sinks = rt.sinks.get(route.group, ())
    if not sinks and not route.feeds:
        return  # nowhere to go: no consent lookup for nothing
    prepared = _consent.apply(route.policy, prepared, ctx, rt)
    if prepared is None:
        return  # withheld; the policy counted it
    for sink in sinks:
        _emit(rt, route, sink, prepared)
    for feed in route.feeds:
        target = rt.table.by_name[feed.route]
        if rt.sinks.get(target.group):
            _feed(rt, target, feed, prepared, ctx)


def _feed(rt: Runtime, target: Route, feed: Feed, prepared: Any, ctx: RequestContext) -> None:
    # The caller's record was valid for its own route and has been sent: what a
    # feed makes of it is counted if the target refuses it, never raised, even
    # in strict mode (a 2-day Timing is a fine statsd timing, not a transaction).
    try:
        fed = feed.convert(prepared)
        if fed is not None:
            _dispatch(rt, target, fed, ctx)
    except RecordError as e:
        _count(rt, e.reason, f"{target.name}:{e.metric}", str(e))


def _emit(rt: Runtime, route: Route, sink: Sink, prepared: Any) -> None:
    try:
        sink.emit(prepared)
    except SinkDrop as e:  # a countable fault outside us: a full disk, a pipe nobody reads
        _count(rt, e.reason, f"{route.group}:{type(sink).__name__}", e.detail)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # a sink is a host callback too: its failure is counted
        _count(rt, "sink_error", f"{route.group}:{type(sink).__name__}", type(e).__name__)
        _keep(rt, e)


def build_runtime(settings: Settings) -> Runtime:
    """Everything configure() builds, not yet installed (tests and captures use it too)."""
    from . import _glean_sdk
    from ._defs_cache import load_cached
    from ._route_table import build_sinks, build_table

    table = build_table(settings.routes)
    unknown = set(settings.sinks) - set(table.groups)
    if unknown:
        raise ConfigurationError(
            f"configure(sinks=...): unknown route(s) {sorted(unknown)}; "
            f"sink groups are {table.groups}"
        )
    defs = load_cached(settings.metrics_yaml, settings.pings_yaml, settings.app_version)
    sinks = build_sinks(table, settings)
    for name, extra_sinks in settings.sinks.items():
        sinks[name] = (*sinks.get(name, ()), *extra_sinks)
    rt = Runtime(settings, defs, sinks, table)
    # --- glean-sdk route (issue 13): its sink counts losses it sees later, on its own
    # threads (queue full, uploads), on the runtime's stats.
    for sink in sinks.get("glean_sdk", ()):
        if isinstance(sink, _glean_sdk.GleanSdkSink):
            sink.attach(rt.stats)
    return wire_name_routes(rt)


def wire_name_routes(rt: Runtime) -> Runtime:
    """Let record("cat.name", ...) reach the route a metric's type picks (glean-sdk)."""
    if any(md.route == "glean_sdk" for md in rt.defs.metrics.values()):
        from . import _glean_sdk

        rt.name_hook = _glean_sdk.from_call
    return rt


def configure(**kwargs: Any) -> None:
    """Configure fxa_metrics once at start-up. Raises loudly on anything wrong.

    Raises :class:`ConfigurationError` for bad settings and
    :class:`DefinitionsError` for bad metrics.yaml/pings.yaml.
    """
    settings = build_settings(**kwargs)
    # --- test-capture hook (fxa_metrics.testing): while a capture is active it
    # adopts the settings and keeps its in-memory sinks; nothing is built here.
    if _configure_hook is not None:
        _configure_hook(settings)
        return
    # --- end of hook
    prev = _runtime.swap(build_runtime(settings))
    if prev is not None:
        # Reconfiguring replaces the runtime whole: the old sinks (an owned
        # Sentry client, a statsd socket) are flushed and closed, not leaked.
        prev.close(2.0)


# Installed by an active fxa_metrics.testing.capture(); see configure().
_configure_hook: Callable[[Settings], None] | None = None


def set_configure_hook(
    hook: Callable[[Settings], None] | None,
) -> Callable[[Settings], None] | None:
    """Install ``hook`` as configure()'s interceptor (or none); return the previous one."""
    global _configure_hook
    prev, _configure_hook = _configure_hook, hook
    return prev


def swap(rt: Runtime | None) -> Runtime | None:
    """Install ``rt`` (or none) and return the previous runtime, unclosed."""
    return _runtime.swap(rt)


def get_runtime() -> Runtime | None:
    return _runtime.current()


def is_configured() -> bool:
    return _runtime.current() is not None


# issue 11: threads started after configure() (health's process gauges) end with reset() too.
RESET_HOOKS: list[Callable[[], None]] = []


def reset(timeout: float | None = 2.0) -> None:
    """Flush and close every sink and return to the unconfigured state (record() is a no-op)."""
    prev = _runtime.swap(None)
    for hook in list(RESET_HOOKS):
        hook()
    if prev is not None:
        prev.close(timeout)


def flush(timeout: float | None = 2.0) -> None:
    """Push out whatever sinks buffer, waiting at most ``timeout`` seconds per sink."""
    rt = _runtime.current()
    if rt is not None:
        rt.flush(timeout)


def stats() -> StatsSnapshot:
    """Counters of dropped records per reason (and per metric) since configure()."""
    rt = _runtime.current()
    return (rt.stats if rt is not None else _orphan_stats).snapshot()
