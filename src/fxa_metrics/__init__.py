"""fxa_metrics: one ``record()`` for Mozilla accounts backends.

Glean server events and metrics, MozLog lines, statsd and Sentry, each checked
against the Glean definitions and the user's consent before it is emitted.

>>> import fxa_metrics as fm
>>> fm.record("login.complete")  # before configure(): a safe no-op
>>> fm.is_configured()
False

Importing is cheap on purpose (every process and every test pays it): only the
facade, the records, the request context and the errors are imported here.
The rest of the public API (the routes and their sinks, middleware, framework
integrations, health, beacons) is imported on first use, through the module's
``__getattr__``; ``configure()`` imports the routes it builds.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .__about__ import __version__
from ._config import ConsentLookup
from ._context import RequestContext, Thread, bind, uid_sha256, with_context
from ._context import current as current_context
from ._errors import (
    ConfigurationError,
    DefinitionsError,
    DisabledMetricError,
    ExpiredMetricError,
    FxaMetricsError,
    InvalidExtraError,
    InvalidRecordError,
    InvalidValueError,
    PiiRejectedError,
    Problem,
    RecordError,
    UndeclaredPingError,
    UndefinedMetricError,
    ValueTooLongError,
)
from ._facade import configure, flush, is_configured, record, reset, stats
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
from ._sink import Sink, SinkDrop
from ._stats import StatsSnapshot

if _TYPE_CHECKING:  # what __getattr__ imports on first use, for type checkers
    from ._beacon import BeaconError, PageLoad
    from ._beacon_web import BeaconEndpoint
    from ._consent import (
        Policy,
        invalidate_consent,
        resolve_consent,
        resolve_consent_sync,
        set_opt_out,
    )
    from ._definitions import Definitions, MetricDef, PingDef
    from ._definitions import check as check_definitions
    from ._definitions import load as load_definitions
    from ._glean import GleanPing
    from ._health import (
        CheckMessage,
        HealthResponse,
        ProcessGauges,
        heartbeat,
        register_check,
        start_process_gauges,
        unregister_check,
    )
    from ._middleware import (
        ASGIMiddleware,
        DjangoMiddleware,
        RouteMatcher,
        WSGIMiddleware,
        instrument,
        route_template,
    )
    from ._mozlog import MozLogFormatter, MozLogHandler
    from ._route_table import ROUTES, Feed, Route
    from ._sentry import SentryScrubber
    from ._statsd import StatsdLine, StatsdSink, statsd_batch
    from ._timer import timer

# Public name -> (private module, attribute), imported on first access.
_LAZY: dict[str, tuple[str, str]] = {
    "BeaconError": ("_beacon", "BeaconError"),
    "PageLoad": ("_beacon", "PageLoad"),
    "BeaconEndpoint": ("_beacon_web", "BeaconEndpoint"),
    "Policy": ("_consent", "Policy"),
    "invalidate_consent": ("_consent", "invalidate_consent"),
    "resolve_consent": ("_consent", "resolve_consent"),
    "resolve_consent_sync": ("_consent", "resolve_consent_sync"),
    "set_opt_out": ("_consent", "set_opt_out"),
    "Definitions": ("_definitions", "Definitions"),
    "MetricDef": ("_definitions", "MetricDef"),
    "PingDef": ("_definitions", "PingDef"),
    "check_definitions": ("_definitions", "check"),
    "load_definitions": ("_definitions", "load"),
    "GleanPing": ("_glean", "GleanPing"),
    "CheckMessage": ("_health", "CheckMessage"),
    "HealthResponse": ("_health", "HealthResponse"),
    "ProcessGauges": ("_health", "ProcessGauges"),
    "heartbeat": ("_health", "heartbeat"),
    "register_check": ("_health", "register_check"),
    "start_process_gauges": ("_health", "start_process_gauges"),
    "unregister_check": ("_health", "unregister_check"),
    "ASGIMiddleware": ("_middleware", "ASGIMiddleware"),
    "DjangoMiddleware": ("_middleware", "DjangoMiddleware"),
    "RouteMatcher": ("_middleware", "RouteMatcher"),
    "WSGIMiddleware": ("_middleware", "WSGIMiddleware"),
    "instrument": ("_middleware", "instrument"),
    "route_template": ("_middleware", "route_template"),
    "MozLogFormatter": ("_mozlog", "MozLogFormatter"),
    "MozLogHandler": ("_mozlog", "MozLogHandler"),
    "ROUTES": ("_route_table", "ROUTES"),
    "Feed": ("_route_table", "Feed"),
    "Route": ("_route_table", "Route"),
    "SentryScrubber": ("_sentry", "SentryScrubber"),
    "StatsdLine": ("_statsd", "StatsdLine"),
    "StatsdSink": ("_statsd", "StatsdSink"),
    "statsd_batch": ("_statsd", "statsd_batch"),
    "timer": ("_timer", "timer"),
}


def __getattr__(name: str) -> _Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'fxa_metrics' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{where[0]}", __name__), where[1])
    globals()[name] = value  # later accesses are plain attribute lookups
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ROUTES",
    "ASGIMiddleware",
    "BeaconEndpoint",
    "BeaconError",
    "CheckMessage",
    "ConfigurationError",
    "ConsentLookup",
    "Counter",
    "Crash",
    "Definitions",
    "DefinitionsError",
    "DeletionRequest",
    "DisabledMetricError",
    "DjangoMiddleware",
    "Event",
    "ExpiredMetricError",
    "Feed",
    "FxaMetricsError",
    "Gauge",
    "GleanMetric",
    "GleanPing",
    "HealthResponse",
    "InvalidExtraError",
    "InvalidRecordError",
    "InvalidValueError",
    "Log",
    "MetricDef",
    "Metrics",
    "MozLogFormatter",
    "MozLogHandler",
    "PageLoad",
    "PiiRejectedError",
    "PingDef",
    "Policy",
    "Problem",
    "ProcessGauges",
    "RecordError",
    "RequestContext",
    "Route",
    "RouteMatcher",
    "SentryScrubber",
    "Set",
    "Sink",
    "SinkDrop",
    "StatsSnapshot",
    "StatsdLine",
    "StatsdSink",
    "Thread",
    "Timing",
    "Transaction",
    "UndeclaredPingError",
    "UndefinedMetricError",
    "ValueTooLongError",
    "WSGIMiddleware",
    "__version__",
    "bind",
    "check_definitions",
    "configure",
    "current_context",
    "flush",
    "heartbeat",
    "instrument",
    "invalidate_consent",
    "is_configured",
    "load_definitions",
    "record",
    "register_check",
    "reset",
    "resolve_consent",
    "resolve_consent_sync",
    "route_template",
    "set_opt_out",
    "start_process_gauges",
    "stats",
    "statsd_batch",
    "timer",
    "uid_sha256",
    "unregister_check",
    "with_context",
]
