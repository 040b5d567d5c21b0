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
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, NamedTuple

import attrs
import orjson

from . import __about__
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
    InvalidValueError,
    UndeclaredPingError,
    UndefinedMetricError,
)
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
    """

    ping: str
    metrics: Mapping[str, Mapping[str, Any]]  # type -> identifier -> value
    events: tuple[Mapping[str, Any], ...]
    user_agent: str
    ip_address: str
    # False only for server-deletion-request, which consent never gates.
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


def _metric_value(md: MetricDef, value: Any, overflow: OverflowHook) -> Any:
    kind = md.type
    ident = md.identifier
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidValueError(ident, "value", f"must be a str, got {type(value).__name__}")
        if not _is_text(value):
            raise InvalidValueError(ident, "value", _NOT_TEXT)
        cut = _truncate(value, MAX_STRING_BYTES)
        if cut is not None:
            overflow(ident, "value", MAX_STRING_BYTES)
            return cut
        return value
    if kind == "quantity":
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValueError(ident, "value", f"must be an int, got {type(value).__name__}")
        if value < 0 or value > 2**63 - 1:
            raise InvalidValueError(ident, "value", f"must be in 0..2**63-1, got {value}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidValueError(ident, "value", f"must be a bool, got {type(value).__name__}")
        return value
    if kind == "datetime":
        if not isinstance(value, _dt.datetime) or value.tzinfo is None:
            raise InvalidValueError(ident, "value", "must be a timezone-aware datetime.datetime")
        # As glean_parser's Go server outputter writes it: UTC, milliseconds, "Z".
        # (isoformat() would change shape with the value: no fraction when the
        # microseconds are 0, the caller's offset otherwise.)
        utc = value.astimezone(_UTC)
        return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
    if kind == "string_list":
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise InvalidValueError(
                ident, "value", f"must be a list of str, got {type(value).__name__}"
            )
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise InvalidValueError(
                    ident, "value", f"items must be str, got {type(item).__name__}"
                )
            if not _is_text(item):
                raise InvalidValueError(ident, "value", _NOT_TEXT)
            cut = _truncate(item, MAX_STRING_LIST_ITEM_BYTES)
            if cut is not None:
                overflow(ident, "value", MAX_STRING_LIST_ITEM_BYTES)
                item = cut
            out.append(item)
        if len(out) > MAX_STRING_LIST_ITEMS:
            overflow(ident, "value", MAX_STRING_LIST_ITEMS)
            del out[MAX_STRING_LIST_ITEMS:]
        return out
    # object: any JSON object or array. Round-trip through orjson so what we
    # send is plain JSON (and a non-serialisable value fails here, named).
    if not isinstance(value, dict | list | tuple):
        raise InvalidValueError(
            ident, "value", f"must be a dict or list, got {type(value).__name__}"
        )
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as e:
        raise InvalidValueError(ident, "value", f"is not JSON-serialisable: {e}") from None


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


def _fill_metrics(
    defs: Definitions,
    pd: PingDef,
    explicit: Mapping[str, Any],
    ctx: RequestContext,
    overflow: OverflowHook,
) -> dict[str, dict[str, Any]]:
    values = _explicit_values(defs, pd, explicit, overflow) if explicit else None
    # One pass over the precompiled layout: definition order, type by type, the
    # same keys in the same order as upstream's generated code (an empty type
    # object is kept, as upstream does). Explicit values win over the context.
    out: dict[str, dict[str, Any]] = {}
    for kind, slots in pd.layout:
        typed: dict[str, Any] = {}
        for ident, attr in slots:
            if values is not None and ident in values:
                value = values[ident]
            elif attr is not None:
                value = getattr(ctx, attr)
                # bind() guarantees str; only a long one needs the byte count.
                if value is not None and len(value) * 4 > MAX_STRING_BYTES:
                    cut = _truncate(value, MAX_STRING_BYTES)
                    if cut is not None:
                        overflow(ident, "value", MAX_STRING_BYTES)
                        value = cut
            else:
                continue
            if value is not None:
                typed[ident] = value
        out[kind] = typed
    return out


def _client(ctx: RequestContext, skip_ip: bool) -> tuple[str, str]:
    ua = ctx.user_agent or ""
    ip = "" if (skip_ip or ctx.skip_client_ip) else (ctx.ip_address or "")
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
        event["extra"] = extra
    elif rec.extra:
        key = next(iter(rec.extra))
        raise InvalidExtraError(
            md.identifier, key, "is not a declared extra key (the event has none)"
        )
    event["timestamp"] = 0
    ua, ip = _client(ctx, rec.skip_client_ip)
    return GleanPing(
        ping=pd.name,
        metrics=_fill_metrics(defs, pd, rec.metrics, ctx, overflow),
        events=(event,),
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
    ua, ip = _client(ctx, rec.skip_client_ip)
    return GleanPing(
        ping=pd.name,
        metrics=_fill_metrics(defs, pd, rec.values, ctx, overflow),
        events=(),
        user_agent=ua,
        ip_address=ip,
        product=pd.name != DELETION_PING,
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
    values = {"account.user_id": uid, "account.user_id_sha256": uid_sha256(uid)}
    metrics = {
        kind: {i: values[i] for i in ids if i in values} for kind, ids in pd.metrics_by_type.items()
    }
    # privacy (issue 10): no user agent or IP address, as FxA's deletion request.
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

    def payload(self, ping: GleanPing, now_iso: str) -> dict[str, Any]:
        return {
            "metrics": ping.metrics,
            "events": list(ping.events),
            "ping_info": {"seq": 0, "start_time": now_iso, "end_time": now_iso},
            "client_info": {
                "telemetry_sdk_build": self.sdk_build,
                "first_run_date": "Unknown",
                "os": "Unknown",
                "os_version": "Unknown",
                "architecture": "Unknown",
                "app_build": "Unknown",
                "app_display_version": self.app_version,
                "app_channel": self.channel,
            },
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
        """The whole line, newline included."""
        ns = time.time_ns()
        now_iso = _iso_utc(ns)
        return orjson.dumps(
            {
                "Timestamp": ns,
                "Type": GLEAN_EVENT_MOZLOG_TYPE,
                "Logger": self.logger,
                "Hostname": self.hostname,
                "EnvVersion": "2.0",
                "Severity": 6,
                "Pid": _pid,
                "Fields": self.fields(ping, now_iso),
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )


# One lock for every line fxa_metrics writes to a shared stream, so a Glean line
# and a MozLog line can never interleave inside each other.
STREAM_LOCK = threading.RLock()


class GleanServerSink(Sink):
    """Writes each ping as one line to ``stream`` (default: the current ``sys.stdout``)."""

    def __init__(self, encoder: GleanEncoder, stream: IO[str] | None = None) -> None:
        self.encoder = encoder
        self._stream = stream

    def emit(self, record: GleanPing) -> None:
        line = self.encoder.line(record).decode()
        # Looked up per call so pytest's capsys and a redirected stdout both work.
        stream = self._stream or sys.stdout
        with STREAM_LOCK:
            stream.write(line)

    def flush(self, timeout: float | None = None) -> None:
        stream = self._stream or sys.stdout
        with STREAM_LOCK:
            stream.flush()
