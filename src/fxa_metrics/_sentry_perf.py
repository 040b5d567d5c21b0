"""Sentry Performance for page loads: a checked :class:`PageLoad` becomes one transaction.

The transaction is named after the page (an allow-listed name or a route
template, never a URL), has one span per navigation phase (the phases the
Sentry browser SDK reports: redirect, DNS, connect, TLS, request, response,
DOM processing, the two document events), and carries the Web Vitals as
measurements. It is sent through the Sentry sink's own client and scopes, so
the sink's scrubber sees it like any event. It is aggregate by design: no
user, whatever the request context says (consent: the aggregate policy).

Only when Sentry Performance is on (``sentry_traces_sample_rate > 0``), sampled
at that rate before anything is built.

Browser clocks are not trusted: the transaction ends when the beacon arrived,
and every offset inside it is the beacon's own (checked, monotonic) marks.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ._beacon import PageLoad, check_page_load
from ._context import RequestContext
from ._runtime import Runtime

# The sink group this route writes to (the Sentry Performance sinks: only there
# when tracing is on).
GROUP = "sentry_performance"
OP = "pageload"

# (span description, start mark, end mark). A phase whose end mark is 0 did
# not happen (no redirect, no TLS) or was not reached (page left early).
PHASES = (
    ("redirect", "redirectStart", "redirectEnd"),
    ("domainLookup", "domainLookupStart", "domainLookupEnd"),
    ("connect", "connectStart", "connectEnd"),
    ("TLS/SSL", "secureConnectionStart", "connectEnd"),
    ("request", "requestStart", "responseStart"),
    ("response", "responseStart", "responseEnd"),
    ("domProcessing", "responseEnd", "domInteractive"),
    ("domContentLoadedEvent", "domContentLoadedEventStart", "domContentLoadedEventEnd"),
    ("loadEvent", "loadEventStart", "loadEventEnd"),
)
# Web Vitals and paint timings as Sentry measurements (Sentry's own names).
MEASUREMENTS = (
    ("ttfb", "vitals", "ttfb", "millisecond"),
    ("fp", "paint", "first-paint", "millisecond"),
    ("fcp", "vitals", "fcp", "millisecond"),
    ("lcp", "vitals", "lcp", "millisecond"),
    ("inp", "vitals", "inp", "millisecond"),
    ("cls", "vitals", "cls", ""),
)


@attrs.frozen(slots=True)
class PreparedPageLoad:
    """A sampled page load and when its beacon arrived (what the Sentry sink gets)."""

    load: PageLoad
    received: datetime
    trace_id: str
    span_id: str


def _span_id() -> str:
    # Random ids, not secrets (as the SDK's own).
    return f"{random.getrandbits(64):016x}"


def prepare(rt: Runtime, rec: PageLoad, ctx: RequestContext) -> PreparedPageLoad | None:
    """Check a ``PageLoad``; sample it for Sentry Performance (None: not sent, not a drop).

    A host may build a ``PageLoad`` by hand, so it is checked like a beacon:
    always in strict mode (a bad call site fails in development even with
    Sentry off), and in production only when it is about to be sent (a
    beacon's was checked already; checking it twice would double the cost of
    every beacon for nothing). ``ctx`` is not read: a page load carries no
    user, whoever the request is.
    """
    if rt.strict:
        check_page_load(rec)
    if not rt.sinks.get(GROUP):
        return None
    rate = rt.settings.sentry_traces_sample_rate
    if rate <= 0.0 or random.random() >= rate:
        return None
    if not rt.strict:
        check_page_load(rec)
    return PreparedPageLoad(rec, datetime.now(UTC), uuid.uuid4().hex, _span_id())


def _end_ms(load: PageLoad) -> float:
    # The last thing the beacon saw: the transaction spans all of it.
    return max([*load.nav.values(), *load.paint.values(), load.vitals.get("lcp", 0.0)])


def _spans(p: PreparedPageLoad, start: datetime) -> list[dict[str, Any]]:
    nav = p.load.nav
    spans = []
    for description, begin, end in PHASES:
        if not nav[end] or (begin == "secureConnectionStart" and not nav[begin]):
            continue
        spans.append(
            {
                "trace_id": p.trace_id,
                "parent_span_id": p.span_id,
                "span_id": _span_id(),
                "op": f"browser.{description}",
                "description": description,
                "start_timestamp": start + timedelta(milliseconds=nav[begin]),
                "timestamp": start + timedelta(milliseconds=nav[end]),
                "origin": "auto.fxa_metrics.beacon",
            }
        )
    return spans


def transaction_event(p: PreparedPageLoad) -> dict[str, Any]:
    """The Sentry transaction event for one page load (a fresh dict per call)."""
    load = p.load
    start = p.received - timedelta(milliseconds=_end_ms(load))
    measurements = {
        name: {"value": value, "unit": unit}
        for name, part, key, unit in MEASUREMENTS
        if (value := getattr(load, part).get(key)) is not None
    }
    event: dict[str, Any] = {
        "type": "transaction",
        "transaction": load.page,
        "transaction_info": {"source": "route" if load.page.startswith("/") else "custom"},
        "start_timestamp": start,
        "timestamp": p.received,
        "contexts": {
            "trace": {"trace_id": p.trace_id, "span_id": p.span_id, "op": OP, "status": "ok"}
        },
        "tags": dict(load.tags),
        "spans": _spans(p, start),
    }
    if measurements:
        event["measurements"] = measurements
    return event
