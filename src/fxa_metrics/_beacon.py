"""Front-end performance beacons: parse, check, and say what to record (no web framework here).

A browser posts one JSON object per page load (``navigator.sendBeacon``, so
usually ``text/plain``); docs/frontend.md is the wire reference. The input
comes from anyone on the internet, so everything is checked before anything
is emitted, and a beacon either passes whole or is refused whole:

- a size cap, UTF-8, JSON (``NaN``/``Infinity`` are not JSON), an object;
- known fields only, at every level, with the right types;
- navigation marks that are monotonic, every value finite and in a sane range;
- the page name from an allow-list or the app's route templates (the tag is
  the *template*), never the raw URL;
- navigation and device type from small allow-lists.

A refusal is a :class:`BeaconError` naming the field and a short reason (the
endpoint answers 400 with it and counts a drop). An accepted beacon becomes a
frozen :class:`PageLoad`; :func:`statsd_records` turns it into the documented
statsd timings and gauge, and the Sentry route turns it into one transaction
(``_sentry_perf``). Per-client rate limiting (:class:`RateLimiter`) stores
keyed hashes, never addresses.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
import orjson

from ._errors import RecordError
from ._records import Gauge, Timing

METRIC = "frontend.beacon"  # the metric named in drops and errors
PREFIX = "frontend."  # every statsd name a beacon produces starts with this

# 4 KiB: the snippet's beacon is ~1 KiB; sendBeacon itself allows 64 KiB.
MAX_BODY = 4096
# One hour: a mark or a vital later than this is not a page load we can use.
MAX_MS = 3_600_000.0
# CLS is a sum of layout-shift scores in one window; real pages stay below 1.
MAX_CLS = 100.0
MAX_PAGE = 200

# PerformanceNavigationTiming marks, in the order the spec guarantees them.
# The network phase is always complete once the document runs; the document
# phase may be unfinished (0 = not reached) when a page is left early.
NETWORK_MARKS = (
    "fetchStart",
    "domainLookupStart",
    "domainLookupEnd",
    "connectStart",
    "connectEnd",
    "requestStart",
    "responseStart",
    "responseEnd",
)
DOCUMENT_MARKS = (
    "domInteractive",
    "domContentLoadedEventStart",
    "domContentLoadedEventEnd",
    "domComplete",
    "loadEventStart",
    "loadEventEnd",
)
# 0 when there was no redirect / no TLS; otherwise bounded by their neighbours.
OPTIONAL_MARKS = ("redirectStart", "redirectEnd", "secureConnectionStart")
NAV_MARKS = frozenset(NETWORK_MARKS + DOCUMENT_MARKS + OPTIONAL_MARKS)
PAINT_NAMES = frozenset({"first-paint", "first-contentful-paint"})
VITALS_MS = frozenset({"lcp", "inp", "fcp", "ttfb"})
VITALS = VITALS_MS | {"cls"}
NAV_TYPES = frozenset({"navigate", "reload", "back_forward", "prerender"})
DEVICE_TYPES = frozenset({"desktop", "mobile", "tablet", "unknown"})
TOP_FIELDS = frozenset({"v", "page", "type", "device", "nav", "paint", "vitals"})
REQUIRED_TOP = ("v", "page", "type", "device", "nav")
CONTENT_TYPES = frozenset({"", "text/plain", "application/json"})

# Route template parameters: Flask/Django "<uid>", "<int:uid>", "<path:p>";
# Starlette "{uid}", "{p:path}"; Express ":uid".
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]*))?\}|<(?:([^:>]+):)?([^>]+)>|:(\w+)")
_TAG_SAFE = re.compile(r"[A-Za-z0-9_./-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")
_FIELD_ECHO = re.compile(r"[A-Za-z0-9_-]{1,30}")


class BeaconError(RecordError):
    """A beacon was refused: ``field`` says where, the message says why (kept short).

    ``reason`` is the drop counter's key: ``beacon_too_large``,
    ``beacon_malformed`` (not a JSON object), ``beacon_invalid`` (a field),
    ``beacon_unknown_page`` or ``beacon_rate_limited``.
    """

    def __init__(self, field: str | None, message: str, reason: str = "beacon_invalid") -> None:
        super().__init__(METRIC, field, message)
        self.reason = reason
        self.short = f"{field}: {message}" if field else message


def _frozen(value: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(value))


@attrs.frozen(slots=True, eq=True, hash=False)
class PageLoad:
    """One checked page load: what a beacon said, after every check passed.

    ``page`` is the allow-listed name or the route template, ``nav`` the
    navigation marks (ms since navigation start), ``paint`` the paint timings
    and ``vitals`` the Web Vitals present (``cls`` unitless, the rest ms).
    Recorded as-is, it is routed to Sentry Performance (one transaction).
    """

    page: str
    navigation_type: str
    device_type: str
    nav: Mapping[str, float] = attrs.field(converter=_frozen)
    paint: Mapping[str, float] = attrs.field(factory=dict, converter=_frozen)
    vitals: Mapping[str, float] = attrs.field(factory=dict, converter=_frozen)

    @property
    def tags(self) -> dict[str, str]:
        return {
            "page": self.page,
            "nav_type": self.navigation_type,
            "device_type": self.device_type,
        }


# ------------------------------------------------------------------ pages


def _template_regex(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        conv = m.group(2) or m.group(3) or ""
        out.append(".+" if conv == "path" else "[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


def template_tag(template: str) -> str:
    """A route template as a statsd tag value: parameters spelt ``_name_``.

    >>> template_tag("/account/<uid>/devices/{device_id:str}")
    '/account/_uid_/devices/_device_id_'
    """
    spelt = _PARAM.sub(
        lambda m: f"_{m.group(1) or m.group(4) or m.group(5)}_", template.rstrip("/") or "/"
    )
    return _UNSAFE.sub("_", spelt)


class Pages:
    """Which page names a beacon may carry: an allow-list and/or route templates.

    A name in ``names`` is used as given. Otherwise the beacon's ``page`` must
    be a path matching one of ``templates``; the page becomes that template
    (``/account/_uid_``), so an id in the URL never reaches a tag.

    >>> pages = Pages(names=["settings"], templates=["/account/<uid>/devices"])
    >>> pages.resolve("settings"), pages.resolve("/account/0f3a/devices")
    ('settings', '/account/_uid_/devices')
    """

    def __init__(self, names: Iterable[str] = (), templates: Iterable[str] = ()) -> None:
        self.names = frozenset(names)
        for name in self.names:
            if not isinstance(name, str) or not _TAG_SAFE.fullmatch(name) or len(name) > MAX_PAGE:
                raise ValueError(f"page name {name!r} must be 1..{MAX_PAGE} of A-Z a-z 0-9 _ . / -")
        compiled: list[tuple[re.Pattern[str], str]] = []
        for template in templates:
            if not isinstance(template, str) or not template.startswith("/"):
                raise ValueError(f"route template {template!r} must be a path starting with '/'")
            compiled.append((_template_regex(template.rstrip("/") or "/"), template_tag(template)))
        # Literal templates first: "/settings/new" wins over "/settings/<id>".
        compiled.sort(key=lambda pair: pair[0].pattern.count("[^/]+") + pair[0].pattern.count(".+"))
        self._templates = tuple(compiled)
        if not self.names and not self._templates:
            raise ValueError("a beacon endpoint needs page names or route templates")

    def resolve(self, page: str) -> str:
        if page in self.names:
            return page
        path = page.rstrip("/") or "/"
        if page.startswith("/"):
            for regex, tag in self._templates:
                if regex.fullmatch(path):
                    return tag
        raise BeaconError("page", "not an allowed page or route", "beacon_unknown_page")


# ------------------------------------------------------------------ checks


def _ms(field: str, value: Any, limit: float = MAX_MS) -> float:
    # bool is an int subclass, never a measurement; orjson never yields NaN/inf,
    # but a caller handing us parsed objects might.
    if value.__class__ not in (int, float) or not math.isfinite(value):
        raise BeaconError(field, "must be a finite number")
    if not 0.0 <= value <= limit:
        raise BeaconError(field, f"out of range 0..{limit:g}")
    return float(value)


def _object(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BeaconError(field, "must be an object")
    return value


def _known(field: str, given: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = given.keys() - known
    if unknown:
        # Name at most one, and only a plain one: the reason is echoed to an
        # anonymous client, and lands in our logs.
        name = min(unknown)
        if not _FIELD_ECHO.fullmatch(name):
            name = "?"
        raise BeaconError(f"{field}.{name}" if field else name, "unknown field")


def _check_nav(raw: Any) -> dict[str, float]:
    nav = _object("nav", raw)
    _known("nav", nav, NAV_MARKS)
    missing = sorted(NAV_MARKS - nav.keys())
    if missing:
        raise BeaconError(f"nav.{missing[0]}", "missing")
    marks = {name: _ms(f"nav.{name}", value) for name, value in nav.items()}
    previous, prev_name, reached = 0.0, "startTime", True
    for name in NETWORK_MARKS + DOCUMENT_MARKS:
        value = marks[name]
        if name in DOCUMENT_MARKS and value == 0.0:
            reached = False  # not reached yet: every later mark must be 0 too
            continue
        if not reached:
            raise BeaconError(f"nav.{name}", "set after a mark that was not reached")
        if value < previous:
            raise BeaconError(f"nav.{name}", f"earlier than nav.{prev_name}")
        previous, prev_name = value, name
    _check_optional(marks)
    return marks


def _check_optional(marks: Mapping[str, float]) -> None:
    rs, re_ = marks["redirectStart"], marks["redirectEnd"]
    if (rs or re_) and not (rs <= re_ <= marks["fetchStart"]):
        raise BeaconError("nav.redirectEnd", "redirect marks out of order")
    tls = marks["secureConnectionStart"]
    if tls and not (marks["connectStart"] <= tls <= marks["connectEnd"]):
        raise BeaconError("nav.secureConnectionStart", "outside connectStart..connectEnd")


def _check_paint(raw: Any) -> dict[str, float]:
    paint = _object("paint", raw)
    _known("paint", paint, PAINT_NAMES)
    out = {name: _ms(f"paint.{name}", value) for name, value in paint.items()}
    if out.get("first-paint", 0.0) > out.get("first-contentful-paint", MAX_MS):
        raise BeaconError("paint.first-contentful-paint", "earlier than first-paint")
    return out


def _check_vitals(raw: Any) -> dict[str, float]:
    vitals = _object("vitals", raw)
    _known("vitals", vitals, VITALS)
    return {
        name: _ms(f"vitals.{name}", value, MAX_CLS if name == "cls" else MAX_MS)
        for name, value in vitals.items()
    }


def _one_of(field: str, value: Any, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BeaconError(field, f"must be one of {', '.join(sorted(allowed))}")
    return value


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse(body: bytes, content_type: str | None, pages: Pages) -> PageLoad:
    """Check one beacon body; the :class:`PageLoad` it describes, or :class:`BeaconError`."""
    if len(body) > MAX_BODY:
        raise BeaconError(None, f"body larger than {MAX_BODY} bytes", "beacon_too_large")
    if _media_type(content_type) not in CONTENT_TYPES:
        raise BeaconError(None, "content type must be text/plain or application/json")
    try:
        data = orjson.loads(body)  # strict UTF-8 and RFC 8259: no NaN, no Infinity
    except orjson.JSONDecodeError:
        raise BeaconError(None, "not JSON", "beacon_malformed") from None
    if not isinstance(data, dict):
        raise BeaconError(None, "not a JSON object", "beacon_malformed")
    _known("", data, TOP_FIELDS)
    for name in REQUIRED_TOP:
        if name not in data:
            raise BeaconError(name, "missing")
    if data["v"] != 1 or data["v"].__class__ is not int:
        raise BeaconError("v", "unsupported version (expected 1)")
    page = data["page"]
    if not isinstance(page, str) or not 0 < len(page) <= MAX_PAGE:
        raise BeaconError("page", f"must be a string of 1..{MAX_PAGE} characters")
    return PageLoad(
        page=pages.resolve(page),
        navigation_type=_one_of("type", data["type"], NAV_TYPES),
        device_type=_one_of("device", data["device"], DEVICE_TYPES),
        nav=_check_nav(data["nav"]),
        paint=_check_paint(data.get("paint", {})),
        vitals=_check_vitals(data.get("vitals", {})),
    )


def check_page_load(load: PageLoad) -> None:
    """Check a hand-built :class:`PageLoad` as strictly as a beacon (raises BeaconError)."""
    page = load.page
    if not isinstance(page, str) or len(page) > MAX_PAGE or not _TAG_SAFE.fullmatch(page):
        raise BeaconError("page", f"must be 1..{MAX_PAGE} of A-Z a-z 0-9 _ . / -")
    _one_of("type", load.navigation_type, NAV_TYPES)
    _one_of("device", load.device_type, DEVICE_TYPES)
    _check_nav(dict(load.nav))
    _check_paint(dict(load.paint))
    _check_vitals(dict(load.vitals))


# ------------------------------------------------------------------ emission

# (statsd name, where the value comes from), in the order they are recorded.
# A source is ("vitals"|"paint"|"nav", key); the first one present wins. A
# document mark of 0 (not reached) is not a measurement and is not sent.
TIMINGS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("frontend.ttfb", (("vitals", "ttfb"), ("nav", "responseStart"))),
    ("frontend.fcp", (("vitals", "fcp"), ("paint", "first-contentful-paint"))),
    ("frontend.lcp", (("vitals", "lcp"),)),
    ("frontend.inp", (("vitals", "inp"),)),
    ("frontend.dom_interactive", (("nav", "domInteractive"),)),
    ("frontend.dom_content_loaded", (("nav", "domContentLoadedEventEnd"),)),
    ("frontend.load", (("nav", "loadEventEnd"),)),
)
GAUGES = (("frontend.cls", "cls"),)


def _value(load: PageLoad, sources: tuple[tuple[str, str], ...]) -> float | None:
    for part, key in sources:
        value = getattr(load, part).get(key)
        if value is not None and not (part == "nav" and key in DOCUMENT_MARKS and value == 0.0):
            return float(value)
    return None


def statsd_records(load: PageLoad) -> list[Timing | Gauge]:
    """The statsd records a page load produces (aggregate: page, nav type, device type only)."""
    tags = load.tags
    out: list[Timing | Gauge] = []
    for name, sources in TIMINGS:
        value = _value(load, sources)
        if value is not None:
            out.append(Timing(name, value, tags=tags))
    for name, key in GAUGES:
        if key in load.vitals:
            out.append(Gauge(name, load.vitals[key], tags=tags))
    return out


# ------------------------------------------------------------------ rate limit


class RateLimiter:
    """A token bucket per client, keyed by a keyed hash of the client: no address is stored.

    Each client may send ``burst`` beacons at once, refilled at ``per_minute``.
    The key is random per process (and per fork: a child gets its own on first
    use), so a table entry cannot be reversed to an address by a dictionary
    of all IPv4s, and nothing survives a restart. The table keeps at most
    ``max_clients`` entries, evicting the least recently seen.
    """

    def __init__(
        self,
        per_minute: float = 30.0,
        burst: int = 10,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("per_minute > 0, burst >= 1 and max_clients >= 1 are required")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._pid = -1
        self._key = b""

    def _digest(self, client: str) -> bytes:
        pid = os.getpid()
        if pid != self._pid:  # first use, or a forked child: a fresh key and table
            self._pid, self._key = pid, os.urandom(32)
            self._buckets.clear()
        return hashlib.blake2b(client.encode(), key=self._key, digest_size=16).digest()

    def allow(self, client: str) -> bool:
        """Take one token for ``client`` (an address or any client key); False if none is left."""
        now = self._clock()
        with self._lock:
            digest = self._digest(client)
            tokens, last = self._buckets.pop(digest, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[digest] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return allowed

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def digests(self) -> list[bytes]:
        """The table's keys (for tests: they must not contain any address)."""
        with self._lock:
            return list(self._buckets)
