"""The one matching rule every ``fxa_metrics.testing`` assertion uses.

A captured record is seen as an :class:`Observed`: a name, a value, a flat
mapping of fields (event extras, statsd tags, MozLog fields, crash tags,
deletion-request metrics) and a few selectors (the ping). An assertion's
expectation matches it when:

* the name is equal (or not given);
* the value matches (or is not given);
* every expected field is present with a matching value (a *subset*);
  ``exact=True`` also demands the same set of keys;
* a value matches when it is :data:`AnyTagValue`, or both are numbers that
  compare equal, or their *wire text* is equal: what the route puts on the
  wire for it (``True`` -> ``"true"``, ``2`` -> ``"2"``). So ``{"attempt": 2}``
  matches the extra the pipeline receives as ``"2"``, and ``status=200``
  matches the tag ``status=200``.

A new route (say, Glean SDK counters) fits the same rule by registering its
kind with :func:`register_kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import orjson


class _AnyValue:
    """Matches a field with any value, when only its presence matters."""

    def __repr__(self) -> str:
        return "AnyTagValue"


AnyTagValue: Any = _AnyValue()


class Observed(NamedTuple):
    """One captured record as the matching rule sees it."""

    kind: str
    name: str | None
    value: Any
    fields: Mapping[str, Any]
    selectors: Mapping[str, Any]
    text: str  # how a failure message shows it


class Kind(NamedTuple):
    """A record kind: the route that carries it and how to observe one captured item."""

    route: str
    observe: Callable[[Any], Iterable[Observed]]


KINDS: dict[str, Kind] = {}


def register_kind(kind: str, route: str, observe: Callable[[Any], Iterable[Observed]]) -> None:
    """Make ``kind`` assertable with ``Capture.assert_record(kind, ...)``."""
    KINDS[kind] = Kind(route, observe)


def wire(value: Any) -> str:
    """A value as the routes write it: Glean extras and statsd tags are text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=repr).decode()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_matches(expected: Any, actual: Any) -> bool:
    if expected is AnyTagValue:
        return True
    if _number(expected) and _number(actual):
        return bool(expected == actual)
    return wire(expected) == wire(actual)


def fields_match(expected: Mapping[str, Any], actual: Mapping[str, Any], exact: bool) -> bool:
    if exact and set(expected) != set(actual):
        return False
    return all(k in actual and value_matches(v, actual[k]) for k, v in expected.items())


UNSET: Any = object()


class Query(NamedTuple):
    """What one assertion looks for."""

    kind: str
    name: str | None = None
    value: Any = UNSET
    fields: Mapping[str, Any] | None = None
    exact: bool = False
    selectors: Mapping[str, Any] = {}
    where: Callable[[Observed], bool] | None = None
    note: str = ""  # what ``where`` checks, for the failure message

    def matches(self, obs: Observed) -> bool:
        if obs.kind != self.kind or (self.name is not None and obs.name != self.name):
            return False
        if self.value is not UNSET and not value_matches(self.value, obs.value):
            return False
        if self.fields is not None and not fields_match(self.fields, obs.fields, self.exact):
            return False
        if any(obs.selectors.get(k) != v for k, v in self.selectors.items() if v is not None):
            return False
        return self.where is None or self.where(obs)

    def describe(self) -> str:
        parts = [self.kind, *([self.name] if self.name is not None else [])]
        if self.name is None and not self.fields and not self.note:
            parts = [f"any {self.kind}"]
        if self.value is not UNSET:
            parts.append(f"value={self.value!r}")
        if self.fields:
            parts.append(("exactly " if self.exact else "") + repr(dict(self.fields)))
        parts += [f"{k}={v!r}" for k, v in self.selectors.items() if v is not None]
        parts += [self.note] if self.note else []
        return " ".join(parts)


# ------------------------------------------------------------------ built-in kinds


def _events(ping: Any) -> Iterable[Observed]:
    for e in ping.events:
        name = f"{e['category']}.{e['name']}"
        extra = dict(e.get("extra", {}))
        yield Observed("event", name, None, extra, {"ping": ping.ping}, f"event {name} {extra}")


def _deletions(ping: Any) -> Iterable[Observed]:
    if ping.product:
        return
    flat = {i: v for by_id in ping.metrics.values() for i, v in by_id.items()}
    yield Observed("deletion", ping.ping, None, flat, {}, f"deletion-request {flat}")


_STATSD_KINDS = {"ms": "timing", "c": "incr", "g": "gauge", "s": "set"}


def _stat(kind: str) -> Callable[[Any], Iterable[Observed]]:
    def observe(line: Any) -> Iterable[Observed]:
        if _STATSD_KINDS.get(line.kind) == kind:
            text = f"{kind} {line.stat}={line.value}"
            yield Observed(kind, line.name, line.value, dict(line.tags), {}, text)

    return observe


def _logs(rec: Any) -> Iterable[Observed]:
    fields = dict(rec.fields)
    yield Observed("logged", rec.type, None, fields, {}, f"log {rec.type} {fields}")


def _crashes(rec: Any) -> Iterable[Observed]:
    exc = getattr(rec, "exc", None)
    tags = dict(getattr(rec, "tags", {}))
    yield Observed("crash", type(exc).__name__, exc, tags, {}, f"crash {exc!r} {tags or ''}")


register_kind("event", "glean", _events)
register_kind("deletion", "glean", _deletions)
for _kind in _STATSD_KINDS.values():
    register_kind(_kind, "statsd", _stat(_kind))
register_kind("logged", "mozlog", _logs)
register_kind("crash", "sentry", _crashes)


def _sdk_samples(sample: Any) -> Iterable[Observed]:
    label = getattr(sample, "label", None)
    text = f"sdk {sample.identifier}={sample.value}" + (f" [{label}]" if label else "")
    yield Observed("sdk", sample.identifier, sample.value, {}, {"label": label}, text)


register_kind("sdk", "glean_sdk", _sdk_samples)
