"""The routing table: every route declared once, with every property it has.

A route names the record kinds it takes, the check that prepares them (the
definitions), its consent **policy** (required, no default: see
``_consent.Policy``), the sink group it writes to and how that group's sinks
are built, and any explicit feed into another route. ``record()`` looks the
record's class up here and does nothing a route does not declare::

    record(x) ─► route = table[type(x)] ─► route.check ─► consent.apply(route.policy)
             ─► every sink of route.group, each wrapped on its own ─► route.feeds

Adding a route is one ``Route(...)`` here (or ``configure(routes=[...])``);
:func:`build_table` refuses one without a valid policy, so a new route cannot
send an opted-out user's data by omission. docs/architecture.md walks through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from . import _glean, _mozlog, _sentry, _sentry_perf, _statsd
from ._beacon import PREFIX as BEACON_PREFIX
from ._beacon import PageLoad
from ._config import Settings
from ._consent import POLICIES, Policy
from ._context import RequestContext
from ._errors import ConfigurationError
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
from ._runtime import Runtime
from ._sink import Sink

#: (runtime, record, request context) -> the prepared, immutable record, or None
#: when there is nothing to send (not a drop). Raises a RecordError on bad input.
Check: TypeAlias = Callable[[Runtime, Any, RequestContext], Any]
#: (settings, the groups built so far) -> the sinks of one group.
SinkFactory: TypeAlias = Callable[[Settings, Mapping[str, tuple[Sink, ...]]], Sequence[Sink]]


@attrs.frozen
class Feed:
    """An explicit feed: what ``convert`` makes of a route's sent record also goes to ``route``.

    The converted record goes through the target route's own check and policy.
    """

    route: str
    convert: Callable[[Any], Any]


def _types(value: Iterable[type]) -> tuple[type, ...]:
    return tuple(value)


def _feeds(value: Iterable[Feed]) -> tuple[Feed, ...]:
    return tuple(value)


def _no_sinks(settings: Settings, built: Mapping[str, tuple[Sink, ...]]) -> Sequence[Sink]:
    return ()


@attrs.frozen(kw_only=True)
class Route:
    """One route of the table. ``policy`` has no default: name what consent means here."""

    name: str
    kinds: tuple[type, ...] = attrs.field(converter=_types)
    check: Check
    # Validated by build_table() (at configure()), so a route declared without a
    # real policy fails loudly there rather than failing open later.
    policy: Policy | None
    sinks: SinkFactory = _no_sinks
    group: str = attrs.field(default=attrs.Factory(lambda self: self.name, takes_self=True))
    feeds: tuple[Feed, ...] = attrs.field(default=(), converter=_feeds)


# ------------------------------------------------------------------ checks


def _glean_check(fn: Callable[..., Any]) -> Check:
    def check(rt: Runtime, rec: Any, ctx: RequestContext) -> Any:
        return fn(rt.defs, rec, ctx, rt.overflow)

    check.__name__ = check.__qualname__ = fn.__name__
    return check


def _check_event_or_metrics(rt: Runtime, rec: Any, ctx: RequestContext) -> Any:
    if rec.__class__ is Event:
        return _glean.prepare_event(rt.defs, rec, ctx, rt.overflow)
    return _glean.prepare_metrics(rt.defs, rec, ctx, rt.overflow)


def _check_log(rt: Runtime, rec: Log, ctx: RequestContext) -> Log:
    return _mozlog.prepare_log(rec, rt.overflow_log)


def _timing_to_transaction(line: _statsd.StatsdLine) -> Transaction | None:
    # Only timings are transactions; counters, gauges and sets stay in statsd.
    # A front-end beacon's timings (frontend.*) are already one page-load
    # transaction (the sentry_pageload route): not one more per timing.
    if line.kind != "ms" or line.name.startswith(BEACON_PREFIX):
        return None
    return Transaction(line.name, float(line.value), dict(line.tags))


# ------------------------------------------------------------------ the table

DEFAULT_ROUTES: tuple[Route, ...] = (
    Route(
        name="glean",
        kinds=(Event, Metrics),
        check=_check_event_or_metrics,
        policy=Policy.PER_USER_PRODUCT,
        sinks=_glean.sinks_from_settings,
    ),
    Route(
        name="glean_deletion",
        kinds=(DeletionRequest,),
        check=_glean_check(_glean.prepare_deletion),
        policy=Policy.DELETION_REQUEST,
        group="glean",  # the same sinks: one stdout line, same format
    ),
    Route(
        name="mozlog",
        kinds=(Log,),
        check=_check_log,
        policy=Policy.OPERATIONAL_LOG,
        sinks=_mozlog.sinks_from_settings,
    ),
    Route(
        name="statsd",
        kinds=(Timing, Counter, Gauge, Set),
        check=_statsd.prepare,
        policy=Policy.AGGREGATE,
        sinks=_statsd.sinks_from_settings,
        feeds=(Feed("sentry_performance", _timing_to_transaction),),
    ),
    Route(
        name="sentry",
        kinds=(Crash,),
        check=_sentry.prepare,
        policy=Policy.CRASH_NO_USER,
        sinks=_sentry.sinks_from_settings,
    ),
    Route(
        name="sentry_performance",
        kinds=(Transaction,),
        check=_sentry.prepare_transaction,
        policy=Policy.AGGREGATE,
        sinks=_sentry.performance_sinks,
    ),
    # issue 15: a checked front-end page load, one transaction with a span per
    # navigation phase and the Web Vitals as measurements (_sentry_perf).
    Route(
        name="sentry_pageload",
        kinds=(PageLoad,),
        check=_sentry_perf.prepare,
        policy=Policy.AGGREGATE,
        group="sentry_performance",
    ),
)


@attrs.frozen
class Table:
    """The routes in force: by record class and by name (built and checked at configure())."""

    routes: tuple[Route, ...]
    by_kind: Mapping[type, Route]
    by_name: Mapping[str, Route]

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.group for r in self.routes))


def _validate(route: Route, by_kind: dict[type, Route], by_name: dict[str, Route]) -> None:
    if not isinstance(route.policy, Policy) or route.policy not in POLICIES:
        raise ConfigurationError(
            f"route {route.name!r} has no consent policy (policy={route.policy!r}); "
            f"every route must name one of: {', '.join(p.name for p in Policy)}"
        )
    if route.name in by_name:
        raise ConfigurationError(f"route {route.name!r} is declared twice")
    for kind in route.kinds:
        if kind in by_kind:
            raise ConfigurationError(
                f"{kind.__name__} is routed twice ({by_kind[kind].name!r} and {route.name!r})"
            )
        by_kind[kind] = route
    by_name[route.name] = route


def build_table(extra: Iterable[object] = ()) -> Table:
    """The default routes plus ``extra``, validated: a route without a policy is an error here."""
    routes: list[Route] = []
    by_kind: dict[type, Route] = {}
    by_name: dict[str, Route] = {}
    for route in (*DEFAULT_ROUTES, *extra):
        if not isinstance(route, Route):
            raise ConfigurationError(
                f"configure(routes=...): {route!r} is not an fxa_metrics.Route"
            )
        _validate(route, by_kind, by_name)
        routes.append(route)
    for route in routes:
        for feed in route.feeds:
            if feed.route not in by_name:
                raise ConfigurationError(
                    f"route {route.name!r} feeds {feed.route!r}, which is not a route"
                )
    return Table(tuple(routes), MappingProxyType(by_kind), MappingProxyType(by_name))


def build_sinks(table: Table, settings: Settings) -> dict[str, tuple[Sink, ...]]:
    """Each sink group's sinks, built once per group by its first route's factory."""
    built: dict[str, tuple[Sink, ...]] = {}
    for route in table.routes:
        if route.group in built:
            continue
        built[route.group] = () if settings.replace_sinks else tuple(route.sinks(settings, built))
    return built


#: The default table, read-only, for ``fxa_metrics.ROUTES``: route name -> Route.
ROUTES: Mapping[str, Route] = MappingProxyType({r.name: r for r in DEFAULT_ROUTES})
