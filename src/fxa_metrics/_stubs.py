"""``fxa-metrics stubs``: a typed module that makes mypy and pyright check ``record()`` calls.

The generated module re-exports :func:`fxa_metrics.record` and, for type
checkers only, declares one overload per live event: its name as a
``Literal``, its extras as a ``TypedDict`` (``total=False``: every extra is
optional, as at record time), its ping(s) as a ``Literal`` and its ping's
non-event metrics as another ``TypedDict``. An unknown name, an unknown extra
key or a wrongly typed literal then matches no overload, at the call site.

Why overloads of ``record`` rather than per-metric helpers: call sites stay
``record("login.complete", extra={...})`` exactly as written against
``fxa_metrics``, so the same lines are checked by ``fxa-metrics lint`` and by
the type checker, and adopting the stubs is one import line. At run time the
overloads do not exist (they sit under ``TYPE_CHECKING``): ``record`` *is*
``fxa_metrics.record``, so the stubs cost nothing per call.

Expired and disabled events get no overload, so the checker rejects them too.
The header names the sources, their digest and glean_parser's version;
``stubs --check`` regenerates and compares, so a stale file fails CI.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ._definitions import Definitions, MetricDef, StrPath, load

# Glean type -> what a caller may pass (None leaves a value out, as at record time).
_VALUE_TYPES = {
    "string": "str",
    "quantity": "int",
    "boolean": "bool",
    "datetime": "datetime.datetime",
    "string_list": "list[str] | tuple[str, ...]",
    "object": "dict[str, Any] | list[Any] | tuple[Any, ...]",
}
_EXTRA_TYPES = {"string": "str", "quantity": "int", "boolean": "bool"}
_RECORD_OBJECTS = (
    "Event",
    "Metrics",
    "DeletionRequest",
    "Log",
    "Timing",
    "Counter",
    "Gauge",
    "Set",
    "Crash",
)
_DIGEST = re.compile(r"^Definitions sha256: (?P<digest>[0-9a-f]+)$", re.M)
_GLEAN = re.compile(r"^glean_parser: (?P<version>\S+)$", re.M)


def _camel(identifier: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._\-]", identifier) if part)


def _typed_dict(name: str, fields: Iterable[tuple[str, str]]) -> str:
    # The functional form: Glean keys ("account.user_id") are not identifiers.
    body = ", ".join(f"{key!r}: {kind} | None" for key, kind in fields)
    return f"{name} = TypedDict({name!r}, {{{body}}}, total=False)"


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name}{n}", n + 1
    taken.add(out)
    return out


def digest(paths: Sequence[StrPath]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _header(sources: Sequence[StrPath], defs: Definitions, any_events: bool) -> list[str]:
    import glean_parser

    shown = ", ".join(Path(p).as_posix() for p in sources)
    return [
        '"""Typed overloads of fxa_metrics.record(), by `fxa-metrics stubs`. Do not edit.',
        "",
        f"Source: {shown}",
        f"glean_parser: {glean_parser.__version__}",
        f"Definitions sha256: {digest(sources)}",
        "",
        "Import record from here instead of fxa_metrics: at run time it is fxa_metrics.record;",
        "for mypy and pyright it accepts only the metric names, extras and types declared.",
        '"""',
        "",
        "# ruff: noqa",
        "# fmt: off",
        # Only what is used: pyright's strict mode reports an unused import.
        *(["import datetime"] if any(m.type == "datetime" for m in defs.metrics.values()) else []),
        f"from typing import TYPE_CHECKING, Any, Literal, {'' if any_events else 'Never, '}"
        "TypedDict, overload",
        "",
        "import fxa_metrics",
        "",
    ]


def _overload(
    names: Sequence[str], pings: Sequence[str], extra_td: str, ping_tds: dict[str, str]
) -> list[str]:
    listed = "".join(f"\n        {n!r}," for n in names)
    choices = ", ".join(repr(p) for p in pings)
    metrics = " | ".join(ping_tds[p] for p in pings)
    # One ping: it is the default. Several: record() asks for ping=, so the stub does.
    ping = f"Literal[{choices}] | None = None" if len(pings) == 1 else f"Literal[{choices}]"
    return [
        "    @overload",
        f"    def record(what: Literal[{listed}\n    ], /, extra: {extra_td} | None = None, *,",
        f"               metrics: {metrics} | None = None, ping: {ping},",
        "               skip_client_ip: bool = False) -> None: ...",
    ]


# Events that take the same extras in the same pings share one overload: a
# checker lists every overload when a call matches none, so fewer reads better
# (FxA's 83 events have 8 shapes).
Shape = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]


def _shapes(events: Sequence[MetricDef]) -> dict[Shape, list[str]]:
    shapes: dict[Shape, list[str]] = {}
    for md in events:
        shapes.setdefault((tuple(sorted(md.extras.items())), md.pings), []).append(md.identifier)
    return shapes


def _ping_metrics(defs: Definitions, taken: set[str], lines: list[str]) -> dict[str, str]:
    ping_tds: dict[str, str] = {}
    for ping in sorted(defs.pings):
        pd = defs.pings[ping]
        td = _unique(f"{_camel(ping)}PingMetrics", taken)
        ping_tds[ping] = td
        fields = sorted(
            (ident, _VALUE_TYPES[kind]) for kind, ids in pd.metrics_by_type.items() for ident in ids
        )
        lines.append(_typed_dict(td, fields))
    return ping_tds


def render(defs: Definitions, sources: Sequence[StrPath]) -> str:
    """The stubs module's text for ``defs``, loaded from ``sources``."""
    taken: set[str] = {"EventName", "PingName", "record"}
    live = sorted(
        (md for md in defs.metrics.values() if md.type == "event"), key=lambda m: m.identifier
    )
    events = [md for md in live if not (md.expired or md.disabled)]
    left_out = [md.identifier for md in live if md.expired or md.disabled]
    lines = _header(sources, defs, bool(events))
    names = "".join(f"\n    {md.identifier!r}," for md in events)
    lines.append(f"EventName = Literal[{names}\n]" if events else "EventName = Never")
    lines.append(f"PingName = Literal[{', '.join(repr(p) for p in sorted(defs.pings))}]")
    if left_out:
        lines.append(f"# Expired or disabled, so not recordable: {', '.join(left_out)}")
    lines.append("")
    ping_tds = _ping_metrics(defs, taken, lines)
    shapes = _shapes(events)
    overloads: list[str] = []
    for (extras, pings), idents in shapes.items():
        keys = "".join(_camel(k) for k, _ in extras) or "No"
        td = _unique(f"{keys}Extra", taken)
        lines.append(_typed_dict(td, [(k, _EXTRA_TYPES[v]) for k, v in extras]))
        # Each event's own name for its extras, for annotating a variable.
        for ident in idents:
            lines.append(f"{_unique(f'{_camel(ident)}Extra', taken)} = {td}")
        overloads += _overload(idents, pings, td, ping_tds)
    objects = " | ".join(f"fxa_metrics.{name}" for name in _RECORD_OBJECTS)
    lines += [
        "",
        "if TYPE_CHECKING:",
        *overloads,
        "    @overload",
        f"    def record(what: {objects}, /) -> None: ...",
        "    def record(what: Any, /, *args: Any, **kwargs: Any) -> None: ...",
        "else:",
        "    from fxa_metrics import record",
        "",
        f"__all__ = {sorted(taken)!r}",
        "",
    ]
    return "\n".join(lines)


def generate(
    metrics_yaml: Sequence[StrPath],
    pings_yaml: Sequence[StrPath] = (),
    app_version: str | None = None,
) -> str:
    """Load the definitions (raising :class:`DefinitionsError`) and render their stubs."""
    defs = load(list(metrics_yaml), list(pings_yaml), app_version=app_version)
    return render(defs, [*metrics_yaml, *pings_yaml])


def staleness(current: str, expected: str) -> str | None:
    """Why the stubs text ``current`` is not what would be generated now, or None if it is."""
    if current == expected:
        return None
    was, now = _DIGEST.search(current), _DIGEST.search(expected)
    if was is None:
        return "it is not a file `fxa-metrics stubs` generated"
    if now is not None and was["digest"] != now["digest"]:
        return "the definitions changed since it was generated"
    g_was, g_now = _GLEAN.search(current), _GLEAN.search(expected)
    if g_was and g_now and g_was["version"] != g_now["version"]:
        return (
            f"it was generated with glean_parser {g_was['version']}, "
            f"and {g_now['version']} is installed"
        )
    return "its text differs from what would be generated (edited by hand, or an older generator)"
