"""The statsd route: name/tag/PII checks, the UDP sink, and per-handler batching.

Wire format (what InfluxDB's Telegraf statsd input reads)::

    <prefix>.<name>[,<key>=<value>...]:<value>|<ms|c|g|s>[|@<rate>]

Tags go in the name, keys sorted, so one series never has two spellings.
Names and tag values keep to a small ASCII charset: the statsd grammar's own
separators (``:|,=@``), whitespace and newlines could otherwise split or forge
a line. statsd is aggregate by construction, so anything that looks like user
identity (an email, an IPv4/IPv6 address, a 32+ hex token or a UUID) is refused
before any charset check, with reason ``pii``; error messages never repeat it.

The sink is built on the ``statsd`` package's UDP client: it resolves the host
once (here, at ``configure()``), and a send to a port where nothing listens is
swallowed, so at run time an absent daemon is never an exception.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno as _errno
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

import statsd

from . import _runtime, _scrub
from ._config import Settings
from ._context import RequestContext
from ._errors import ConfigurationError, InvalidRecordError, PiiRejectedError
from ._records import Counter, Gauge, Set, Timing
from ._runtime import Runtime
from ._sink import Sink
from ._stats import Stats, logger

# statsd send errors after reset() swapped the runtime out: logged once per reason.
_orphan_stats = Stats()

# ---------------------------------------------------------------- the rules

# Dotted words; no empty segment, so "a..b" and a trailing "." never make a second series.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
_TAG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# "/" is allowed in values for route paths (FxA tags url_request with the path).
_TAG_VALUE = re.compile(r"[A-Za-z0-9_./-]+")
_ALLOWED = {
    "name": "dotted words of A-Z a-z 0-9 _ -",
    "key": "A-Z a-z 0-9 _ . - (not starting with a digit, '.' or '-')",
    "value": "A-Z a-z 0-9 _ . / -",
}
MAX_NAME = 200
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 200
MAX_TAGS = 16
# statsd daemons hold values as float64 (Etsy's in JavaScript): past 2**53 they lose
# precision, and a huge int would not even format (Python's int-to-str digit limit).
MAX_ABS_VALUE = 2**53
# "%s" of a rate below 1e-4 is scientific notation, which Etsy statsd misreads as @1.
MIN_RATE = 0.0001

# What user identity looks like, searched anywhere in a name, tag or set value.
# Deliberately loose (no word boundaries): an address glued to other characters
# is still caught, and a version string shaped like 1.2.3.4 is refused too; that
# is the safe side. Callers check the length first, so the search stays cheap.
_PII = re.compile(
    r"(?P<email>[^\s@]+@[^\s@]+\.[^\s@]+)"
    r"|(?P<ipv4>[0-9]{1,3}(?:\.[0-9]{1,3}){3})"
    r"|(?P<ipv6>[0-9A-Fa-f]*::|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4})"
    r"|(?P<uuid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})"
    r"|(?P<hex>[0-9A-Fa-f]{32,})"
)


def _identity(text: str) -> str | None:
    """privacy (issue 10): what identity ``text`` holds, by our loose rule or, after
    decoding (``%2540`` is an ``@``), by the shared scrubber's detectors (JWTs too)."""
    pii = _PII.search(text)
    if pii is not None:
        return _PII_WHAT[pii.lastgroup or "hex"]
    return _scrub.identity(text)


_PII_WHAT = {
    "email": "an email address",
    "ipv4": "an IP address",
    "ipv6": "an IP address",
    "uuid": "a UUID",
    "hex": "a 32+ hex token",
}

# Names and tag values come from a small set of literals at call sites, so the
# checks are memoised; only values that passed are kept, and the sets are
# bounded so a high-cardinality caller cannot grow them without limit.
_CACHE_MAX = 4096
_good_names: set[str] = set()
_good_values: set[str] = set()
_good_keys: set[str] = set()


def _remember(cache: set[str], text: str) -> None:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache.add(text)


def redact(text: str) -> str:
    """``text`` with every PII-shaped part replaced by ``[Filtered]`` (for error messages)."""
    return _PII.sub("[Filtered]", text)


def _shown(text: str, limit: int) -> str:
    """``text`` as it may appear in an error (and so in logs and drop counters)."""
    if len(text) > limit:
        # Not echoed at all: clipping could cut an address in half and leak the rest.
        return f"<{len(text)} characters>"
    text = _scrub.scrub_string(redact(text))  # privacy (issue 10): credentials too
    return text if len(text) <= 80 else text[:77] + "..."


_BAD_CHAR = {
    "name": re.compile(r"[^A-Za-z0-9_.-]"),
    "key": re.compile(r"[^A-Za-z0-9_.-]"),
    "value": re.compile(r"[^A-Za-z0-9_./-]"),
}


def _why(text: str, what: str, limit: int) -> str:
    """Why ``text`` failed the ``what`` charset rule, without echoing all of it."""
    if not text:
        return "is empty"
    if len(text) > limit:
        return f"is longer than {limit} characters"
    bad = _BAD_CHAR[what].search(text)
    if bad is not None:
        return f"has {bad.group()!r} at {bad.start()}"
    return "has an empty segment or starts with a digit, '.' or '-'"


def _check_name(name: Any) -> str:
    if type(name) is str and name in _good_names:
        return name
    if not isinstance(name, str):
        raise InvalidRecordError(f"<{type(name).__name__}>", "name", "a statsd name must be a str")
    if not name or len(name) > MAX_NAME:
        raise InvalidRecordError(
            _shown(name, MAX_NAME),
            "name",
            f"{_why(name, 'name', MAX_NAME)}; a statsd name is {_ALLOWED['name']}",
        )
    what = _identity(name)
    if what is not None:
        raise PiiRejectedError(
            _shown(name, MAX_NAME),
            "name",
            f"looks like it holds {what}; no user identity in aggregate metrics",
        )
    if not _NAME.fullmatch(name):
        raise InvalidRecordError(
            _shown(name, MAX_NAME),
            "name",
            f"{_why(name, 'name', MAX_NAME)}; a statsd name is {_ALLOWED['name']}",
        )
    _remember(_good_names, name)
    return name


def _tag_text(value: Any) -> str | None:
    # bool before int: True is an int, and "1" would hide what was meant.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and abs(value) <= MAX_ABS_VALUE:
        return str(value)
    return None


def _check_value(metric: str, field: str, value: Any) -> str:
    """A tag value or set member: str/int/bool, no PII, safe charset."""
    text = _tag_text(value)
    if text is not None and text in _good_values:
        return text
    if text is None:
        raise InvalidRecordError(
            metric, field, f"must be a str, int or bool, not {type(value).__name__}"
        )
    if not text or len(text) > MAX_TAG_VALUE:
        raise InvalidRecordError(
            metric, field, f"{_why(text, 'value', MAX_TAG_VALUE)}; allowed: {_ALLOWED['value']}"
        )
    what = _identity(text)
    if what is not None:
        raise PiiRejectedError(
            metric, field, f"looks like {what}; no user identity in aggregate metrics"
        )
    if not _TAG_VALUE.fullmatch(text):
        raise InvalidRecordError(
            metric,
            field,
            f"{_why(text, 'value', MAX_TAG_VALUE)}; allowed: {_ALLOWED['value']}",
        )
    _remember(_good_values, text)
    return text


def _check_key(metric: str, key: Any) -> None:
    if not isinstance(key, str):
        raise InvalidRecordError(metric, "tags", f"tag keys must be str, not {type(key).__name__}")
    if not key or len(key) > MAX_TAG_KEY:
        raise InvalidRecordError(
            metric,
            f"tag:{_shown(key, MAX_TAG_KEY)}",
            f"{_why(key, 'key', MAX_TAG_KEY)}; a tag key is {_ALLOWED['key']}",
        )
    if _identity(key) is not None:
        raise PiiRejectedError(
            metric, f"tag:{_shown(key, MAX_TAG_KEY)}", "the tag key looks like user identity"
        )
    if not _TAG_KEY.fullmatch(key):
        raise InvalidRecordError(
            metric,
            f"tag:{_shown(key, MAX_TAG_KEY)}",
            f"{_why(key, 'key', MAX_TAG_KEY)}; a tag key is {_ALLOWED['key']}",
        )
    _remember(_good_keys, key)


def _check_tags(metric: str, tags: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    if len(tags) > MAX_TAGS:
        raise InvalidRecordError(metric, "tags", f"at most {MAX_TAGS} tags per metric")
    out = []
    for key, value in tags.items():
        if key.__class__ is not str or key not in _good_keys:
            _check_key(metric, key)
        if value.__class__ is not str or value not in _good_values:
            value = _check_value(metric, f"tag:{key}", value)
        out.append((key, value))
    out.sort()  # one series, one spelling: tags in key order whatever the caller's order
    return tuple(out)


# A tagged series is encoded once: (name, tags as given) -> (sorted tags, stat).
# Only str and int values are kept, and a hit re-checks the classes, because
# True == 1 and 1.0 == 1 as dict keys but are different (or refused) tag values.
_series: dict[tuple[str, tuple[tuple[Any, Any], ...]], tuple[tuple[tuple[str, str], ...], str]] = {}


def _cacheable(items: tuple[tuple[Any, Any], ...]) -> bool:
    # A plain loop: all() over a generator costs three times as much on this hot path.
    for _, v in items:  # noqa: SIM110 - see above
        if v.__class__ is not str and v.__class__ is not int:
            return False
    return True


def _encode_tags(name: str, given: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], str]:
    items = tuple(given.items())
    try:
        hit = _series.get((name, items))
    except TypeError:  # an unhashable value: the full check refuses it
        hit = None
    cacheable = _cacheable(items)
    if hit is not None and cacheable:
        return hit
    tags = _check_tags(name, given)
    encoded = tags, name + "".join([f",{k}={v}" for k, v in tags])
    if cacheable:
        if len(_series) >= _CACHE_MAX:
            _series.clear()
        _series[(name, items)] = encoded
    return encoded


_REAL = (int, float)


def _number(metric: str, field: str, value: Any, kinds: tuple[type, ...] = _REAL) -> Any:
    # The exact-class test is the fast path; bool (an int subclass) is never a measurement.
    if value.__class__ not in kinds and (isinstance(value, bool) or not isinstance(value, kinds)):
        what = "an int" if kinds == (int,) else "a number"
        raise InvalidRecordError(metric, field, f"must be {what}, not {type(value).__name__}")
    number: Any = value
    if not -MAX_ABS_VALUE <= number <= MAX_ABS_VALUE:  # also False for NaN
        raise InvalidRecordError(metric, field, f"must be finite and within ±2**53, got {value!r}")
    return number


def _rate(metric: str, rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, _REAL):
        raise InvalidRecordError(metric, "rate", f"must be a number, not {type(rate).__name__}")
    if not (rate == 0 or MIN_RATE <= rate <= 1):
        raise InvalidRecordError(metric, "rate", f"must be 0 or {MIN_RATE}..1, got {rate!r}")
    return float(rate)


# ---------------------------------------------------------------- prepared line


class StatsdLine(NamedTuple):
    """A checked statsd record: what the sink sends (prefix and sampling are the client's).

    ``stat`` is the name with its sorted tags, e.g. ``url_request,method=POST``;
    ``kind`` is the statsd type: ``ms``, ``c``, ``g`` or ``s``. A NamedTuple
    rather than an attrs class: immutable all the same, and a third of the cost
    on a path whose budget is a fraction of one ``sendto``.
    """

    kind: str
    name: str
    tags: tuple[tuple[str, str], ...]
    stat: str
    value: Any  # float | int for ms/c/g, str for s
    rate: float
    delta: bool = False


def prepare(rt: Runtime, rec: Any, ctx: RequestContext) -> StatsdLine:
    """Check one statsd record; raise a RecordError (the facade counts or raises it)."""
    name = rec.name
    if name.__class__ is not str or name not in _good_names:
        name = _check_name(name)
    tags: tuple[tuple[str, str], ...] = ()
    stat = name
    if rec.tags:
        tags, stat = _encode_tags(name, rec.tags)
    rate = rec.rate
    rate = rt.settings.statsd_sample_rate if rate is None else _rate(name, rate)
    cls = rec.__class__
    if cls is Timing:
        ms = rec.ms
        if isinstance(ms, _dt.timedelta):
            ms = ms.total_seconds() * 1000.0
        ms = _number(name, "ms", ms)
        if ms < 0:
            raise InvalidRecordError(name, "ms", f"a timing cannot be negative, got {ms!r}")
        return StatsdLine("ms", name, tags, stat, ms, rate)
    if cls is Counter:
        return StatsdLine("c", name, tags, stat, _number(name, "value", rec.value, (int,)), rate)
    if cls is Gauge:
        value = _number(name, "value", rec.value)
        if rec.delta.__class__ is not bool:
            raise InvalidRecordError(name, "delta", "must be a bool")
        return StatsdLine("g", name, tags, stat, value, rate, rec.delta)
    if cls is Set:
        return StatsdLine("s", name, tags, stat, _check_value(name, "value", rec.value), rate)
    # Only reachable if ROUTES sends another kind here.
    raise InvalidRecordError(name, None, f"{cls.__name__} is not a statsd record")


# ---------------------------------------------------------------- batching


class _Batch:
    """The pipelines of one ``statsd_batch()`` block, one per sink."""

    def __init__(self) -> None:
        self.pipes: dict[int, Any] = {}
        self.open = True
        self._lock = threading.Lock()

    def pipeline_for(self, sink: StatsdSink) -> Any:
        with self._lock:
            if not self.open:
                return None  # a task that outlived the block: send directly
            pipe = self.pipes.get(id(sink))
            if pipe is None:
                pipe = self.pipes[id(sink)] = sink.client.pipeline()
            return pipe

    def send(self) -> None:
        with self._lock:
            self.open = False
            pipes = list(self.pipes.values())
        for pipe in pipes:
            try:
                pipe.send()
            except Exception as e:  # never into the host: counted like any sink error
                rt = _runtime.current()
                if rt is not None:
                    rt.stats.drop("sink_error", "statsd:StatsdSink", repr(e))
                    rt.stats.keep(e)
                else:
                    logger.warning(  # privacy (issue 10): never echo a value
                        "fxa_metrics: a statsd batch failed to send: %s", _scrub.log_safe(e)
                    )


_batch: ContextVar[_Batch | None] = ContextVar("fxa_metrics_statsd_batch", default=None)


@contextlib.contextmanager
def statsd_batch() -> Iterator[None]:
    """Buffer the statsd records of a block and send them together on exit.

    For a handler that emits several stats: they leave as few datagrams as
    statsd's pipeline can pack (newline-separated, up to 512 bytes each)
    instead of one ``sendto`` per stat. Records are still checked, and refused,
    one by one at ``record()``. The batch belongs to the current thread or
    task (a ``contextvars`` variable), so concurrent handlers never mix; a
    nested block joins the outer one. It is sent on exit even when the block
    raises: what was recorded happened.

    >>> import fxa_metrics as fm
    >>> with fm.statsd_batch():
    ...     fm.record(fm.Counter("login.attempt"))
    ...     fm.record(fm.Timing("login.check", 3.5))
    """
    if _batch.get() is not None:
        yield
        return
    batch = _Batch()
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
        batch.send()


# ---------------------------------------------------------------- the sink


def _resolve(host: str, port: int) -> bool:
    """Whether ``host`` needs IPv6. Raises ConfigurationError if it does not resolve."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
        except (OSError, UnicodeError):
            continue
        return family == socket.AF_INET6
    raise ConfigurationError(
        f"statsd host {host!r} (statsd_host or STATSD_HOST) does not resolve to an address"
    )


class _CountingClient(statsd.StatsClient):  # type: ignore[misc]
    """``statsd.StatsClient`` whose failed sends are counted, not swallowed.

    The package's ``_send`` catches ``OSError`` from ``sendto`` and drops the
    datagram silently (a full socket buffer, an unreachable network, a
    refused broadcast). Pipelines send through the same method.
    """

    # issue 9: every failed send counted per sink and reason (errno name).
    def _send(self, data: str) -> None:
        try:
            self._sock.sendto(data.encode("ascii"), self._addr)
        except (OSError, RuntimeError, AttributeError) as e:
            # AttributeError: the socket was closed (set to None) under a
            # thread that still held the old runtime.
            _count_send_error(e, data.count("\n") + 1)


def _count_send_error(e: BaseException, lines: int) -> None:
    errno_ = getattr(e, "errno", None)
    why = _errno.errorcode.get(errno_, type(e).__name__) if errno_ else type(e).__name__
    rt = _runtime.current()
    stats = rt.stats if rt is not None else _orphan_stats
    for _ in range(lines):  # one datagram of a pipeline holds several stats
        stats.drop("statsd_send_error", f"statsd:{why}", repr(e))


class StatsdSink(Sink):
    """Sends :class:`StatsdLine` records over UDP with ``statsd.StatsClient``.

    The host is resolved here, once: an unresolvable host is a
    :class:`ConfigurationError` at ``configure()``. UDP sends never raise when
    nothing listens (an unconnected UDP socket never sees ICMP refusals); a
    send that fails locally (``sendto`` raising ``OSError``) is dropped and
    counted as ``statsd_send_error`` with metric ``statsd:<errno name>``.
    """

    def __init__(self, host: str, port: int = 8125, prefix: str | None = None) -> None:
        ipv6 = _resolve(host, port)
        try:
            self.client: Any = _CountingClient(host, port, prefix=prefix or None, ipv6=ipv6)
        except (OSError, UnicodeError) as e:
            raise ConfigurationError(f"statsd client for {host}:{port} failed: {e}") from None
        self.host, self.port, self.prefix = host, port, prefix
        self._dotted = f"{prefix}." if prefix else ""
        self._closed = False
        # Bound once: emit() is the hot path.
        self._timing = self.client.timing
        self._incr = self.client.incr
        self._gauge = self.client.gauge
        self._set = self.client.set

    def __repr__(self) -> str:
        return f"StatsdSink({self.host!r}, {self.port}, prefix={self.prefix!r})"

    def emit(self, record: StatsdLine) -> None:
        if self._closed:  # a thread still holding the old runtime after reset(): drop quietly
            return
        batch = _batch.get()
        if batch is not None:
            pipe = batch.pipeline_for(self)
            if pipe is not None:
                _send(pipe.timing, pipe.incr, pipe.gauge, pipe.set, record)
                return
        kind = record.kind
        if record.rate >= 1 and (kind == "ms" or kind == "c"):
            # The hot path (an unsampled timing or counter): the very datagram
            # StatsClient would build ('%0.6f|ms', '%s|c', the prefix joined by
            # a dot), sent without its four Python layers: they were most of
            # what we added to a raw StatsClient.timing call.
            if kind == "ms":
                data = f"{self._dotted}{record.stat}:{record.value:0.6f}|ms"
            else:
                data = f"{self._dotted}{record.stat}:{record.value}|c"
            self.client._send(data)
            return
        _send(self._timing, self._incr, self._gauge, self._set, record)

    def close(self, timeout: float | None = None) -> None:
        self._closed = True
        self.client.close()


def _send(timing: Any, incr: Any, gauge: Any, set_: Any, line: StatsdLine) -> None:
    kind = line.kind
    if kind == "ms":
        timing(line.stat, line.value, line.rate)
    elif kind == "c":
        incr(line.stat, line.value, line.rate)
    elif kind == "g":
        gauge(line.stat, line.value, line.rate, line.delta)
    else:
        set_(line.stat, line.value, line.rate)


def sinks_from_settings(
    settings: Settings, built: Mapping[str, tuple[Sink, ...]] | None = None
) -> list[Sink]:
    """The UDP sink when a host is configured (``statsd_host=`` or ``STATSD_HOST``)."""
    if settings.statsd_host is None:
        return []
    return [StatsdSink(settings.statsd_host, settings.statsd_port, settings.statsd_prefix)]
