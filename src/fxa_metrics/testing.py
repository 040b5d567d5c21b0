"""Test helpers: capture every sink in memory, with strict mode on, and assert on it.

In the spirit of markus' ``MetricsMock``: ``assert_event``, ``assert_timing``,
``assert_incr``, ``assert_gauge``, ``assert_logged``, ``assert_crash``, each
with ``_once`` and ``assert_no_*``/``assert_not_*`` variants. A failing
assertion prints everything that was captured.

>>> import fxa_metrics as fm
>>> from fxa_metrics.testing import capture
>>> with capture(metrics_yaml="metrics.yaml", pings_yaml="pings.yaml") as cap:  # doctest: +SKIP
...     fm.record("login.complete", extra={"reason": "password"})
...     cap.assert_event_once("login.complete", extra={"reason": "password"})
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from typing import Any

import orjson

from . import _facade
from ._config import build_settings
from ._glean import GleanEncoder, GleanPing
from ._sink import Sink


class CaptureSink(Sink):
    """Keeps every prepared record it receives, with its route. Thread-safe."""

    def __init__(self, route: str, store: list[tuple[str, Any]], lock: threading.Lock) -> None:
        self.route = route
        self._store = store
        self._lock = lock

    def emit(self, record: Any) -> None:
        with self._lock:
            self._store.append((self.route, record))


class Capture:
    """What :func:`capture` collected, per route, in order."""

    def __init__(self, encoder: GleanEncoder) -> None:
        self.encoder = encoder
        self._items: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def sinks(self) -> dict[str, list[Sink]]:
        return {r: [CaptureSink(r, self._items, self._lock)] for r in _facade.ROUTE_NAMES}

    def records(self, route: str | None = None) -> list[Any]:
        with self._lock:
            return [rec for r, rec in self._items if route is None or r == route]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def pings(self, ping: str | None = None) -> list[GleanPing]:
        return [p for p in self.records("glean") if ping is None or p.ping == ping]

    def events(self) -> list[dict[str, Any]]:
        return [dict(e) for p in self.pings() for e in p.events]

    def payloads(self) -> list[dict[str, Any]]:
        """Each captured ping's payload exactly as the pipeline would receive it."""
        out = []
        for p in self.pings():
            fields = self.encoder.fields(p, "2026-01-01T00:00:00+00:00")
            out.append(orjson.loads(fields["payload"]))
        return out

    def lines(self) -> list[dict[str, Any]]:
        """Each captured ping as the full MozLog line (parsed)."""
        return [orjson.loads(self.encoder.line(p)) for p in self.pings()]

    def validate(self) -> None:
        """Validate every captured Glean payload against the pipeline's ping schema."""
        for payload in self.payloads():
            validate_glean_payload(payload)

    # ------------------------------------------------------------ assertions

    def dump(self) -> str:
        """Everything captured, one record a line, for assertion messages."""
        with self._lock:
            items = list(self._items)
        if not items:
            return "  (nothing was captured)"
        return "\n".join(f"  {route}: {_describe(route, rec)}" for route, rec in items)

    def _check(self, found: int, expected: str, what: str) -> None:
        ok = {"once": found == 1, "some": found >= 1, "none": found == 0}[expected]
        if not ok:
            want = {"once": "exactly once", "some": "at least once", "none": "never"}[expected]
            raise AssertionError(
                f"expected {what} {want}, found {found} time(s). Captured:\n{self.dump()}"
            )

    def _events(self, name: str, extra: Mapping[str, Any] | None, ping: str | None) -> int:
        category, _, short = name.rpartition(".")
        found = 0
        for p in self.pings(ping):
            for e in p.events:
                if (e["category"], e["name"]) != (category, short):
                    continue
                if extra is not None and dict(e.get("extra", {})) != dict(extra):
                    continue
                found += 1
        return found

    def assert_event(
        self, name: str, extra: Mapping[str, str] | None = None, *, ping: str | None = None
    ) -> None:
        """An event ``category.name`` was sent (with exactly these wire extras, if given)."""
        self._check(self._events(name, extra, ping), "some", _what("event", name, extra))

    def assert_event_once(
        self, name: str, extra: Mapping[str, str] | None = None, *, ping: str | None = None
    ) -> None:
        self._check(self._events(name, extra, ping), "once", _what("event", name, extra))

    def assert_no_event(self, name: str | None = None) -> None:
        """No event (named ``name``, or none at all) was sent."""
        if name is None:
            self._check(len(self.events()), "none", "any event")
        else:
            self._check(self._events(name, None, None), "none", f"event {name}")

    def _stats(self, kind: str, name: str, value: Any, tags: Mapping[str, Any] | None) -> int:
        found = 0
        for line in self.records("statsd"):
            if line.kind != kind or line.name != name:
                continue
            if value is not None and line.value != value:
                continue
            if tags is not None and not _tags_match(dict(line.tags), tags):
                continue
            found += 1
        return found

    def assert_timing(self, name: str, tags: Mapping[str, Any] | None = None) -> None:
        self._check(self._stats("ms", name, None, tags), "some", _what("timing", name, tags))

    def assert_timing_once(self, name: str, tags: Mapping[str, Any] | None = None) -> None:
        self._check(self._stats("ms", name, None, tags), "once", _what("timing", name, tags))

    def assert_not_timing(self, name: str, tags: Mapping[str, Any] | None = None) -> None:
        self._check(self._stats("ms", name, None, tags), "none", _what("timing", name, tags))

    def assert_incr(
        self, name: str, value: int | None = None, tags: Mapping[str, Any] | None = None
    ) -> None:
        self._check(self._stats("c", name, value, tags), "some", _what("counter", name, tags))

    def assert_incr_once(
        self, name: str, value: int | None = None, tags: Mapping[str, Any] | None = None
    ) -> None:
        self._check(self._stats("c", name, value, tags), "once", _what("counter", name, tags))

    def assert_not_incr(self, name: str, tags: Mapping[str, Any] | None = None) -> None:
        self._check(self._stats("c", name, None, tags), "none", _what("counter", name, tags))

    def assert_gauge(
        self, name: str, value: float | None = None, tags: Mapping[str, Any] | None = None
    ) -> None:
        self._check(self._stats("g", name, value, tags), "some", _what("gauge", name, tags))

    # ---------------------------------------------- glean-sdk route (issue 13)
    # Same rule as assert_incr: a record matches on name, and on value/label when given.

    def _sdk(self, name: str, value: Any, label: str | None) -> int:
        return sum(
            1
            for s in self.records("glean_sdk")
            if s.identifier == name
            and (value is None or s.value == value)
            and (label is None or s.label == label)
        )

    def assert_counter(self, name: str, value: int | None = None, label: str | None = None) -> None:
        """A glean-sdk counter/labeled_counter (or any SDK metric) was recorded."""
        self._check(self._sdk(name, value, label), "some", _what("glean-sdk", name, label))

    def assert_counter_once(
        self, name: str, value: int | None = None, label: str | None = None
    ) -> None:
        self._check(self._sdk(name, value, label), "once", _what("glean-sdk", name, label))

    def assert_not_counter(self, name: str, label: str | None = None) -> None:
        self._check(self._sdk(name, None, label), "none", _what("glean-sdk", name, label))

    def _logged(self, type_: str, fields: Mapping[str, Any]) -> int:
        found = 0
        for rec in self.records("mozlog"):
            if rec.type == type_ and all(
                k in rec.fields and _matches(rec.fields[k], v) for k, v in fields.items()
            ):
                found += 1
        return found

    def assert_logged(self, type_: str, **fields: Any) -> None:
        """A MozLog line of this Type was written, with (at least) these field values."""
        self._check(self._logged(type_, fields), "some", _what("log", type_, fields))

    def assert_logged_once(self, type_: str, **fields: Any) -> None:
        self._check(self._logged(type_, fields), "once", _what("log", type_, fields))

    def assert_not_logged(self, type_: str, **fields: Any) -> None:
        self._check(self._logged(type_, fields), "none", _what("log", type_, fields))

    def _crashes(self, exc_type: type[BaseException] | None, match: str | None) -> int:
        found = 0
        for p in self.records("sentry"):
            exc = getattr(p, "exc", None)
            if exc_type is not None and not isinstance(exc, exc_type):
                continue
            if match is not None and match not in str(exc):
                continue
            found += 1
        return found

    def assert_crash(
        self, exc_type: type[BaseException] | None = None, match: str | None = None
    ) -> None:
        """A crash was captured (of this type, with ``match`` in its message, if given)."""
        self._check(self._crashes(exc_type, match), "some", _what("crash", exc_type, match))

    def assert_crash_once(
        self, exc_type: type[BaseException] | None = None, match: str | None = None
    ) -> None:
        self._check(self._crashes(exc_type, match), "once", _what("crash", exc_type, match))

    def assert_no_crash(self) -> None:
        self._check(self._crashes(None, None), "none", "any crash")


class _AnyTagValue:
    """Matches a tag (or log field) with any value, when only its presence matters."""

    def __repr__(self) -> str:
        return "AnyTagValue"


AnyTagValue: Any = _AnyTagValue()


def _what(kind: str, name: Any, detail: Any) -> str:
    label = name.__name__ if isinstance(name, type) else name
    parts = [kind, *([str(label)] if label is not None else []), *([str(detail)] if detail else [])]
    return " ".join(parts)


def _matches(actual: Any, expected: Any) -> bool:
    return expected is AnyTagValue or actual == expected


def _tags_match(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    # Tags go out as text: compare as text, so tags={"status": 200} matches "200".
    if set(actual) != set(expected):
        return False
    return all(expected[k] is AnyTagValue or str(expected[k]) == str(actual[k]) for k in expected)


def _describe(route: str, rec: Any) -> str:
    if route == "glean":
        events = "; ".join(
            f"{e['category']}.{e['name']} {dict(e.get('extra', {}))}" for e in rec.events
        )
        return f"ping {rec.ping}: {events or '(no event)'} metrics={dict(rec.metrics)}"
    if route == "statsd":
        return f"{rec.kind} {rec.stat}={rec.value}"
    if route == "mozlog":
        return f"log {rec.type} {dict(rec.fields)}"
    if route == "sentry":
        return f"crash {getattr(rec, 'exc', rec)!r}"
    return repr(rec)


_validator: Callable[[Any], Any] | None = None


def validate_glean_payload(payload: Mapping[str, Any]) -> None:
    """Raise AssertionError if ``payload`` fails the pipeline's Glean ping schema.

    The schema ships with fxa_metrics (``fxa_metrics/schemas/glean.1.schema.json``,
    copied from the ingestion pipeline's). Needs ``jsonschema``: install
    ``fxa-metrics[testing]``.
    """
    global _validator
    if _validator is None:
        try:
            import jsonschema
        except ImportError:  # pragma: no cover - the dev extra has it
            raise RuntimeError(
                "validating Glean payloads needs jsonschema: pip install 'fxa-metrics[testing]'"
            ) from None
        schema = json.loads(
            (resources.files("fxa_metrics") / "schemas" / "glean.1.schema.json").read_text()
        )
        _validator = jsonschema.Draft6Validator(schema).iter_errors
    errors = sorted(_validator(payload), key=lambda e: list(e.path))
    if errors:
        raise AssertionError(
            "Glean payload fails the pipeline schema:\n"
            + "\n".join(f"  {list(e.path)}: {e.message}" for e in errors)
        )


@contextlib.contextmanager
def capture(**settings: Any) -> Iterator[Capture]:
    """Configure fxa_metrics with in-memory sinks only (strict by default), restore on exit.

    Accepts the same keywords as :func:`fxa_metrics.configure`; identity
    settings default to test values.
    """
    settings.setdefault("service", "fxa-test")
    settings.setdefault("app_id", "accounts_backend_dev")
    settings.setdefault("app_version", "0.0.0")
    settings.setdefault("channel", "development")
    settings.setdefault("strict", True)
    user_sinks = settings.pop("sinks", {})
    base = build_settings(**settings, replace_sinks=True)
    cap = Capture(
        GleanEncoder(base.app_id, base.app_version, base.channel, f"{base.service}-glean")
    )
    sinks = cap.sinks()
    for route, extra in user_sinks.items():
        sinks.setdefault(route, []).extend(extra)
    import attrs

    rt = _facade.build_runtime(attrs.evolve(base, sinks=sinks))
    prev = _facade.swap(rt)
    try:
        yield cap
    finally:
        _facade.swap(prev)
        rt.close(1.0)
