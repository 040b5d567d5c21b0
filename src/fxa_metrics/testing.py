"""Test helpers: capture every sink in memory, with strict mode on, and assert on it.

In the spirit of markus' ``MetricsMock``. Every record kind has the same
family of assertions: ``assert_<kind>`` (at least once), ``assert_<kind>_once``
and ``assert_not_<kind>``, for ``event``, ``deletion``, ``timing``, ``incr``,
``gauge``, ``set``, ``logged`` and ``crash``; ``assert_record(kind, ...)``
is the generic form a new route plugs into. All of them follow one matching
rule (see docs/testing.md and :mod:`fxa_metrics._match`): fields match as a
subset (``exact=True`` for the exact key set), values match as typed values
or as the text the route puts on the wire. A failing assertion prints
everything that was captured.

The capture stays in force when the code under test calls
:func:`fxa_metrics.configure`: it adopts that call's settings (consent
lookups, the service switch, app id, definitions) and keeps its in-memory
sinks; what was passed to :func:`capture` explicitly wins.

>>> import fxa_metrics as fm
>>> from fxa_metrics.testing import capture
>>> with capture(metrics_yaml="metrics.yaml", pings_yaml="pings.yaml") as cap:  # doctest: +SKIP
...     fm.record("login.complete", extra={"reason": "password"})
...     cap.assert_event_once("login.complete", extra={"reason": "password"})
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import orjson

from . import _facade, _middleware
from ._config import Settings, build_settings
from ._defs_cache import load_cached
from ._errors import ConfigurationError
from ._glean import GleanEncoder, GleanPing
from ._match import KINDS, UNSET, Query

# Re-exported: what a service's tests import from fxa_metrics.testing.
from ._match import AnyTagValue as AnyTagValue
from ._match import Observed as Observed
from ._match import register_kind as register_kind
from ._route_table import Table, build_table
from ._runtime import Runtime
from ._sink import Sink

# The last settings the code under test passed to configure() during a capture.
_app_settings: Settings | None = None

_IDENTITY = {
    "service": "fxa-test",
    "app_id": "accounts_backend_dev",
    "app_version": "0.0.0",
    "channel": "development",
}


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
    """What :func:`capture` collected, per route, in order, and the assertions on it."""

    def __init__(self, encoder: GleanEncoder | None = None) -> None:
        self._encoder = encoder
        self._items: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._runtimes: list[Runtime] = []
        # Set by capture(): its explicit settings win over an adopted configure().
        self._explicit: dict[str, Any] = {}
        self._user_sinks: Mapping[str, list[Sink]] = {}
        self._root = Path.cwd()

    def sinks(self) -> dict[str, list[Sink]]:
        """One capturing sink per route, for a runtime built by hand."""
        return {r: [CaptureSink(r, self._items, self._lock)] for r in _facade.ROUTE_NAMES}

    # ------------------------------------------------------------ runtime

    def _defaults(self) -> dict[str, Any]:
        """Settings before the code under test configures anything."""
        out = {**_IDENTITY, "strict": True, **self._explicit}
        if "metrics_yaml" not in self._explicit:
            # Not ./metrics.yaml: relative to wherever pytest runs, it would depend
            # on the cwd. The project's root, and no definitions if it has none.
            found = self._root / "metrics.yaml"
            out["metrics_yaml"] = (found,) if found.is_file() else ()
            pings = self._root / "pings.yaml"
            if "pings_yaml" not in self._explicit and found.is_file() and pings.is_file():
                out["pings_yaml"] = (pings,)
        return out

    def _build(self, settings: Settings) -> Runtime:
        table = _table(settings.routes)
        unknown = set(self._user_sinks) - set(table.groups)
        if unknown:
            raise ConfigurationError(
                f"capture(sinks=...): unknown route(s) {sorted(unknown)}; "
                f"sink groups are {table.groups}"
            )
        defs = load_cached(settings.metrics_yaml, settings.pings_yaml, settings.app_version)
        sinks: dict[str, tuple[Sink, ...]] = {
            r: (CaptureSink(r, self._items, self._lock), *self._user_sinks.get(r, ()))
            for r in table.groups
        }
        if settings.sinks or not settings.replace_sinks:
            settings = attrs.evolve(settings, sinks={}, replace_sinks=True)
        rt = _facade.wire_name_routes(Runtime(settings, defs, sinks, table))
        self._encoder = None  # built when payloads are asked for, from these settings
        self._runtimes.append(rt)
        return rt

    @property
    def encoder(self) -> GleanEncoder:
        """Encodes captured pings as the Glean sink would, with the capture's settings."""
        if self._encoder is None:
            s = self._runtimes[-1].settings if self._runtimes else build_settings(**_IDENTITY)
            self._encoder = GleanEncoder(
                s.app_id, s.app_version, s.channel, s.glean_logger or f"{s.service}-glean"
            )
        return self._encoder

    def _start(self) -> Runtime:
        # The app may have configured before the capture began, or (imported
        # once, lazily) in an earlier test's capture: start from its settings
        # either way, so the outcome does not depend on the order of tests.
        current = _facade.get_runtime()
        app = current.settings if current is not None else _app_settings
        if app is not None:
            return self._build(self._merge(app))
        return self._build(_default_settings(self._defaults()))

    def _merge(self, app: Settings) -> Settings:
        overrides = {"strict": True, **self._explicit}
        try:
            return attrs.evolve(app, **overrides)
        except (TypeError, ValueError) as e:
            raise ConfigurationError(f"capture(): {e}") from None

    def adopt(self, app: Settings) -> None:
        """The code under test called configure(): take its settings, keep our sinks.

        Explicit capture settings win; strict mode stays on unless the capture
        was given ``strict=False``. The settings are remembered for later
        captures in this process (the app module is imported only once).
        """
        global _app_settings
        _app_settings = app
        _facade.swap(self._build(self._merge(app)))

    # ------------------------------------------------------------ what was captured

    def records(self, route: str | None = None) -> list[Any]:
        _close_read_bodies()
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

    def strict_errors(self) -> list[BaseException]:
        """Every RecordError strict mode raised during the capture, caught or not."""
        return [e for rt in self._runtimes for e in rt.stats.record_errors]

    def internal_errors(self) -> list[BaseException]:
        """Every internal error fxa_metrics contained during the capture."""
        return [e for rt in self._runtimes for e in rt.stats.internal_errors]

    def observed(self, kind: str) -> list[Observed]:
        """Every captured record of ``kind``, as the matching rule sees it."""
        spec = KINDS.get(kind)
        if spec is None:
            raise ValueError(f"unknown record kind {kind!r}; kinds are {sorted(KINDS)}")
        return [o for rec in self.records(spec.route) for o in spec.observe(rec)]

    def filter_records(self, kind: str, name: str | None = None, **query: Any) -> list[Observed]:
        """The captured records of ``kind`` that match (same arguments as ``assert_record``)."""
        q = Query(kind, name, **query)
        return [o for o in self.observed(kind) if q.matches(o)]

    # ------------------------------------------------------------ assertions

    def dump(self) -> str:
        """Everything captured, one record a line, for assertion messages."""
        _close_read_bodies()
        with self._lock:
            items = list(self._items)
        if not items:
            return "  (nothing was captured)"
        return "\n".join(f"  {route}: {_describe(route, rec)}" for route, rec in items)

    def _check(self, q: Query, times: str | int) -> None:
        found = sum(1 for o in self.observed(q.kind) if q.matches(o))
        want = {"once": 1, "none": 0}.get(times, times) if isinstance(times, str) else times
        ok = found >= 1 if times == "some" else found == want
        if not ok:
            label = {"once": "exactly once", "some": "at least once", "none": "never"}
            expect = label.get(times, f"{times} time(s)") if isinstance(times, str) else times
            raise AssertionError(
                f"expected {q.describe()} {expect}"
                f"{' time(s)' if isinstance(expect, int) else ''}, found {found} time(s). "
                f"Captured:\n{self.dump()}"
            )

    def assert_record(
        self,
        kind: str,
        name: str | None = None,
        *,
        value: Any = UNSET,
        fields: Mapping[str, Any] | None = None,
        exact: bool = False,
        times: str | int = "some",
        **selectors: Any,
    ) -> None:
        """The generic assertion: ``times`` is ``"some"``, ``"once"``, ``"none"`` or a count."""
        self._check(Query(kind, name, value, fields, exact, selectors), times)

    # Glean events
    def assert_event(
        self,
        name: str,
        extra: Mapping[str, Any] | None = None,
        *,
        ping: str | None = None,
        exact: bool = False,
    ) -> None:
        """An event ``category.name`` was sent (with these extras, if given)."""
        self._check(Query("event", name, UNSET, extra, exact, {"ping": ping}), "some")

    def assert_event_once(
        self,
        name: str,
        extra: Mapping[str, Any] | None = None,
        *,
        ping: str | None = None,
        exact: bool = False,
    ) -> None:
        self._check(Query("event", name, UNSET, extra, exact, {"ping": ping}), "once")

    def assert_not_event(
        self,
        name: str | None = None,
        extra: Mapping[str, Any] | None = None,
        *,
        ping: str | None = None,
        exact: bool = False,
    ) -> None:
        """No such event (or, without a name, no event at all) was sent."""
        self._check(Query("event", name, UNSET, extra, exact, {"ping": ping}), "none")

    assert_no_event = assert_not_event

    # Glean deletion requests
    def assert_deletion(self, uid: str | None = None) -> None:
        """A server-deletion-request ping was sent (for this uid, if given)."""
        self._check(_deletion(uid), "some")

    def assert_deletion_once(self, uid: str | None = None) -> None:
        self._check(_deletion(uid), "once")

    def assert_not_deletion(self, uid: str | None = None) -> None:
        self._check(_deletion(uid), "none")

    # statsd
    def assert_timing(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("timing", name, _v(value), tags, exact), "some")

    def assert_timing_once(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("timing", name, _v(value), tags, exact), "once")

    def assert_not_timing(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("timing", name, _v(value), tags, exact), "none")

    def assert_incr(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("incr", name, _v(value), tags, exact), "some")

    def assert_incr_once(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("incr", name, _v(value), tags, exact), "once")

    def assert_not_incr(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("incr", name, _v(value), tags, exact), "none")

    def assert_gauge(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("gauge", name, _v(value), tags, exact), "some")

    def assert_gauge_once(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("gauge", name, _v(value), tags, exact), "once")

    # ---------------------------------------------- glean-sdk route (issue 13)
    # The same rule as every helper (docs/testing.md): name, then value and
    # label when given; kind "sdk" covers every glean-sdk metric type.

    def assert_counter(self, name: str, value: Any = UNSET, label: str | None = None) -> None:
        """A glean-sdk metric (counter, labeled counter, distribution, ...) was recorded."""
        self._check(Query("sdk", name, _v(value), None, False, {"label": label}), "some")

    def assert_counter_once(self, name: str, value: Any = UNSET, label: str | None = None) -> None:
        self._check(Query("sdk", name, _v(value), None, False, {"label": label}), "once")

    def assert_not_counter(self, name: str, label: str | None = None) -> None:
        self._check(Query("sdk", name, UNSET, None, False, {"label": label}), "none")

    def assert_not_gauge(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("gauge", name, _v(value), tags, exact), "none")

    def assert_set(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("set", name, _v(value), tags, exact), "some")

    def assert_set_once(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("set", name, _v(value), tags, exact), "once")

    def assert_not_set(
        self,
        name: str,
        value: Any = UNSET,
        tags: Mapping[str, Any] | None = None,
        *,
        exact: bool = False,
    ) -> None:
        self._check(Query("set", name, _v(value), tags, exact), "none")

    # MozLog
    def assert_logged(self, type_: str, *, exact: bool = False, **fields: Any) -> None:
        """A MozLog line of this Type was written, with these field values."""
        self._check(Query("logged", type_, UNSET, fields, exact), "some")

    def assert_logged_once(self, type_: str, *, exact: bool = False, **fields: Any) -> None:
        self._check(Query("logged", type_, UNSET, fields, exact), "once")

    def assert_not_logged(self, type_: str, *, exact: bool = False, **fields: Any) -> None:
        self._check(Query("logged", type_, UNSET, fields, exact), "none")

    # Sentry
    def assert_crash(
        self,
        exc_type: type[BaseException] | None = None,
        match: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        exact: bool = False,
    ) -> None:
        """A crash was captured (of this type, with ``match`` in its message, if given)."""
        self._check(_crash(exc_type, match, tags, exact), "some")

    def assert_crash_once(
        self,
        exc_type: type[BaseException] | None = None,
        match: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        exact: bool = False,
    ) -> None:
        self._check(_crash(exc_type, match, tags, exact), "once")

    def assert_not_crash(
        self,
        exc_type: type[BaseException] | None = None,
        match: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        exact: bool = False,
    ) -> None:
        self._check(_crash(exc_type, match, tags, exact), "none")

    assert_no_crash = assert_not_crash


_default_table: Table | None = None


def _table(routes: tuple[object, ...]) -> Table:
    # The default table is built (and validated) once; extra routes each time.
    global _default_table
    if routes:
        return build_table(routes)
    if _default_table is None:
        _default_table = build_table()
    return _default_table


# Default settings per set of explicit keywords: validated once, not per test
# (Settings are immutable). Unhashable keywords are simply not memoised.
_settings_memo: dict[Any, Settings] = {}


def _default_settings(kwargs: dict[str, Any]) -> Settings:
    try:
        key: Any = tuple(sorted(kwargs.items()))
        hash(key)
    except TypeError:
        key = None
    found = _settings_memo.get(key) if key is not None else None
    if found is None:
        found = build_settings(**kwargs, replace_sinks=True)
        if key is not None and len(_settings_memo) < 256:
            _settings_memo[key] = found
    return found


def _close_read_bodies() -> None:
    # A WSGI test client reads a response but leaves it open; a server would
    # close it after the last byte, which records url_request and the summary.
    bodies = _middleware.open_bodies
    if not bodies:
        return
    for body in list(bodies):
        if body.started and not body.closed:
            body.close()
        if body.closed:
            bodies.remove(body)  # one at a time: a server thread may be appending


def _v(value: Any) -> Any:
    # None reads as "any value", as in MetricsMock (a stat's value is never None).
    return UNSET if value is None else value


def _deletion(uid: str | None) -> Query:
    return Query("deletion", None, UNSET, {"account.user_id": uid} if uid is not None else None)


def _crash(
    exc_type: type[BaseException] | None,
    match: str | None,
    tags: Mapping[str, Any] | None,
    exact: bool,
) -> Query:
    def where(o: Observed) -> bool:
        if exc_type is not None and not isinstance(o.value, exc_type):
            return False
        return match is None or match in str(o.value)

    # Matched by isinstance (subclasses count), named in the failure message.
    note = " ".join(
        [*([exc_type.__name__] if exc_type else []), *([f"match={match!r}"] if match else [])]
    )
    return Query("crash", None, UNSET, tags, exact, {}, where, note)


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
_valid: set[bytes] = set()


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
    # Captured payloads carry a fixed time, so a suite recording the same
    # event in many tests validates the same text: check each text once.
    text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    if text in _valid:
        return
    errors = sorted(_validator(payload), key=lambda e: list(e.path))
    if not errors:
        if len(_valid) < 10_000:
            _valid.add(text)
        return
    if errors:
        raise AssertionError(
            "Glean payload fails the pipeline schema:\n"
            + "\n".join(f"  {list(e.path)}: {e.message}" for e in errors)
        )


@contextlib.contextmanager
def capture(*, root: str | os.PathLike[str] | None = None, **settings: Any) -> Iterator[Capture]:
    """Run fxa_metrics with in-memory sinks only (strict by default); restore on exit.

    Accepts the keywords of :func:`fxa_metrics.configure`; identity settings
    default to test values. Without ``metrics_yaml``, the definitions are
    ``<root>/metrics.yaml`` (and ``<root>/pings.yaml``) when they exist, where
    ``root`` defaults to the current directory (the pytest fixture passes the
    project's rootdir), and none otherwise. A ``configure()`` call made by
    the code under test is adopted, not obeyed (see the module docstring).
    """
    user_sinks = {k: list(v) for k, v in settings.pop("sinks", {}).items()}
    cap = Capture()
    cap._explicit = settings
    cap._user_sinks = user_sinks
    if root is not None:
        cap._root = Path(root)
    rt = cap._start()
    prev = _facade.swap(rt)
    prev_hook = _facade.set_configure_hook(cap.adopt)
    prev_bodies, _middleware.open_bodies = _middleware.open_bodies, []
    try:
        yield cap
    finally:
        _close_read_bodies()
        _middleware.open_bodies = prev_bodies
        _facade.set_configure_hook(prev_hook)
        last = _facade.swap(prev)
        if last is not None:
            last.close(1.0)
