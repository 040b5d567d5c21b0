"""fxa_metrics: one ``record()`` for Mozilla accounts backends.

Glean server events and metrics, MozLog lines, statsd and Sentry, each checked
against the Glean definitions and the user's consent before it is emitted.

>>> import fxa_metrics as fm
>>> fm.record("login.complete")  # before configure(): a safe no-op
>>> fm.is_configured()
False
"""

from .__about__ import __version__
from ._beacon import BeaconError, PageLoad
from ._beacon_web import BeaconEndpoint
from ._config import ConsentLookup
from ._consent import (
    Policy,
    invalidate_consent,
    resolve_consent,
    resolve_consent_sync,
    set_opt_out,
)
from ._context import RequestContext, bind, uid_sha256
from ._context import current as current_context
from ._definitions import Definitions, MetricDef, PingDef
from ._definitions import check as check_definitions
from ._definitions import load as load_definitions
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
from ._glean import GleanPing
from ._middleware import (
    ASGIMiddleware,
    DjangoMiddleware,
    WSGIMiddleware,
    instrument,
    route_template,
)
from ._mozlog import MozLogFormatter, MozLogHandler
from ._records import (
    Counter,
    Crash,
    DeletionRequest,
    Event,
    Gauge,
    Log,
    Metrics,
    Set,
    Timing,
    Transaction,
)
from ._route_table import ROUTES, Feed, Route
from ._sentry import SentryScrubber
from ._sink import Sink, SinkDrop
from ._stats import StatsSnapshot
from ._statsd import StatsdLine, StatsdSink, statsd_batch
from ._timer import timer

__all__ = [
    "ROUTES",
    "ASGIMiddleware",
    "BeaconEndpoint",
    "BeaconError",
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
    "GleanPing",
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
    "RecordError",
    "RequestContext",
    "Route",
    "SentryScrubber",
    "Set",
    "Sink",
    "SinkDrop",
    "StatsSnapshot",
    "StatsdLine",
    "StatsdSink",
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
    "instrument",
    "invalidate_consent",
    "is_configured",
    "load_definitions",
    "record",
    "reset",
    "resolve_consent",
    "resolve_consent_sync",
    "route_template",
    "set_opt_out",
    "stats",
    "statsd_batch",
    "timer",
    "uid_sha256",
]
