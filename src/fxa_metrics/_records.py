"""Immutable records: what a caller hands to :func:`fxa_metrics.record`.

Every record is a frozen attrs class, and every mapping it holds is copied into
a read-only view at construction, so no sink can change what another sink (or
the caller) sees. The facade routes on the record's *class*; see
``_facade.ROUTES``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # Copy, then wrap: the caller may keep mutating its own dict after record().
    if not value:
        return _EMPTY
    return MappingProxyType(dict(value))


# ---------------------------------------------------------------- Glean records


@attrs.frozen(slots=True, eq=True, hash=False)
class Event:
    """A Glean event defined in metrics.yaml.

    ``Event("login.complete", {"reason": "password"})``

    ``metrics`` optionally sets other (non-event) metrics of the same ping for
    this submission, overriding what the request context would fill in.
    ``ping`` picks the ping when the event is sent in more than one.
    ``skip_client_ip`` leaves the client IP out of this submission (FxA's
    ``skip_client_ip``).
    """

    name: str
    extra: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    metrics: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    ping: str | None = None
    skip_client_ip: bool = False


@attrs.frozen(slots=True, eq=True, hash=False)
class Metrics:
    """Submit a ping carrying metric values and no event (e.g. a custom ping's string metrics)."""

    values: Mapping[str, Any] = attrs.field(converter=_frozen_map)
    ping: str | None = None
    skip_client_ip: bool = False


@attrs.frozen(slots=True, eq=True, hash=False)
class DeletionRequest:
    """A ``server-deletion-request`` ping: asks the pipeline to delete a user's data.

    It carries only the uid metrics, and consent never gates it: an opted-out
    user must still be deletable. ``uid`` defaults to the request context's.
    """

    uid: str | None = None


# ------------------------------------------------------------------ MozLog


@attrs.frozen(slots=True, eq=True, hash=False)
class Log:
    """One MozLog line: ``Type`` is ``type``, ``Fields`` is ``fields``.

    ``level`` is a stdlib logging level (mapped to syslog ``Severity``).
    """

    type: str
    fields: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    level: int = logging.INFO
    message: str | None = None


# ------------------------------------------------------------------ statsd
#
# Tags are encoded InfluxDB/Telegraf style in the name (``name,key=value:1|c``),
# keys sorted. ``rate`` is the sample rate; None takes ``configure(statsd_sample_rate=)``.
# Names and tag values that look like user identity (email, IP, 32+ hex token)
# are refused: statsd is aggregate by construction (see ``_statsd``).


@attrs.frozen(slots=True, eq=True, hash=False)
class Timing:
    """A statsd timing in milliseconds: ``Timing("url_request", 12.5, tags={"method": "POST"})``."""

    name: str
    ms: float
    tags: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    rate: float | None = None


@attrs.frozen(slots=True, eq=True, hash=False)
class Counter:
    """A statsd counter increment (``value`` may be negative for a decrement)."""

    name: str
    value: int = 1
    tags: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    rate: float | None = None


@attrs.frozen(slots=True, eq=True, hash=False)
class Gauge:
    """A statsd gauge; ``delta=True`` sends a relative change (``+3``/``-3``)."""

    name: str
    value: float
    tags: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    rate: float | None = None
    delta: bool = False


@attrs.frozen(slots=True, eq=True, hash=False)
class Set:
    """A statsd set: counts unique ``value``s per flush (``name:value|s``).

    The value obeys the tag-value rules, so a set of uids or emails is refused.
    """

    name: str
    value: str
    tags: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    rate: float | None = None


# ------------------------------------------------------------------ Sentry


@attrs.frozen(slots=True, eq=True, hash=False)
class Crash:
    """An exception for Sentry. ``tags``/``extra`` are scrubbed like everything else.

    ``event_id`` (32 lowercase hex digits, e.g. ``uuid.uuid4().hex``) fixes the
    Sentry event id in advance, so a caller can show or log it (``fxa-metrics
    record --crash`` prints it); by default Sentry picks one.
    """

    exc: BaseException
    tags: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    extra: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    event_id: str | None = None


# ------------------------------------------------------------------ Sentry Performance


@attrs.frozen(slots=True, eq=True, hash=False)
class Transaction:
    """A Sentry Performance transaction: ``name`` took ``duration_ms``.

    ``spans`` are ``(op, start_ms, end_ms)`` offsets from the transaction's
    start (for example the navigation phases of a page load). Sent only when
    ``sentry_traces_sample_rate`` is above 0, sampled at that rate, never with
    user context. A :class:`Timing` reaches this route too, through the
    statsd route's explicit feed (see ``_route_table``).
    """

    name: str
    duration_ms: float
    tags: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_map)
    spans: tuple[tuple[str, float, float], ...] = attrs.field(default=(), converter=tuple)
    op: str = "fxa.timing"
