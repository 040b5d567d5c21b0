"""Load metrics.yaml/pings.yaml with glean_parser and compile them into plain lookups.

glean_parser owns the format: we never validate the YAML ourselves. What we add
is (a) errors reshaped to name file, line and metric, (b) each metric's route,
decided by its type (the Glean server route, or the glean-sdk route for the
service-level types the server route cannot carry), with each route's own
rules, and (c) a compiled form in which the per-record check is a handful of
dict look-ups.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import attrs

from ._common_metrics import COMMON_METRICS
from ._errors import DefinitionsError, Problem

# What the Glean server route can put in a ping. Upstream's Python outputter
# carries string, quantity, boolean, object and event; its Go outputter adds
# datetime and string_list, which are equally well-defined in the ping schema.
SERVER_ROUTE_TYPES = frozenset(
    {"string", "quantity", "boolean", "object", "event", "datetime", "string_list"}
)
# What the glean-sdk route (the optional ``glean-sdk`` extra) carries: the
# service-level types the server route cannot express. See docs/glean_sdk.md.
SDK_ROUTE_TYPES = frozenset(
    {
        "counter",
        "labeled_counter",
        "timing_distribution",
        "memory_distribution",
        "custom_distribution",
        "timespan",
        "rate",
    }
)
GLEAN_ROUTE, GLEAN_SDK_ROUTE = "glean", "glean_sdk"
SDK_EXTRA = "glean-sdk"
# Pings every server app has without declaring them in pings.yaml.
BUILTIN_PINGS = ("events", "server-deletion-request")
# Pings the glean-sdk has built in, which an SDK-route metric may name undeclared.
SDK_BUILTIN_PINGS = ("metrics", "events")
DELETION_PING = "server-deletion-request"

# Glean's limits, in UTF-8 bytes as the SDK measures them.
MAX_STRING_BYTES = 255
MAX_EXTRA_BYTES = 500
MAX_STRING_LIST_ITEMS = 100
MAX_STRING_LIST_ITEM_BYTES = 100

StrPath = str | PathLike[str]


@attrs.frozen(slots=True)
class SdkParams:
    """What the glean-sdk needs to build an SDK-route metric (None where the type has none)."""

    labels: tuple[str, ...] | None = None  # labeled_counter: its static labels
    time_unit: str | None = None  # timing_distribution, timespan (glean_parser's names)
    memory_unit: str | None = None  # memory_distribution
    range_min: int | None = None  # custom_distribution
    range_max: int | None = None
    bucket_count: int | None = None
    histogram_type: str | None = None


@attrs.frozen(slots=True)
class MetricDef:
    """One compiled metric definition."""

    identifier: str  # "category.name", as it appears in the ping
    category: str
    name: str
    type: str
    pings: tuple[str, ...]
    extras: Mapping[str, str]  # extra key -> extra type (events only)
    lifetime: str
    expires: str
    expired: bool
    disabled: bool
    file: str
    line: int | None
    has_data_review: bool
    # Which route carries it, decided by its type: "glean" (server) or "glean_sdk".
    route: str = GLEAN_ROUTE
    sdk: SdkParams | None = None  # glean_sdk route only


@attrs.frozen(slots=True)
class PingDef:
    """One ping the server route can submit, with the metrics it carries."""

    name: str
    # type -> metric identifiers, ordered as upstream orders them: so the
    # payload's "metrics" object has the same keys as the generated code's.
    metrics_by_type: Mapping[str, tuple[str, ...]]
    # (identifier, context attribute) of the common metrics in this ping.
    common: tuple[tuple[str, str], ...]
    custom: bool
    # The payload's shape, precompiled for the hot path: per type (in
    # metrics_by_type order), each metric with the context attribute that
    # fills it, or None when only an explicit value can.
    layout: tuple[tuple[str, tuple[tuple[str, str | None], ...]], ...] = ()


@attrs.frozen(slots=True)
class Definitions:
    """The compiled definitions. Build with :func:`load`."""

    metrics: Mapping[str, MetricDef]
    pings: Mapping[str, PingDef]
    # Findings that do not stop loading but that ``fxa-metrics check`` reports.
    warnings: tuple[Problem, ...] = ()
    # The pings the glean-sdk route submits (those its metrics are sent in), in order.
    sdk_pings: tuple[str, ...] = ()

    def metric(self, identifier: str) -> MetricDef | None:
        return self.metrics.get(identifier)


_ERROR_FILE = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+))?:\s*$")


def _problem_from_glean_error(err: str, raw: Mapping[str, Any]) -> Problem:
    """Turn one glean_parser error string into a Problem naming file, line and metric.

    glean_parser formats errors as ``<file>:`` then a fenced YAML path to the
    offending node, then the message. We keep the message whole and recover
    the metric from the YAML path and its line from the raw YAML.
    """
    lines = err.splitlines()
    file, line = "<definitions>", None
    if lines:
        m = _ERROR_FILE.match(lines[0].strip())
        if m:
            file = m.group("file")
            line = int(m.group("line")) if m.group("line") else None
    path: list[str] = []  # [category, metric]: the first two levels of the fenced YAML path
    body: list[str] = []
    in_block = False
    base = -1
    for text in lines[1:]:
        stripped = text.strip()
        if stripped.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            indent = len(text) - len(text.lstrip())
            if base < 0:
                base = indent
            depth = (indent - base) // 2
            if depth == len(path) and depth < 2:
                if stripped.endswith(":"):
                    path.append(stripped[:-1].strip("'\""))
                elif depth == 0 and ": " in stripped:
                    # A bad metric *name* is shown inline: ``category: BadName``.
                    category, _, name = stripped.partition(": ")
                    path.extend(part.strip("'\"") for part in (category, name))
        elif stripped.startswith("Documentation for this node"):
            # What follows is the schema's documentation of the node, not the error.
            break
        elif stripped:
            body.append(stripped)
    metric = ".".join(path[:2]) if path else "-"
    if line is None and len(path) >= 2:
        node = raw.get(file, {}).get(path[0], {})
        node = node.get(path[1]) if isinstance(node, dict) else None
        defined = getattr(node, "defined_in", None)
        if defined:
            # The line of the metric's name, as MetricDef.line reports it: the
            # loader records the 0-based start of the metric's mapping, which
            # is the line after its name.
            line = defined["line"]
    message = " ".join(body) or err.strip()
    return Problem(file, metric, message, line)


def _expire_by_version(app_version: str | None) -> int | None:
    if not app_version:
        return None
    head = app_version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _expiry(expires: Any, major: int | None) -> tuple[bool, str | None, bool]:
    """(expired, problem, fatal) for one ``expires`` value, decided per metric.

    glean_parser decides by version for *every* metric once it is given a major
    version, and by date otherwise, raising a bare ValueError on the other
    kind. We are handed ``app_version`` by every service, so that would turn
    each date-expiring metric into a crash at configure(). Instead the value
    says which it is: an int is a major version, a string a yyyy-mm-dd date.
    A version with no numeric ``app_version`` to compare against is kept, and
    reported as a finding; a value that is neither is a load error.
    """
    from glean_parser import util

    if expires == "never":
        return False, None, False
    if expires == "expired":
        return True, None, False
    if isinstance(expires, int) and not isinstance(expires, bool):
        if expires <= 0:
            return False, f"expires: {expires} is not a positive major version", True
        if major is None:
            return (
                False,
                f"expires by version ({expires}) but app_version gives no major version "
                "to compare with; it is sent until one is configured",
                False,
            )
        return expires <= major, None, False
    try:
        date = util.parse_expiration_date(expires)
    except ValueError as e:
        return False, str(e), True
    # Glean's own rule: expired on the day itself.
    return date <= util.now_epoch().date(), None, False


def load(
    metrics_yaml: Sequence[StrPath] | StrPath,
    pings_yaml: Sequence[StrPath] | StrPath = (),
    *,
    app_version: str | None = None,
) -> Definitions:
    """Parse and compile definitions; raise :class:`DefinitionsError` listing every problem.

    ``app_version`` enables glean_parser's expiry by major version when the
    definitions use version numbers in ``expires``.
    """
    from glean_parser import metrics as gmetrics
    from glean_parser import parser, util

    paths = [Path(p) for p in _as_list(metrics_yaml) + _as_list(pings_yaml)]
    missing = [Problem(str(p), "-", "file not found") for p in paths if not p.is_file()]
    if missing:
        raise DefinitionsError(missing)
    if not paths:
        # Explicitly no definitions (e.g. a statsd-only CLI call): only the built-in
        # pings exist, and every Glean record is "undefined".
        return _compile({}, gmetrics, None)

    # Expiry is ours to decide (see _expiry), so glean_parser gets no version.
    config: dict[str, Any] = {"do_not_disable_expired": True}
    with warnings.catch_warnings():
        # glean_parser still uses jsonschema's deprecated RefResolver; that is its
        # concern, and must not fail a host that runs with -W error.
        warnings.filterwarnings("ignore", r"jsonschema\.RefResolver", DeprecationWarning)
        result = parser.parse_objects(paths, config)
        errors = list(result)
    if errors:
        raw = {}
        for p in paths:
            try:
                raw[str(p.resolve())] = util.load_yaml_or_json(p) or {}
            except Exception:  # the error itself already says what is wrong with it
                raw[str(p.resolve())] = {}
        raise DefinitionsError([_problem_from_glean_error(e, raw) for e in errors])
    tree = result.value
    return _compile(tree, gmetrics, _expire_by_version(app_version))


def _as_list(value: Sequence[StrPath] | StrPath) -> list[StrPath]:
    if isinstance(value, str | PathLike):
        return [value]
    return list(value)


class _Collector:
    """What compiling collects: problems stop loading, warnings only show in ``check``."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []


def _where(m: Any) -> tuple[str, int | None]:
    defined = getattr(m, "defined_in", None) or {}
    return str(defined.get("filepath", "<definitions>")), defined.get("line")


def route_of(metric_type: str) -> str | None:
    """The route a metric of this type takes: "glean", "glean_sdk", or None (no route)."""
    if metric_type in SERVER_ROUTE_TYPES:
        return GLEAN_ROUTE
    if metric_type in SDK_ROUTE_TYPES:
        return GLEAN_SDK_ROUTE
    return None


def _unsupported(metric_type: str) -> str:
    return (
        f"type '{metric_type}' cannot be sent by the Glean server route "
        f"(it carries: {', '.join(sorted(SERVER_ROUTE_TYPES))}) nor by the glean-sdk route "
        f"(service-level only: {', '.join(sorted(SDK_ROUTE_TYPES))}); change the type"
    )


def _check_pings(
    out: _Collector, identifier: str, m: Any, route: str, declared: Mapping[str, bool]
) -> None:
    file, line = _where(m)
    builtin = BUILTIN_PINGS if route == GLEAN_ROUTE else SDK_BUILTIN_PINGS
    for ping in m.send_in_pings:
        if ping in builtin or (declared.get(ping) and ping not in BUILTIN_PINGS):
            continue
        if route == GLEAN_SDK_ROUTE and ping in BUILTIN_PINGS:
            why = f"'{ping}' belongs to the Glean server route"
        else:
            why = "neither declared in pings.yaml nor built in"
        out.problems.append(
            Problem(
                file,
                identifier,
                f"send_in_pings names ping '{ping}', which is {why} "
                f"(the {route} route's built-in pings: {', '.join(builtin)})",
                line,
            )
        )


# Data sensitivity categories that identify a person (Glean's categories 3 and 4).
_IDENTIFYING_SENSITIVITY = frozenset({"stored_content", "highly_sensitive"})


def _identity_problems(m: Any) -> list[str]:
    """Why an SDK-route metric could identify a user: it never may (one client per process)."""
    why = []
    lifetime = getattr(m.lifetime, "name", str(m.lifetime))
    if lifetime == "user":
        why.append(
            "lifetime: user; the glean-sdk route has one client per process, not per user "
            "(use lifetime: ping or application)"
        )
    sensitivity = {getattr(s, "name", str(s)) for s in getattr(m, "data_sensitivity", None) or ()}
    if sensitivity & _IDENTIFYING_SENSITIVITY:
        why.append(
            f"data_sensitivity {sorted(sensitivity & _IDENTIFYING_SENSITIVITY)} identifies "
            "people; the glean-sdk route carries service-level data only"
        )
    if m.type == "labeled_counter" and not getattr(m, "labels", None):
        why.append(
            "a labeled_counter without static labels: a dynamic label could carry a user's "
            "identity; list its labels"
        )
    return why


def _sdk_params(m: Any) -> SdkParams:
    def name(value: Any) -> str | None:
        return None if value is None else str(getattr(value, "name", value))

    labels = getattr(m, "labels", None)
    return SdkParams(
        # glean_parser wraps each label; plain strings here.
        labels=tuple(sorted(str(getattr(x, "inner", x)) for x in labels)) if labels else None,
        time_unit=name(getattr(m, "time_unit", None)),
        memory_unit=name(getattr(m, "memory_unit", None)),
        range_min=getattr(m, "range_min", None),
        range_max=getattr(m, "range_max", None),
        bucket_count=getattr(m, "bucket_count", None),
        histogram_type=name(getattr(m, "histogram_type", None)),
    )


def _compile_metric(
    out: _Collector,
    category: str,
    mname: str,
    m: Any,
    declared: Mapping[str, bool],
    major: int | None,
) -> MetricDef | None:
    """One metric: its problems and warnings recorded on ``out``; its definition, if it has one."""
    identifier = f"{category}.{mname}"
    file, line = _where(m)
    route = route_of(m.type)
    if route is None:
        out.problems.append(Problem(file, identifier, _unsupported(m.type), line))
        return None
    _check_pings(out, identifier, m, route, declared)
    if route == GLEAN_SDK_ROUTE:
        for why in _identity_problems(m):
            out.problems.append(Problem(file, identifier, f"refused: {why}", line))
    extras: dict[str, str] = {}
    if m.type == "event":
        for key, meta in (getattr(m, "extra_keys", None) or {}).items():
            extras[key] = str(meta.get("type", "string"))
    expired, expiry_problem, fatal = _expiry(m.expires, major)
    if expiry_problem is not None:
        (out.problems if fatal else out.warnings).append(
            Problem(file, identifier, expiry_problem, line)
        )
    md = MetricDef(
        identifier=identifier,
        category=category,
        name=mname,
        type=m.type,
        pings=tuple(m.send_in_pings),
        extras=extras,
        lifetime=getattr(m.lifetime, "name", str(m.lifetime)),
        expires=str(m.expires),
        expired=expired,
        disabled=bool(m.disabled),
        file=file,
        line=line,
        has_data_review=bool(getattr(m, "data_reviews", None)),
        route=route,
        sdk=_sdk_params(m) if route == GLEAN_SDK_ROUTE else None,
    )
    if expired:
        out.warnings.append(Problem(file, identifier, f"expired ({m.expires})", line))
    if md.disabled:
        out.warnings.append(Problem(file, identifier, "disabled: true", line))
    if not md.has_data_review:
        out.warnings.append(Problem(file, identifier, "no data_reviews", line))
    return md


def _sdk_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("glean") is not None
    except (ImportError, ValueError):  # a broken or blocked install is not an install
        return False


def _check_sdk_extra(out: _Collector, metrics: Mapping[str, MetricDef]) -> None:
    """The glean-sdk route needs its extra: name every metric that needs it, at load time."""
    needing = [md for md in metrics.values() if md.route == GLEAN_SDK_ROUTE]
    if not needing or _sdk_installed():
        return
    for md in needing:
        out.problems.append(
            Problem(
                md.file,
                md.identifier,
                f"type '{md.type}' goes by the glean-sdk route, which needs the optional "
                f"extra: pip install 'fxa-metrics[{SDK_EXTRA}]' (glean-sdk is not installed)",
                md.line,
            )
        )


def _server_pings(
    declared: Mapping[str, bool], metrics: Mapping[str, MetricDef]
) -> dict[str, PingDef]:
    """The server route's pings, each with its (non-event) metrics in upstream's order."""
    # ping -> type -> identifiers, in upstream's order (first appearance).
    by_ping: dict[str, dict[str, list[str]]] = {}
    for md in metrics.values():
        if md.route != GLEAN_ROUTE:
            continue
        for ping in md.pings:
            by_ping.setdefault(ping, {}).setdefault(md.type, []).append(md.identifier)
    ping_defs: dict[str, PingDef] = {}
    for name, custom in declared.items():
        types = by_ping.get(name, {})
        non_event = {t: tuple(ids) for t, ids in types.items() if t != "event"}
        common = tuple(
            (ident, COMMON_METRICS[ident])
            for ident in non_event.get("string", ())
            if ident in COMMON_METRICS
        )
        common_attr = dict(common)
        layout = tuple(
            (kind, tuple((ident, common_attr.get(ident)) for ident in ids))
            for kind, ids in non_event.items()
        )
        ping_defs[name] = PingDef(
            name=name, metrics_by_type=non_event, common=common, custom=custom, layout=layout
        )
    return ping_defs


def _compile(tree: Mapping[str, Any], gmetrics: Any, major: int | None) -> Definitions:
    out = _Collector()
    declared: dict[str, bool] = {name: False for name in BUILTIN_PINGS}
    for name in tree.get("pings", {}):
        declared[name] = True

    metrics: dict[str, MetricDef] = {}
    for category, content in tree.items():
        if category in ("pings", "tags"):
            continue
        for mname, m in content.items():
            if isinstance(m, gmetrics.Metric):
                md = _compile_metric(out, category, mname, m, declared, major)
                if md is not None:
                    metrics[md.identifier] = md
    _check_sdk_extra(out, metrics)
    if out.problems:
        raise DefinitionsError(out.problems, findings=out.warnings)
    sdk_pings = tuple(
        dict.fromkeys(
            ping for md in metrics.values() if md.route == GLEAN_SDK_ROUTE for ping in md.pings
        )
    )
    return Definitions(
        metrics=metrics,
        pings=_server_pings(declared, metrics),
        warnings=tuple(out.warnings),
        sdk_pings=sdk_pings,
    )


def check(
    metrics_yaml: Iterable[StrPath], pings_yaml: Iterable[StrPath] = (), **kw: Any
) -> list[Problem]:
    """Every problem ``fxa-metrics check`` reports, in one run.

    Load errors (glean_parser's, then ours for every metric: no route, a
    refused glean-sdk metric, the missing ``glean-sdk`` extra), else the
    findings that do not stop loading (expired, disabled, no data review).
    """
    try:
        defs = load(list(metrics_yaml), list(pings_yaml), **kw)
    except DefinitionsError as e:
        return [*e.problems, *e.findings]
    return list(defs.warnings)


@attrs.frozen(slots=True)
class MetricRoute:
    """Which route one metric takes (``fxa-metrics check`` prints one per metric)."""

    identifier: str
    type: str
    route: str | None  # None: no route carries this type

    def __str__(self) -> str:
        return f"{self.identifier} ({self.type}): {self.route or 'no route'}"


def routes(metrics_yaml: Iterable[StrPath]) -> list[MetricRoute]:
    """Each metric's route, decided by its type alone; empty if glean_parser cannot parse."""
    from glean_parser import metrics as gmetrics
    from glean_parser import parser

    paths = [Path(p) for p in metrics_yaml]
    if not all(p.is_file() for p in paths):
        return []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"jsonschema\.RefResolver", DeprecationWarning)
        result = parser.parse_objects(paths, {"do_not_disable_expired": True})
        if list(result):
            return []
    out = []
    for category, content in result.value.items():
        if category in ("pings", "tags"):
            continue
        for mname, m in content.items():
            if isinstance(m, gmetrics.Metric):
                out.append(MetricRoute(f"{category}.{mname}", m.type, route_of(m.type)))
    return out
