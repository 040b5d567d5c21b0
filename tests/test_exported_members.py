"""The public API is curated in one ``__all__``: an accidental export fails here (as httpx does)."""

from __future__ import annotations

import fxa_metrics

EXPECTED = [
    # the facade and its configuration
    "configure", "record", "reset", "flush", "stats", "is_configured", "ROUTES",
    # records
    "Event", "Metrics", "DeletionRequest", "Log", "Timing", "Counter", "Gauge", "Set", "Crash",
    "Transaction",
    "GleanMetric",  # the glean-sdk route (issue 13)
    # the routing table
    "Route", "Feed", "Policy",
    # request context and consent
    "bind", "current_context", "RequestContext", "uid_sha256", "with_context", "Thread",
    "resolve_consent", "resolve_consent_sync", "set_opt_out", "invalidate_consent",
    "ConsentLookup",
    # statsd and request instrumentation
    "timer", "statsd_batch", "instrument", "route_template",
    "WSGIMiddleware", "ASGIMiddleware", "DjangoMiddleware", "RouteMatcher",
    # server health (dockerflow)
    "heartbeat", "register_check", "unregister_check", "CheckMessage", "HealthResponse",
    "start_process_gauges", "ProcessGauges",
    # definitions
    "load_definitions", "check_definitions", "Definitions", "MetricDef", "PingDef", "Problem",
    # extension points
    "Sink", "SinkDrop", "GleanPing", "StatsdLine", "StatsdSink", "MozLogFormatter", "MozLogHandler",
    "SentryScrubber", "StatsSnapshot",
    # errors
    "FxaMetricsError", "ConfigurationError", "DefinitionsError", "RecordError",
    "UndefinedMetricError", "InvalidExtraError", "InvalidValueError", "ValueTooLongError",
    "ExpiredMetricError", "DisabledMetricError", "UndeclaredPingError", "InvalidRecordError",
    "PiiRejectedError",
    # front-end performance beacons (issue 15)
    "BeaconEndpoint", "PageLoad", "BeaconError",
    "__version__",
]  # fmt: skip


def test_all_is_exactly_the_curated_api() -> None:
    assert sorted(fxa_metrics.__all__) == sorted(EXPECTED)
    assert len(set(fxa_metrics.__all__)) == len(fxa_metrics.__all__)


def test_every_exported_name_exists_and_nothing_private_leaks() -> None:
    for name in fxa_metrics.__all__:
        assert hasattr(fxa_metrics, name), name
    # ("@py_builtins" etc.: pytest rewrites an entry-point plugin's whole package.)
    public = {n for n in vars(fxa_metrics) if not n.startswith(("_", "@"))}
    # Submodules are reachable as attributes; everything else public is in __all__.
    modules = {"cli", "testing", "pytest_plugin", "flask", "fastapi", "django"}
    assert public - modules - set(fxa_metrics.__all__) == set()


def test_every_error_derives_from_the_one_base() -> None:
    errors = [getattr(fxa_metrics, n) for n in EXPECTED if n.endswith("Error")]
    assert all(issubclass(e, fxa_metrics.FxaMetricsError) for e in errors)


def test_import_is_light_and_the_rest_loads_on_first_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fxa_metrics as fm; "
        "heavy = ['statsd', 'sentry_sdk', 'glean_parser', 'asyncio', 'flask', 'django', "
        "'starlette', 'fxa_metrics._route_table', 'fxa_metrics._beacon']; "
        "print([m for m in heavy if m in sys.modules]); "
        "fm.StatsdSink; fm.ROUTES; print('fxa_metrics._statsd' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["[]", "True"]
