"""Glean server route: definition checks, then the ``glean-server-event`` MozLog line.

Two halves, kept apart so each can be tested alone:

* ``prepare_*`` turn a caller's record into a :class:`GleanPing` (checked
  against the compiled definitions, context filled in). They raise
  :class:`~fxa_metrics.RecordError` subclasses; the facade decides whether
  that raises (strict) or drops and counts (production).
* :class:`GleanEncoder` turns a ``GleanPing`` into the exact line the pipeline
  ingests, and :class:`GleanServerSink` writes it.

Payloads match what glean_parser's ``python_server`` output produces for the
same definitions and values (tests/test_upstream_parity.py proves it), except
that an extra that was not given is left out instead of sent as ``"None"``.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, NamedTuple

import attrs
import orjson

from . import __about__
from ._config import Settings
from ._context import RequestContext
from ._definitions import (
    DELETION_PING,
    MAX_EXTRA_BYTES,
    MAX_STRING_BYTES,
    MAX_STRING_LIST_ITEM_BYTES,
    MAX_STRING_LIST_ITEMS,
    Definitions,
    MetricDef,
    PingDef,
)
from ._errors import (
    DisabledMetricError,
    ExpiredMetricError,
    InvalidExtraError,
    InvalidRecordError,
    InvalidValueError,
    UndeclaredPingError,
    UndefinedMetricError,
)
from ._frozen import EMPTY, FrozenDict, freeze
from ._output import DEFAULT_WRITE_TIMEOUT, LineWriter
from ._records import DeletionRequest, Event, Metrics
from ._sink import Sink

GLEAN_EVENT_MOZLOG_TYPE = "glean-server-event"

# Called when a value had to be truncated: (metric, field, limit). Production
# counts it and keeps the truncated value, as Glean does; strict mode raises.
OverflowHook = Callable[[str, str | None, int], None]


class GleanPing(NamedTuple):
    """One prepared server-side ping submission: exactly what goes into the payload.

    A NamedTuple rather than an attrs class: immutable all the same, built once
    per event on the hot path, at under half the cost of a frozen attrs instance.
    Its mappings are :class:`~fxa_metrics._frozen.FrozenDict` all the way down,
    so no sink can change what another sink writes.
    """

    ping: str
    metrics: Mapping[str, Mapping[str, Any]]  # type -> identifier -> value
    events: tuple[Mapping[str, Any], ...]
    user_agent: str
    ip_address: str
    # False only for server-deletion-request (its own route and consent policy).
    product: bool = True


# ------------------------------------------------------------------ checks


def _truncate(value: str, limit: int) -> str | None:
    """The value cut to ``limit`` UTF-8 bytes on a character boundary, or None if it fits."""
    # Fast path: 4 bytes is the longest UTF-8 character, so short strings fit.
    if len(value) * 4 <= limit:
        return None
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return None
    return raw[:limit].decode("utf-8", "ignore")


def _is_text(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8 JSON (no lone surrogates).

    A lone surrogate (e.g. from ``surrogateescape``-decoded input) makes the
    encoder fail at write time, after every check has passed; catch it here,
    named. ASCII, the common case, is one fast C call.
    """
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NOT_TEXT = "is not valid Unicode text (it contains a lone surrogate)"


def _check_live(md: MetricDef) -> None:
    if md.disabled:
        raise DisabledMetricError(
            md.identifier, None, "is disabled (disabled: true) in metrics.yaml"
        )
    if md.expired:
        raise ExpiredMetricError(md.identifier, None, f"expired ({md.expires}); it is not sent")


def _pick_ping(defs: Definitions, md: MetricDef, ping: str | None) -> PingDef:
    if ping is None:
        if len(md.pings) != 1:
            raise UndeclaredPingError(
                md.identifier,
                "ping",
                f"is sent in several pings ({', '.join(md.pings)}); pass ping= to choose one",
            )
        ping = md.pings[0]
    elif ping not in md.pings:
        raise UndeclaredPingError(
            md.identifier, "ping", f"is not sent in ping '{ping}' (send_in_pings: {list(md.pings)})"
        )
    pd = defs.pings.get(ping)
    if pd is None:  # pragma: no cover - load() rejects such definitions
        raise UndeclaredPingError(md.identifier, "ping", f"ping '{ping}' is not declared")
    return pd


def _extra_value(md: MetricDef, key: str, kind: str, value: Any, overflow: OverflowHook) -> str:
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidExtraError(
                md.identifier, key, f"must be a str (extra type string), got {type(value).__name__}"
            )
        if not _is_text(value):
            raise InvalidExtraError(md.identifier, key, _NOT_TEXT)
        cut = _truncate(value, MAX_EXTRA_BYTES)
        if cut is not None:
            overflow(md.identifier, key, MAX_EXTRA_BYTES)
            return cut
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidExtraError(
                md.identifier,
                key,
                f"must be a bool (extra type boolean), got {type(value).__name__}",
            )
        return "true" if value else "false"
    # quantity
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidExtraError(
            md.identifier, key, f"must be an int (extra type quantity), got {type(value).__name__}"
        )
    return str(value)


def _string_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    if not isinstance(value, str):
        raise InvalidValueError(
            md.identifier, "value", f"must be a str, got {type(value).__name__}"
        )
    if not _is_text(value):
        raise InvalidValueError(md.identifier, "value", _NOT_TEXT)
    cut = _truncate(value, MAX_STRING_BYTES)
    if cut is not None:
        overflow(md.identifier, "value", MAX_STRING_BYTES)
        return cut
    return value


def _quantity_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    ident = md.identifier
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidValueError(ident, "value", f"must be an int, got {type(value).__name__}")
    if value < 0 or value > 2**63 - 1:
        raise InvalidValueError(ident, "value", f"must be in 0..2**63-1, got {value}")
    return value


def _boolean_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    if not isinstance(value, bool):
        raise InvalidValueError(
            md.identifier, "value", f"must be a bool, got {type(value).__name__}"
        )
    return value


def _datetime_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    if not isinstance(value, _dt.datetime) or value.tzinfo is None:
        raise InvalidValueError(
            md.identifier, "value", "must be a timezone-aware datetime.datetime"
        )
    # As glean_parser's Go server outputter writes it: UTC, milliseconds, "Z".
    # (isoformat() would change shape with the value: no fraction when the
    # microseconds are 0, the caller's offset otherwise.)
    utc = value.astimezone(_UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _string_list_item(md: MetricDef, item: Any, overflow: OverflowHook) -> str:
    if not isinstance(item, str):
        raise InvalidValueError(
            md.identifier, "value", f"items must be str, got {type(item).__name__}"
        )
    if not _is_text(item):
        raise InvalidValueError(md.identifier, "value", _NOT_TEXT)
    cut = _truncate(item, MAX_STRING_LIST_ITEM_BYTES)
    if cut is not None:
        overflow(md.identifier, "value", MAX_STRING_LIST_ITEM_BYTES)
        return cut
    return item


def _string_list_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidValueError(
            md.identifier, "value", f"must be a list of str, got {type(value).__name__}"
        )
    out = [_string_list_item(md, item, overflow) for item in value]
    if len(out) > MAX_STRING_LIST_ITEMS:
        overflow(md.identifier, "value", MAX_STRING_LIST_ITEMS)
        del out[MAX_STRING_LIST_ITEMS:]
    return tuple(out)


# An object metric cannot be truncated and stay meaningful: past this size it
# is refused, named, rather than sent as a multi-megabyte line.
MAX_OBJECT_BYTES = 64 * 1024


def _object_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    # Any JSON object or array. Round-trip through orjson so what we send is
    # plain JSON (and a non-serialisable value fails here, named).
    ident = md.identifier
    if not isinstance(value, dict | list | tuple):
        raise InvalidValueError(
            ident, "value", f"must be a dict or list, got {type(value).__name__}"
        )
    try:
        raw = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as e:
        raise InvalidValueError(ident, "value", f"is not JSON-serialisable: {e}") from None
    if len(raw) > MAX_OBJECT_BYTES:
        raise InvalidValueError(
            ident, "value", f"is {len(raw)} bytes as JSON, over the {MAX_OBJECT_BYTES} limit"
        )
    return freeze(orjson.loads(raw))


_VALUE_CHECKS: dict[str, Callable[[MetricDef, Any, OverflowHook], Any]] = {
    "string": _string_value,
    "quantity": _quantity_value,
    "boolean": _boolean_value,
    "datetime": _datetime_value,
    "string_list": _string_list_value,
    "object": _object_value,
}


def _metric_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    check = _VALUE_CHECKS.get(md.type)
    if check is None:  # pragma: no cover - load() rejects types this route cannot carry
        raise InvalidValueError(md.identifier, None, f"{md.type} cannot go by the server route")
    return check(md, value, overflow)


def _explicit_values(
    defs: Definitions, pd: PingDef, explicit: Mapping[str, Any], overflow: OverflowHook
) -> dict[str, Any]:
    """The caller's own metric values, checked; None means "leave this metric out"."""
    values: dict[str, Any] = {}
    for ident, value in explicit.items():
        md = defs.metrics.get(ident)
        if md is None:
            raise UndefinedMetricError(ident, None, "is not defined in the loaded metrics.yaml")
        if md.type == "event":
            raise InvalidValueError(ident, None, "is an event; record it with fxa_metrics.Event")
        if pd.name not in md.pings:
            raise UndeclaredPingError(
                ident, "ping", f"is not sent in ping '{pd.name}' (send_in_pings: {list(md.pings)})"
            )
        _check_live(md)
        values[ident] = None if value is None else _metric_value(md, value, overflow)
    return values


def _context_metrics(
    pd: PingDef, ctx: RequestContext, overflow: OverflowHook
) -> tuple[FrozenDict, bool]:
    """The ping's metrics from the request context alone, and whether any value was cut."""
    cut_any = False
    out: dict[str, Any] = {}
    for kind, slots in pd.layout:
        typed: dict[str, Any] = {}
        for ident, attr in slots:
            if attr is None:
                continue
            value = getattr(ctx, attr)
            if value is None:
                continue
            # bind() guarantees str; only a long one needs the byte count.
            if len(value) * 4 > MAX_STRING_BYTES:
                cut = _truncate(value, MAX_STRING_BYTES)
                if cut is not None:
                    overflow(ident, "value", MAX_STRING_BYTES)
                    cut_any = True
                    value = cut
            typed[ident] = value
        out[kind] = FrozenDict(typed) if typed else EMPTY
    return FrozenDict(out), cut_any


# (context, ping, metrics) of the last ping filled from a context alone. A
# request's events share their context, and both it and the FrozenDict are
# immutable, so the next event of the same context reuses the dict instead of
# rebuilding 14 common metrics. One tuple, replaced whole: threads never see a
# torn entry, at worst a miss.
_last_fill: tuple[object, object, FrozenDict] = (None, None, EMPTY)


def _fill_metrics(
    defs: Definitions,
    pd: PingDef,
    explicit: Mapping[str, Any],
    ctx: RequestContext,
    overflow: OverflowHook,
) -> FrozenDict:
    global _last_fill
    if not explicit:
        last_ctx, last_pd, filled = _last_fill
        if last_ctx is ctx and last_pd is pd:
            return filled
        filled, was_cut = _context_metrics(pd, ctx, overflow)
        if not was_cut:  # a cut value is counted per event: never reuse one
            _last_fill = (ctx, pd, filled)
        return filled
    values = _explicit_values(defs, pd, explicit, overflow)
    # One pass over the precompiled layout: definition order, type by type, the
    # same keys in the same order as upstream's generated code (an empty type
    # object is kept, as upstream does). Explicit values win over the context.
    out: dict[str, Any] = {}
    for kind, slots in pd.layout:
        typed: dict[str, Any] = {}
        for ident, attr in slots:
            if ident in values:
                value = values[ident]
            elif attr is not None:
                value = getattr(ctx, attr)
                if value is not None and len(value) * 4 > MAX_STRING_BYTES:
                    cut = _truncate(value, MAX_STRING_BYTES)
                    if cut is not None:
                        overflow(ident, "value", MAX_STRING_BYTES)
                        value = cut
            else:
                continue
            if value is not None:
                typed[ident] = value
        out[kind] = FrozenDict(typed) if typed else EMPTY
    return FrozenDict(out)


# Envelope field caps: a request header is attacker-controlled, and a 10 MB
# user agent must not become a 10 MB line. Cut and counted, like a string metric.
MAX_USER_AGENT = 1024
MAX_IP_ADDRESS = 64


def _client(ctx: RequestContext, skip_ip: bool, overflow: OverflowHook) -> tuple[str, str]:
    ua = ctx.user_agent or ""
    ip = "" if (skip_ip or ctx.skip_client_ip) else (ctx.ip_address or "")
    if len(ua) > MAX_USER_AGENT:
        overflow("user_agent", "user_agent", MAX_USER_AGENT)
        ua = ua[:MAX_USER_AGENT]
    if len(ip) > MAX_IP_ADDRESS:
        overflow("ip_address", "ip_address", MAX_IP_ADDRESS)
        ip = ip[:MAX_IP_ADDRESS]
    return ua, ip


def prepare_event(
    defs: Definitions, rec: Event, ctx: RequestContext, overflow: OverflowHook
) -> GleanPing:
    md = defs.metrics.get(rec.name)
    if md is None:
        raise UndefinedMetricError(rec.name, None, "is not defined in the loaded metrics.yaml")
    if md.type != "event":
        raise InvalidValueError(
            rec.name,
            None,
            f"is a {md.type} metric, not an event; record it with fxa_metrics.Metrics",
        )
    _check_live(md)
    pd = _pick_ping(defs, md, rec.ping)
    event: dict[str, Any] = {"category": md.category, "name": md.name}
    if md.extras:
        extra: dict[str, str] = {}
        for key, value in rec.extra.items():
            kind = md.extras.get(key)
            if kind is None:
                raise InvalidExtraError(
                    md.identifier,
                    key,
                    f"is not a declared extra key (declared: {', '.join(sorted(md.extras))})",
                )
            # An extra that was not given is left out (upstream sends "None").
            if value is not None:
                extra[key] = _extra_value(md, key, kind, value, overflow)
        event["extra"] = FrozenDict(extra)
    elif rec.extra:
        key = next(iter(rec.extra))
        raise InvalidExtraError(
            md.identifier, key, "is not a declared extra key (the event has none)"
        )
    event["timestamp"] = 0
    ua, ip = _client(ctx, rec.skip_client_ip, overflow)
    return GleanPing(
        ping=pd.name,
        metrics=_fill_metrics(defs, pd, rec.metrics, ctx, overflow),
        events=(FrozenDict(event),),
        user_agent=ua,
        ip_address=ip,
    )


def prepare_metrics(
    defs: Definitions, rec: Metrics, ctx: RequestContext, overflow: OverflowHook
) -> GleanPing:
    ping = rec.ping
    if ping is None:
        # The ping follows from send_in_pings: the one ping all values share.
        shared: set[str] | None = None
        for ident in rec.values:
            md = defs.metrics.get(ident)
            if md is None:
                raise UndefinedMetricError(ident, None, "is not defined in the loaded metrics.yaml")
            shared = set(md.pings) if shared is None else shared & set(md.pings)
        if not shared or len(shared) != 1:
            first = next(iter(rec.values), "-")
            raise UndeclaredPingError(
                first,
                "ping",
                f"cannot tell which ping to send (shared: {sorted(shared or ())}); pass ping=",
            )
        ping = shared.pop()
    pd = defs.pings.get(ping)
    if pd is None:
        first = next(iter(rec.values), "-")
        raise UndeclaredPingError(first, "ping", f"ping '{ping}' is not declared in pings.yaml")
    if pd.name == DELETION_PING:
        # The deletion request has its own record, route and consent policy:
        # sent for an opted-out user, with nothing but the uid metrics in it.
        raise InvalidRecordError(
            next(iter(rec.values), DELETION_PING),
            "ping",
            "record a server-deletion-request with fxa_metrics.DeletionRequest, not Metrics",
        )
    ua, ip = _client(ctx, rec.skip_client_ip, overflow)
    return GleanPing(
        ping=pd.name,
        metrics=_fill_metrics(defs, pd, rec.values, ctx, overflow),
        events=(),
        user_agent=ua,
        ip_address=ip,
    )


def prepare_deletion(
    defs: Definitions, rec: DeletionRequest, ctx: RequestContext, overflow: OverflowHook
) -> GleanPing:
    from ._context import uid_sha256

    uid = rec.uid if rec.uid is not None else ctx.uid
    if not uid:
        raise InvalidValueError(DELETION_PING, "uid", "a deletion request needs a uid")
    if not isinstance(uid, str):
        raise InvalidValueError(DELETION_PING, "uid", f"must be a str, got {type(uid).__name__}")
    if not _is_text(uid):
        raise InvalidValueError(DELETION_PING, "uid", _NOT_TEXT)
    pd = defs.pings[DELETION_PING]
    # Only the uid metrics: nothing else about the user goes into this ping.
    if len(uid) > MAX_STRING_BYTES:
        raise InvalidValueError(DELETION_PING, "uid", f"is longer than {MAX_STRING_BYTES}")
    values = {"account.user_id": uid, "account.user_id_sha256": uid_sha256(uid)}
    metrics = FrozenDict(
        {
            kind: FrozenDict({i: values[i] for i in ids if i in values})
            for kind, ids in pd.metrics_by_type.items()
        }
    )
    # As FxA's: no user agent and no IP address, only the uid metrics.
    return GleanPing(
        ping=DELETION_PING, metrics=metrics, events=(), user_agent="", ip_address="", product=False
    )


# ------------------------------------------------------------------ encoding


def _format_uuid4(raw: bytes) -> str:
    b = bytearray(raw)
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ID_BATCH = 128
# Pre-made ids, taken with list.pop() (atomic under the GIL, so no lock).
_ids: list[str] = []


def uuid4_hex() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())``.

    Same randomness source as ``uuid.uuid4`` (``os.urandom``), read 128 ids at
    a time: one syscall per event was an eighth of an event's cost.
    """
    try:
        return _ids.pop()
    except IndexError:
        raw = os.urandom(16 * _ID_BATCH)
        # Two threads refilling at once only make a few spare ids.
        _ids.extend(_format_uuid4(raw[i : i + 16]) for i in range(16, len(raw), 16))
        return _format_uuid4(raw[:16])


_UTC = _dt.UTC
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()
    # A forked child must never hand out ids its parent pre-made: the pipeline
    # deduplicates on document_id, so a shared id would silently lose a ping.
    _ids.clear()


# A pre-fork server (gunicorn) forks after import: every worker must report its own Pid.
os.register_at_fork(after_in_child=_refresh_pid)


# (second, "YYYY-MM-DDTHH:MM:SS") of the last timestamp formatted. Formatting a
# datetime is a tenth of an event's cost; events in the same second share the
# date part. Replaced as one tuple, so threads never see a torn pair.
_iso_second: tuple[int, str] = (-1, "")


def _iso_utc(ns: int) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-28T02:42:01.438153+00:00``."""
    global _iso_second
    sec, rem = divmod(ns, 1_000_000_000)
    cached_sec, prefix = _iso_second
    if cached_sec != sec:
        prefix = _dt.datetime.fromtimestamp(sec, _UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_second = (sec, prefix)
    return f"{prefix}.{rem // 1000:06d}+00:00"


@attrs.frozen(slots=True)
class GleanEncoder:
    """Serialises a :class:`GleanPing` into one MozLog 2.0 ``glean-server-event`` line."""

    app_id: str
    app_version: str
    channel: str
    logger: str  # MozLog Logger, "<service>-glean"
    hostname: str = attrs.field(factory=socket.gethostname)
    sdk_build: str = f"fxa_metrics v{__about__.__version__}"
    _cache: dict[str, orjson.Fragment] = attrs.field(factory=dict, eq=False, repr=False)

    def _client_info(self) -> dict[str, str]:
        return {
            "telemetry_sdk_build": self.sdk_build,
            "first_run_date": "Unknown",
            "os": "Unknown",
            "os_version": "Unknown",
            "architecture": "Unknown",
            "app_build": "Unknown",
            "app_display_version": self.app_version,
            "app_channel": self.channel,
        }

    def payload(self, ping: GleanPing, now_iso: str) -> dict[str, Any]:
        return {
            "metrics": ping.metrics,
            "events": list(ping.events),
            "ping_info": {"seq": 0, "start_time": now_iso, "end_time": now_iso},
            "client_info": self._client_info(),
        }

    def fields(self, ping: GleanPing, now_iso: str) -> dict[str, Any]:
        return {
            "document_namespace": self.app_id,
            "document_type": ping.ping,
            "document_version": "1",
            "document_id": uuid4_hex(),
            "user_agent": ping.user_agent,
            "ip_address": ping.ip_address,
            "payload": orjson.dumps(self.payload(ping, now_iso)).decode(),
        }

    def line(self, ping: GleanPing) -> bytes:
        """The whole line, newline included (equal to ``orjson.dumps`` of :meth:`fields`)."""
        ns = time.time_ns()
        now_iso = _iso_utc(ns)
        payload = orjson.dumps(
            {
                "metrics": ping.metrics,
                "events": ping.events,
                "ping_info": {"seq": 0, "start_time": now_iso, "end_time": now_iso},
                "client_info": self._client_info_json,
            }
        )
        # The payload goes into Fields as a JSON *string*. orjson never writes a
        # raw control character, so escaping it as a string is escaping '\' and
        # '"': two C-speed replaces instead of decoding and re-encoding it.
        quoted = b'"' + payload.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        return orjson.dumps(
            {
                "Timestamp": ns,
                "Type": GLEAN_EVENT_MOZLOG_TYPE,
                "Logger": self.logger,
                "Hostname": self.hostname,
                "EnvVersion": "2.0",
                "Severity": 6,
                "Pid": _pid,
                "Fields": {
                    "document_namespace": self.app_id,
                    "document_type": ping.ping,
                    "document_version": "1",
                    "document_id": uuid4_hex(),
                    "user_agent": ping.user_agent,
                    "ip_address": ping.ip_address,
                    "payload": orjson.Fragment(quoted),
                },
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )

    @property
    def _client_info_json(self) -> orjson.Fragment:
        # The same for every ping of this encoder: encoded once.
        frag = self._cache.get("client_info")
        if frag is None:
            frag = self._cache["client_info"] = orjson.Fragment(orjson.dumps(self._client_info()))
        return frag


class GleanServerSink(Sink):
    """Writes each ping as one ``glean-server-event`` line (default: the process's stdout).

    Each line reaches the OS in one write before ``emit`` returns (see
    ``_output``): a worker killed right after loses nothing already recorded.
    """

    def __init__(
        self,
        encoder: GleanEncoder,
        stream: IO[str] | None = None,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    ) -> None:
        self.encoder = encoder
        self._writer = LineWriter(stream, write_timeout)

    def emit(self, record: GleanPing) -> None:
        self._writer.write(self.encoder.line(record))


def sinks_from_settings(
    settings: Settings, built: Mapping[str, tuple[Sink, ...]] | None = None
) -> list[Sink]:
    """The stdout sink of the server route (always there: it is the default route)."""
    encoder = GleanEncoder(
        app_id=settings.app_id,
        app_version=settings.app_version,
        channel=settings.channel,
        logger=settings.glean_logger or f"{settings.service}-glean",
    )
    return [GleanServerSink(encoder, settings.glean_stream, settings.write_timeout)]
